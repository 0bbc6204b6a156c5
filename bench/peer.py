"""Benchmark 3, peer comparison: our in-process path vs recording through the OTel SDK metrics API.

The approach of instrumentation-side libraries such as OpenLIT: at the end of every GenAI call,
record the call's tokens, cost and duration on OTel instruments (counters and histograms with
attribute dicts), and expose them with `opentelemetry-exporter-prometheus`. The peer recorder below
records the same series as ours (same label sets, our bucket boundaries, our price table with its
lookup cache) from the same SDK spans, so the comparison is about how metrics are recorded.
Ours: `GenAIMetricsSpanProcessor.on_end` plus the worker's conversion and aggregation, per span.
Spans per CPU second of this process, which other load on a shared machine cannot inflate.
Goal of the issue: ours >= 5x faster.

    python -m bench peer [--rounds 7] [--spans 20000]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode
from prometheus_client import CollectorRegistry

from bench.common import Measurement, Verdict, header, machine
from bench.workload import agent_spans, describe
from genai_exporter import catalog, semconv
from genai_exporter.inprocess import GenAIMetricsSpanProcessor
from genai_exporter.pricing import PriceTable, load_price_table, price_usage
from genai_exporter.records import TokenUsage

GOAL = 5.0


class OTelMetricsRecorder:
    """Records a GenAI span's metrics through OTel SDK instruments, exposed for Prometheus."""

    def __init__(self, prices: PriceTable) -> None:
        self.registry = CollectorRegistry()
        self.provider = MeterProvider(metric_readers=[PrometheusMetricReader(registry=self.registry)])
        meter = self.provider.get_meter("bench.peer")
        self._prices = prices
        self._tokens = meter.create_counter(catalog.TOKENS.name, "{token}", catalog.TOKENS.help)
        self._cost = meter.create_counter(catalog.COST.name, "usd", catalog.COST.help)
        self._unpriced = meter.create_counter(catalog.UNPRICED_TOKENS.name, "{token}", catalog.UNPRICED_TOKENS.help)
        self._duration = meter.create_histogram(
            catalog.OPERATION_DURATION.name, "s", catalog.OPERATION_DURATION.help,
            explicit_bucket_boundaries_advisory=catalog.DURATION_BUCKETS_SECONDS)
        self._finish = meter.create_counter(catalog.FINISH_REASONS.name, "1", catalog.FINISH_REASONS.help)
        self._empty = meter.create_counter(catalog.EMPTY_RESPONSES.name, "1", catalog.EMPTY_RESPONSES.help)

    def record(self, span: ReadableSpan) -> None:
        """What an instrumentation library records at the end of one GenAI call."""
        attributes = span.attributes
        operation = attributes.get(semconv.OPERATION_NAME)
        if operation is None:
            return
        provider = attributes.get(semconv.PROVIDER_NAME, "")
        model = attributes.get(semconv.RESPONSE_MODEL) or attributes.get(semconv.REQUEST_MODEL, "")
        error_type = attributes.get(semconv.ERROR_TYPE, "")
        who = {catalog.SERVICE: span.resource.attributes.get(semconv.SERVICE_NAME, ""),
               "user_tier": attributes.get(semconv.USER_TIER, ""), "feature": attributes.get(semconv.APP_FEATURE, "")}
        call = {catalog.PROVIDER: provider, catalog.MODEL: model, catalog.OPERATION: operation, **who}
        layer = catalog.LAYER_MODEL if operation in semconv.MODEL_OPERATIONS else catalog.LAYER_OTHER
        tool = attributes.get(semconv.TOOL_NAME, "")
        self._duration.record((span.end_time - span.start_time) / 1e9, {
            **call, catalog.LAYER: layer, catalog.AGENT: attributes.get(semconv.AGENT_NAME, ""), catalog.TOOL: tool,
            catalog.STATUS: catalog.STATUS_ERROR if span.status.status_code is StatusCode.ERROR else catalog.STATUS_OK,
            catalog.ERROR_TYPE: error_type})
        if tool and attributes.get(semconv.TOOL_CALL_RESULT) == "[]":
            self._empty.add(1, {**call, catalog.LAYER: layer, catalog.AGENT: attributes.get(semconv.AGENT_NAME, ""),
                                catalog.TOOL: tool})
        input_tokens = attributes.get(semconv.INPUT_TOKENS)
        if input_tokens is None:
            return
        cached = attributes.get(semconv.CACHE_READ_TOKENS, 0)
        usage = TokenUsage(input_tokens - cached, cached, 0, attributes.get(semconv.OUTPUT_TOKENS, 0))
        counts = (usage.input, usage.cache_read, usage.cache_write, usage.output)
        for token_type, count in zip(catalog.TOKEN_TYPES, counts, strict=True):
            self._tokens.add(count, {**call, catalog.TOKEN_TYPE: token_type})
        entry = self._prices.lookup(provider, model)
        if entry is None:
            self._unpriced.add(usage.total, {catalog.PROVIDER: provider, catalog.MODEL: model, **who})
        else:
            cost = price_usage(entry, usage)
            amounts = (cost.input, cost.cache_read, cost.cache_write, cost.output)
            for token_type, amount in zip(catalog.TOKEN_TYPES, amounts, strict=True):
                self._cost.add(amount, {**call, catalog.MODEL: entry.model, catalog.TOKEN_TYPE: token_type})
        for reason in attributes.get(semconv.FINISH_REASONS, ()):
            self._finish.add(1, {catalog.PROVIDER: provider, catalog.MODEL: model, catalog.FINISH_REASON: reason,
                                 **who})


