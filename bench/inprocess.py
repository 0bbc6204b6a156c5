"""Benchmark 2, in-process: `GenAIMetricsSpanProcessor.on_end` vs the SDK's `BatchSpanProcessor.on_end`.

What the application thread pays per finished span. Both processors get the same realistic SDK
spans; their workers are kept asleep while `on_end` is timed (queues large enough, delays long),
so the figure is `on_end` alone. The work each defers to its worker thread is then timed too and
printed for context: ours converts and aggregates, the BatchSpanProcessor's OTLP exporter encodes
the batch (the HTTP send is left out). CPU time of this process, so other load on a shared
machine cannot inflate it. Goal of the issue: ours <= 1x theirs.

    python -m bench inprocess [--rounds 7] [--spans 20000]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from prometheus_client import CollectorRegistry

from bench.common import Measurement, Verdict, header, machine
from bench.workload import agent_spans, describe
from genai_exporter.inprocess import GenAIMetricsSpanProcessor
from genai_exporter.pricing import PriceTable, load_price_table

GOAL = 1.0
_NEVER_MS = 3_600_000


class OtlpEncodingExporter(SpanExporter):
    """What OTLPSpanExporter does before its HTTP POST: encode the batch to protobuf bytes."""

    def __init__(self) -> None:
        self.encoded_bytes = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.encoded_bytes += len(encode_spans(spans).SerializeToString())
        return SpanExportResult.SUCCESS


def _per_span_ns(spans: Sequence[ReadableSpan], call: object) -> float:
    """CPU nanoseconds per call (this process; the processors' workers are asleep meanwhile)."""
    start = time.process_time_ns()
    for span in spans:
        call(span)  # type: ignore[operator]
    return (time.process_time_ns() - start) / len(spans)


def _time_processor(processor: SpanProcessor, spans: Sequence[ReadableSpan]) -> tuple[float, float]:
    """(on_end ns per span, ns per span of the work force_flush then does) of a processor whose
    worker is kept asleep while on_end is timed."""
    try:
        on_end = _per_span_ns(spans, processor.on_end)
        start = time.process_time_ns()
        processor.force_flush()
        deferred = (time.process_time_ns() - start) / len(spans)
    finally:
        processor.shutdown()
    return on_end, deferred


def time_ours(spans: Sequence[ReadableSpan], prices: PriceTable) -> tuple[float, float]:
    """(on_end ns per span, deferred worker ns per span) of GenAIMetricsSpanProcessor."""
    return _time_processor(GenAIMetricsSpanProcessor(CollectorRegistry(), prices=prices,
                                                     max_queue_size=len(spans) + 1,
                                                     flush_interval_seconds=_NEVER_MS / 1000), spans)


def time_batch(spans: Sequence[ReadableSpan]) -> tuple[float, float]:
    """(on_end ns per span, deferred worker ns per span) of BatchSpanProcessor with an OTLP encoder."""
    return _time_processor(BatchSpanProcessor(OtlpEncodingExporter(), max_queue_size=len(spans) + 1,
                                              schedule_delay_millis=_NEVER_MS,
                                              max_export_batch_size=len(spans) + 1), spans)


def run(rounds: int, span_count: int) -> list[Verdict]:
    """Alternate rounds of both processors on the same spans; compare the medians."""
    spans = agent_spans(span_count)
    prices = load_price_table()
    header("in-process: SpanProcessor.on_end per span", [machine(), f"workload: {describe(spans)}"])
    time_ours(spans, prices)  # warm-up
    time_batch(spans)
    ours, batch = [], []
    for _ in range(rounds):
        ours.append(time_ours(spans, prices))
        batch.append(time_batch(spans))
    verdict = Verdict(
        "GenAIMetricsSpanProcessor.on_end / BatchSpanProcessor.on_end",
        Measurement("GenAIMetricsSpanProcessor.on_end", "ns/span", tuple(on_end for on_end, _ in ours)),
        Measurement("BatchSpanProcessor.on_end", "ns/span", tuple(on_end for on_end, _ in batch)),
        GOAL, higher_is_better=False,
    )
    print(verdict.render())
    print("  context, work deferred to the worker thread (not part of the goal):")
    print("  " + Measurement("ours: convert + aggregate", "ns/span", tuple(d for _, d in ours)).render())
    print("  " + Measurement("BatchSpanProcessor: OTLP protobuf encoding", "ns/span",
                             tuple(d for _, d in batch)).render())
    return [verdict]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of this benchmark."""
    parser.add_argument("--rounds", type=int, default=7, help="measured rounds of each (default %(default)s)")
    parser.add_argument("--spans", type=int, default=20_000, help="spans per round (default %(default)s)")


def main(args: argparse.Namespace) -> list[Verdict]:
    """Entry point of `python -m bench inprocess`."""
    return run(args.rounds, args.spans)
