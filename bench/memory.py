"""Benchmark 5, memory: RSS of the exporter after 1M spans with 1M distinct values of a capped dimension.

The exporter runs in its own process with the default config (the `user_tier` dimension capped at
100 values). A client sends 1000-span batches of realistic agent spans whose `user.tier` attribute
is different on every span (a client that put user ids there), scrapes /metrics now and then, and
reads the exporter's resident set size from /proc at 10k spans (the baseline) and after 1M.
Goal of the issue: flat, within 25 MiB of the RSS at 10k spans.

    python -m bench memory [--spans 1000000] [--runs 1]
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Iterator, Sequence

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from bench.common import GrowthVerdict, Measurement, header, machine
from bench.serve import OtlpConnection, ServeProcess
from bench.workload import agent_spans, describe, otlp_bodies
from genai_exporter import semconv

BATCH_SIZE = 1000
BASELINE_SPANS = 10_000
ALLOWED_GROWTH_MIB = 25.0
SCRAPE_EVERY_BATCHES = 50
_MIB = 1024 * 1024


def distinct_tier_bodies(templates: Sequence[bytes], batches: int) -> Iterator[bytes]:
    """`batches` bodies cycling through the templates, every span with a user.tier never seen before."""
    counter = itertools.count()
    parsed = []
    for body in templates:
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        tier_values = [attribute.value
                       for resource_spans in request.resource_spans
                       for scope_spans in resource_spans.scope_spans
                       for span in scope_spans.spans
                       for attribute in span.attributes if attribute.key == semconv.USER_TIER]
        parsed.append((request, tier_values))
    for index in range(batches):
        request, tier_values = parsed[index % len(parsed)]
        for value in tier_values:
            value.string_value = f"user-{next(counter):08d}"
        yield request.SerializeToString()


def measure_once(templates: Sequence[bytes], total_spans: int) -> tuple[float, float, list[str]]:
    """(RSS MiB at 10k spans, RSS MiB at the end, progress lines) of one fresh exporter process."""
    progress = []
    with ServeProcess() as server:
        connection = OtlpConnection(server.otlp_port)
        sent = 0
        baseline = 0.0
        for batch_index, body in enumerate(distinct_tier_bodies(templates, total_spans // BATCH_SIZE), start=1):
            connection.post(body)
            sent += BATCH_SIZE
            if batch_index % SCRAPE_EVERY_BATCHES == 0 or sent == BASELINE_SPANS:
                server.scrape()
            if sent == BASELINE_SPANS:
                baseline = server.rss_bytes() / _MIB
                progress.append(f"{sent:>9,} spans: RSS {baseline:.1f} MiB (baseline)")
            elif sent % (total_spans // 4) == 0:
                progress.append(f"{sent:>9,} spans: RSS {server.rss_bytes() / _MIB:.1f} MiB")
        connection.close()
        server.scrape()
        if server.spans_received() != sent:
            raise RuntimeError("spans_received_total does not match what was sent")
        final = server.rss_bytes() / _MIB
    return baseline, final, progress


def run(total_spans: int, runs: int) -> list[GrowthVerdict]:
    """Fresh exporter processes, each fed `total_spans`; compare the median RSS at the end and at 10k."""
    spans = agent_spans(10 * BATCH_SIZE)
    templates = otlp_bodies(spans, BATCH_SIZE)
    header("memory: exporter RSS with a distinct user.tier on every span (cap 100)", [
        machine(), f"workload: {describe(spans)}, user.tier rewritten per span; {total_spans:,} spans per run"])
    baselines, finals = [], []
    for _ in range(runs):
        baseline, final, progress = measure_once(templates, total_spans)
        for line in progress:
            print(f"   {line}")
        baselines.append(baseline)
        finals.append(final)
    verdict = GrowthVerdict(
        f"RSS after {total_spans:,} spans - RSS at {BASELINE_SPANS:,} spans",
        Measurement(f"RSS after {total_spans:,} spans", "MiB", tuple(finals)),
        Measurement(f"RSS at {BASELINE_SPANS:,} spans", "MiB", tuple(baselines)),
        ALLOWED_GROWTH_MIB,
    )
    print(verdict.render())
    return [verdict]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of this benchmark."""
    parser.add_argument("--spans", type=int, default=1_000_000, help="spans per run (default %(default)s)")
    parser.add_argument("--runs", type=int, default=1, help="fresh exporter processes (default %(default)s)")


def main(args: argparse.Namespace) -> list[GrowthVerdict]:
    """Entry point of `python -m bench memory`."""
    return run(args.spans, args.runs)
