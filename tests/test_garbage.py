"""Specification of what the service leaves to the garbage collector: nothing on the data path.

`genai-exporter serve` runs the collector rarely (server.SERVICE_GC_THRESHOLD) because decoding and
aggregating spans make no reference cycles: all they allocate is freed by reference counting.
"""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from genai_exporter.config import load_config
from genai_exporter.demo.scenarios import SCENARIOS
from genai_exporter.demo.workload import DEMO_CONFIG_FILE
from genai_exporter.pipeline import Pipeline
from genai_exporter.receive import CONTENT_TYPE_PROTOBUF, decode_export_request
from genai_exporter.server import SERVICE_GC_THRESHOLD, settle_garbage_collector
from tests.test_demo import generate_runs

# Also run from the Python sources, not only compiled (scripts/test.sh).
pytestmark = pytest.mark.data_path

RUNS_PER_BODY = 40


def demo_body(seed: int) -> bytes:
    """An OTLP/protobuf body of demo agent runs with every failure scenario on (errors, events, empties)."""
    exporter = InMemorySpanExporter()
    generate_runs(SimpleSpanProcessor(exporter), SCENARIOS, RUNS_PER_BODY, seed)
    return encode_spans(exporter.get_finished_spans()).SerializeToString()


def decode_and_ingest(pipeline: Pipeline, body: bytes) -> None:
    pipeline.ingest(decode_export_request(body, CONTENT_TYPE_PROTOBUF, None, 1 << 24, pipeline.keep_attributes))


@pytest.fixture
def collector_paused() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def test_decoding_and_aggregating_new_spans_leaves_no_reference_cycles(collector_paused: None) -> None:
    pipeline = Pipeline(load_config(DEMO_CONFIG_FILE))
    first, second = demo_body(seed=1), demo_body(seed=2)
    decode_and_ingest(pipeline, first)  # series, memos and caches exist from here on
    gc.collect()
    decode_and_ingest(pipeline, second)
    assert gc.collect() == 0


def test_the_service_collects_rarely_and_leaves_its_startup_objects_out() -> None:
    threshold = gc.get_threshold()
    try:
        settle_garbage_collector()
        assert (gc.get_threshold(), gc.get_freeze_count() > 0) == ((SERVICE_GC_THRESHOLD, *threshold[1:]), True)
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


# Runs `genai-exporter serve` in a new interpreter and, when it logs that it listens, prints the
# collector's first threshold and whether startup objects were frozen, and ends the process.
_SERVE_AND_REPORT = textwrap.dedent("""
    import gc, logging, os, sys

    class Report(logging.Handler):
        def emit(self, record):
            if "listening:" in record.getMessage():
                print(gc.get_threshold()[0], gc.get_freeze_count() > 0, flush=True)
                os._exit(0)

    logging.getLogger("genai_exporter").addHandler(Report())
    from genai_exporter import cli
    sys.exit(cli.main(["serve", "--web.listen-address", "127.0.0.1:0", "--otlp.listen-address", "127.0.0.1:0"]))
""")


def test_genai_exporter_serve_settles_its_collector_before_it_listens() -> None:
    completed = subprocess.run([sys.executable, "-c", _SERVE_AND_REPORT], capture_output=True, text=True,
                               timeout=60, check=False)
    assert (completed.returncode, completed.stdout.split()) == (0, [str(SERVICE_GC_THRESHOLD), "True"]), \
        completed.stderr
