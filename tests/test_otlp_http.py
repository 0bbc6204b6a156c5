"""Specification of the exporter's HTTP faces: OTLP/HTTP in (as the OTLP spec says), /metrics out.

Real requests against the real listeners on loopback, built with the real OTel SDK encoder.
"""

from __future__ import annotations

import gzip
import http.client
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from google.rpc import status_pb2
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry

from genai_exporter import catalog, semconv
from genai_exporter.config import Config, ServerLimits
from genai_exporter.expose import metrics_renderer
from genai_exporter.pipeline import Pipeline
from genai_exporter.server import start_servers
from tests.spanfactory import chat_attributes

# Also run from the Python sources, not only compiled (scripts/test.sh).
pytestmark = pytest.mark.data_path

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"
# Small limits, so a test can go over them without megabytes of spans.
LIMITS = ServerLimits(max_request_bytes=64 * 1024, max_decompressed_bytes=256 * 1024, request_timeout_seconds=10,
                      max_concurrent_requests=4)


@dataclass
class Exporter:
    pipeline: Pipeline
    registry: CollectorRegistry
    otlp_port: int
    web_port: int

    def post(self, body: bytes, content_type: str = PROTOBUF, encoding: str | None = None,
             path: str = "/v1/traces") -> tuple[int, str, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.otlp_port, timeout=10)
        headers = {"Content-Type": content_type, **({"Content-Encoding": encoding} if encoding else {})}
        connection.request("POST", path, body, headers)
        response = connection.getresponse()
        answer = (response.status, response.getheader("Content-Type") or "", response.read())
        connection.close()
        return answer

    def get(self, path: str, accept: str | None = None, port: int | None = None) -> tuple[int, str, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", port or self.web_port, timeout=10)
        connection.request("GET", path, headers={"Accept": accept} if accept else {})
        response = connection.getresponse()
        answer = (response.status, response.getheader("Content-Type") or "", response.read())
        connection.close()
        return answer

    def sample(self, name: str, labels: dict[str, str] | None = None) -> float | None:
        return self.registry.get_sample_value(name, labels or {})


@pytest.fixture
def exporter() -> Iterator[Exporter]:
    pipeline = Pipeline(Config(server=LIMITS))
    registry = CollectorRegistry()
    registry.register(pipeline.collector)

    class Metrics:
        render = staticmethod(metrics_renderer(pipeline.collector))

    servers = start_servers("127.0.0.1:0", "127.0.0.1:0", pipeline, Metrics(), LIMITS, ready=lambda: True)
    yield Exporter(pipeline, registry, servers.otlp_port, servers.web_port)
    servers.shutdown()


def chat_spans(*token_counts: object) -> bytes:
    """An OTLP protobuf body with one real SDK chat span per input token count."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({semconv.SERVICE_NAME: "checkout"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("shop")
    for count in token_counts:
        with tracer.start_as_current_span("chat gpt-4o-mini", attributes=chat_attributes(input_tokens=count,
                                                                                        output_tokens=10)):
            pass
    return encode_spans(memory.get_finished_spans()).SerializeToString()


def input_tokens(exporter: Exporter) -> float | None:
    return exporter.sample(catalog.TOKENS.name, {
        catalog.SERVICE: "checkout", catalog.PROVIDER: "openai", catalog.MODEL: "gpt-4o-mini",
        catalog.OPERATION: "chat", catalog.TOKEN_TYPE: "input", "user_tier": "", "feature": ""})


def status_message(body: bytes) -> str:
    return status_pb2.Status.FromString(body).message


# --- accepted -----------------------------------------------------------------------------------------

def test_protobuf_export_is_answered_with_an_empty_export_response(exporter):
    code, content_type, body = exporter.post(chat_spans(1200, 800))
    response = ExportTraceServiceResponse.FromString(body)
    assert (code, content_type, response.HasField("partial_success"), input_tokens(exporter)) == (
        200, PROTOBUF, False, 2000.0)


def test_gzip_body_is_decompressed(exporter):
    code, _, _ = exporter.post(gzip.compress(chat_spans(1200)), encoding="gzip")
    assert (code, input_tokens(exporter)) == (200, 1200.0)


def test_json_export_uses_the_otlp_json_mapping_and_is_answered_in_json(exporter):
    request = {"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "checkout"}}]},
        "scopeSpans": [{"spans": [{
            "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
            "name": "chat gpt-4o-mini", "kind": 3,
            "startTimeUnixNano": "1760000000000000000", "endTimeUnixNano": "1760000001500000000",
            "attributes": [
                {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                {"key": "gen_ai.provider.name", "value": {"stringValue": "openai"}},
                {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o-mini"}},
                {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "1200"}},
                {"key": "gen_ai.usage.output_tokens", "value": {"intValue": 300}},
            ],
        }]}],
    }]}
    code, content_type, body = exporter.post(json.dumps(request).encode(), JSON)
    assert (code, content_type, json.loads(body), input_tokens(exporter)) == (200, JSON, {}, 1200.0)


def test_invalid_span_is_rejected_alone_with_partial_success(exporter):
    code, _, body = exporter.post(chat_spans(1200, -5, 800))
    partial = ExportTraceServiceResponse.FromString(body).partial_success
    assert (code, partial.rejected_spans, "token count -5 is outside" in partial.error_message,
            input_tokens(exporter),
            exporter.sample(catalog.SPANS_REJECTED.name, {catalog.REASON: catalog.REJECT_INVALID_TOKENS}),
            exporter.sample(catalog.SPANS_RECEIVED.name)) == (200, 1, True, 2000.0, 1.0, 3.0)


# --- refused ------------------------------------------------------------------------------------------

def test_undecodable_protobuf_is_a_400_with_a_status_body(exporter):
    code, content_type, body = exporter.post(b"\x0a\xff\xff\xff\xff\x0f")
    assert (code, content_type, bool(status_message(body)), input_tokens(exporter)) == (400, PROTOBUF, True, None)


def test_malformed_json_names_where_it_is_wrong(exporter):
    request = {"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "not-hex", "spanId": "eee19b7ec3c1b174"}]}]}]}
    code, content_type, body = exporter.post(json.dumps(request).encode(), JSON)
    assert (code, content_type, "traceId" in json.loads(body)["message"]) == (400, JSON, True)


def test_body_over_the_limit_is_a_413_before_it_is_read(exporter):
    code, _, body = exporter.post(b"\x00" * (LIMITS.max_request_bytes + 1))
    assert (code, status_message(body)) == (
        413, f"request body of {LIMITS.max_request_bytes + 1} bytes is over the limit of "
             f"{LIMITS.max_request_bytes} bytes")


def test_gzip_bomb_stops_at_the_decompressed_limit(exporter):
    bomb = gzip.compress(b"\x00" * (64 * 1024 * 1024))  # 64 MiB of zeros in about 64 KiB
    code, _, _ = exporter.post(bomb, encoding="gzip")
    assert (len(bomb) < LIMITS.max_request_bytes, code) == (True, 413)


@pytest.mark.parametrize(("content_type", "encoding"), [("text/plain", None), (PROTOBUF, "br")])
def test_other_media_types_and_encodings_are_a_415(exporter, content_type, encoding):
    code, _, _ = exporter.post(chat_spans(10), content_type, encoding)
    assert code == 415


def test_unknown_path_is_a_404(exporter):
    assert exporter.post(chat_spans(10), path="/v1/metrics")[0] == 404


def test_every_answer_is_counted_by_its_code(exporter):
    exporter.post(chat_spans(10))
    exporter.post(chat_spans(10), "text/plain")
    exporter.post(b"\x0a\xff")
    assert [exporter.sample(catalog.REQUESTS.name, {catalog.CODE: code}) for code in ("200", "400", "415")] == [
        1.0, 1.0, 1.0]


# --- /metrics and probes ------------------------------------------------------------------------------

def test_metrics_default_to_the_prometheus_text_format(exporter):
    exporter.post(chat_spans(1200))
    code, content_type, body = exporter.get("/metrics")
    assert (code, content_type.startswith("text/plain; version=0.0.4"), b" # {" in body) == (200, True, False)


def test_openmetrics_scrape_carries_exemplars_with_the_trace_id(exporter):
    exporter.post(chat_spans(1200))
    code, content_type, body = exporter.get("/metrics", accept=OPENMETRICS)
    duration_lines = [line for line in body.decode().splitlines()
                      if line.startswith(catalog.OPERATION_DURATION.name + "_bucket") and " # {" in line]
    assert (code, content_type.startswith("application/openmetrics-text"), len(duration_lines),
            'trace_id="' in duration_lines[0]) == (200, True, 1, True)


@pytest.mark.parametrize(("path", "body"), [("/-/healthy", b"Healthy"), ("/-/ready", b"Ready")])
def test_probes_answer_200(exporter, path, body):
    code, _, answer = exporter.get(path)
    assert (code, answer) == (200, body)


# --- configuration errors stop the process ------------------------------------------------------------

def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "genai_exporter.cli", *args], capture_output=True, text=True,
                          timeout=60)


def test_serve_refuses_a_broken_config_with_exit_code_2_and_every_problem(tmp_path: Path):
    config = tmp_path / "config.yaml"
    config.write_text("dimensions:\n  - label: user tier\n    attributes: []\nlimits: {max_values: {model: 0}}\n")
    result = _run("serve", "--config.file", str(config), "--web.listen-address", "127.0.0.1:0",
                  "--otlp.listen-address", "127.0.0.1:0")
    assert (result.returncode, result.stderr.splitlines()[1:]) == (2, [
        "  dimensions[0].label: must be a Prometheus label name, got 'user tier'",
        "  dimensions[0].attributes: must be a non-empty list of attribute names",
        "  limits.max_values.model: must be a positive integer, got 0",
    ])


def test_check_config_accepts_the_compose_stacks_config():
    result = _run("check-config", str(Path(__file__).parents[1] / "deploy" / "genai-exporter" / "config.yaml"))
    assert (result.returncode, result.stdout.endswith("priced models)\n")) == (0, True)