def time_peer(spans: Sequence[ReadableSpan], prices: PriceTable) -> float:
    """Spans per CPU second recorded through the OTel SDK metrics API."""
    recorder = OTelMetricsRecorder(prices)
    record = recorder.record
    start = time.process_time()
    for span in spans:
        record(span)
    elapsed = time.process_time() - start
    recorder.provider.shutdown()
    return len(spans) / elapsed


def time_ours(spans: Sequence[ReadableSpan], prices: PriceTable) -> float:
    """Spans per CPU second through GenAIMetricsSpanProcessor: on_end, then the worker's aggregation."""
    processor = GenAIMetricsSpanProcessor(CollectorRegistry(), prices=prices, max_queue_size=len(spans) + 1,
                                          flush_interval_seconds=3600)
    on_end = processor.on_end
    start = time.process_time()
    for span in spans:
        on_end(span)
    processor.force_flush()
    elapsed = time.process_time() - start
    processor.shutdown()
    return len(spans) / elapsed


def run(rounds: int, span_count: int) -> list[Verdict]:
    """Alternate rounds of both recorders on the same spans; compare the medians."""
    spans = agent_spans(span_count)
    prices = load_price_table()
    header("peer: our in-process path vs the OTel SDK metrics API + opentelemetry-exporter-prometheus",
           [machine(), f"workload: {describe(spans)}"])
    time_ours(spans, prices)  # warm-up
    time_peer(spans, prices)
    ours, peer = [], []
    for _ in range(rounds):
        ours.append(time_ours(spans, prices))
        peer.append(time_peer(spans, prices))
    verdict = Verdict(
        "ours / OTel SDK metrics API (speed-up)",
        Measurement("ours (on_end + worker aggregation)", "spans/s", tuple(ours)),
        Measurement("OTel SDK metrics API (instruments.add/record)", "spans/s", tuple(peer)),
        GOAL, higher_is_better=True,
    )
    print(verdict.render())
    return [verdict]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of this benchmark."""
    parser.add_argument("--rounds", type=int, default=7, help="measured rounds of each (default %(default)s)")
    parser.add_argument("--spans", type=int, default=20_000, help="spans per round (default %(default)s)")


def main(args: argparse.Namespace) -> list[Verdict]:
    """Entry point of `python -m bench peer`."""
    return run(args.rounds, args.spans)
