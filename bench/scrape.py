"""Benchmark 4, scrape: /metrics render time and size at 10k and 100k series vs prometheus_client.

Ours: the exporter's scrape handler (`expose.metrics_renderer` over a registry holding the
pipeline's collector), fed by the pipeline with realistic spans whose user tier takes as many
values as it takes to reach the series count. The baseline is prometheus_client's own
`generate_latest` over a registry of plain prometheus_client Counter/Gauge/Histogram metrics holding
the same series (same names and label sets, checked), built by replaying our exposition. Both text
formats are measured: Prometheus text (the default scrape) and OpenMetrics with exemplars (what
Prometheus asks for when exemplar storage is on). Goal of the issue: ours <= 1x.

    python -m bench scrape [--rounds 7] [--series 10000 100000]
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable, Sequence

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.openmetrics import exposition as openmetrics_exposition
from prometheus_client.openmetrics.parser import text_string_to_metric_families
from prometheus_client.parser import text_string_to_metric_families as text_families

from bench.common import Measurement, Verdict, header, machine
from bench.workload import agent_spans
from genai_exporter import semconv
from genai_exporter.config import Config, Dimension
from genai_exporter.expose import GenAICollector, metrics_renderer
from genai_exporter.inprocess import readable_span_to_record
from genai_exporter.pipeline import Pipeline
from genai_exporter.pricing import load_price_table
from genai_exporter.records import SpanRecord

GOAL = 1.0
TEXT_ACCEPT = "text/plain; version=0.0.4"
OPENMETRICS_ACCEPT = "application/openmetrics-text; version=1.0.0; charset=utf-8"
# Spans per user-tier value: each value brings the workload's whole mix of series again.
SPANS_PER_TIER = 300


def _with_tier(records: Sequence[SpanRecord], tier: str) -> list[SpanRecord]:
    return [record._replace(attributes={**record.attributes, semconv.USER_TIER: tier}) for record in records]


def _series_count(text: str) -> int:
    return sum(1 for line in text.splitlines() if line and not line.startswith("#"))


def exporter_with_series(target: int) -> tuple[GenAICollector, int]:
    """The pipeline's collector holding at least `target` series; (collector, series)."""
    dimensions = (Dimension("user_tier", semconv.DEFAULT_USER_TIER_ATTRIBUTES, 10_000_000),
                  Dimension("feature", semconv.DEFAULT_FEATURE_ATTRIBUTES, 100))
    pipeline = Pipeline(Config(dimensions=dimensions), load_price_table())
    render = metrics_renderer(pipeline.collector)
    records = [readable_span_to_record(span) for span in agent_spans(SPANS_PER_TIER)]
    tiers = 0
    series = 0
    while series < target:
        pipeline.ingest(_with_tier(records, f"tier-{tiers}"))
        tiers += 1
        if tiers == 1 or tiers % 10 == 0:
            series = _series_count(render(TEXT_ACCEPT)[0].decode())
            per_tier = series / tiers
            # Close to the target, count after each tier so as not to overshoot.
            if target - series < 10 * per_tier:
                while series < target:
                    pipeline.ingest(_with_tier(records, f"tier-{tiers}"))
                    tiers += 1
                    series = _series_count(render(TEXT_ACCEPT)[0].decode())
    return pipeline.collector, series


def plain_registry_like(collector: GenAICollector) -> CollectorRegistry:
    """Plain prometheus_client metrics with the same series as `collector`, replayed from its OpenMetrics."""
    prometheus_client.disable_created_metrics()
    plain = CollectorRegistry()
    body, _ = metrics_renderer(collector)(OPENMETRICS_ACCEPT)
    for family in text_string_to_metric_families(body.decode()):
        if not family.samples:
            continue
        label_names = sorted({name for sample in family.samples for name in sample.labels if name != "le"})
        if family.type == "counter":
            counter = Counter(family.name, family.documentation, label_names, unit=family.unit, registry=plain)
            for sample in family.samples:
                exemplar = sample.exemplar.labels if sample.exemplar else None
                _child(counter, sample.labels).inc(sample.value, exemplar=exemplar)
        elif family.type == "gauge":
            gauge = Gauge(family.name, family.documentation, label_names, unit=family.unit, registry=plain)
            for sample in family.samples:
                _child(gauge, sample.labels).set(sample.value)
        elif family.type == "histogram":
            _replay_histogram(family, label_names, plain)
    return plain


def _child(metric: Counter | Gauge | Histogram, labels: dict[str, str]) -> Counter | Gauge | Histogram:
    return metric.labels(**labels) if labels else metric


def _replay_histogram(family: object, label_names: list[str], plain: CollectorRegistry) -> None:
    buckets = sorted({float(s.labels["le"]) for s in family.samples if s.name.endswith("_bucket")})  # type: ignore[attr-defined]
    histogram = Histogram(family.name, family.documentation, label_names, unit=family.unit,  # type: ignore[attr-defined]
                          buckets=buckets, registry=plain)
    previous: dict[tuple, float] = {}
    for sample in family.samples:  # type: ignore[attr-defined]
        if not sample.name.endswith("_bucket"):
            continue
        labels = {name: value for name, value in sample.labels.items() if name != "le"}
        key = tuple(sorted(labels.items()))
        bound = float(sample.labels["le"])
        count = int(sample.value - previous.get(key, 0.0))
        previous[key] = sample.value
        value = bound if math.isfinite(bound) else buckets[-2] * 2
        child = _child(histogram, labels)
        for index in range(count):
            exemplar = sample.exemplar.labels if sample.exemplar and index == count - 1 else None
            child.observe(value, exemplar=exemplar)
        if not count and not math.isfinite(bound) and sample.value == 0:
            child.observe(0.0)  # a series with no observation yet: prometheus_client only shows it once used


def same_series(ours: str, theirs: str) -> bool:
    """Whether two text expositions hold the same sample names with the same label sets."""
    def keys(text: str) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
        return {(sample.name, tuple(sorted(sample.labels.items())))
                for family in text_families(text) for sample in family.samples}
    return keys(ours) == keys(theirs)


def _render_seconds(render: Callable[[], bytes]) -> float:
    """CPU seconds of one render, which other load on a shared machine cannot inflate."""
    start = time.process_time()
    render()
    return time.process_time() - start


def run(rounds: int, series_targets: Sequence[int]) -> list[Verdict]:
    """For each series count, alternate our render and prometheus_client's; compare the medians."""
    header("scrape: /metrics render time, ours vs prometheus_client generate_latest on the same series",
           [machine()])
    verdicts = []
    for target in series_targets:
        collector, series = exporter_with_series(target)
        plain = plain_registry_like(collector)
        render = metrics_renderer(collector)
        ours_text = render(TEXT_ACCEPT)[0]
        theirs_text = prometheus_client.generate_latest(plain)
        matching = same_series(ours_text.decode(), theirs_text.decode())
        print(f"-- {series:,} series; same series as the baseline: {matching}")
        for name, accept, reference in (
            ("text", TEXT_ACCEPT, lambda plain=plain: prometheus_client.generate_latest(plain)),
            ("OpenMetrics", OPENMETRICS_ACCEPT, lambda plain=plain: openmetrics_exposition.generate_latest(plain)),
        ):
            ours, theirs = [], []
            for _ in range(rounds):
                ours.append(_render_seconds(lambda accept=accept, render=render: render(accept)) * 1000)
                theirs.append(_render_seconds(reference) * 1000)
            verdict = Verdict(
                f"scrape {name} {series:,} series, ours / prometheus_client",
                Measurement(f"ours ({len(render(accept)[0]) / 1024:,.0f} KiB)", "ms", tuple(ours)),
                Measurement(f"prometheus_client generate_latest ({len(reference()) / 1024:,.0f} KiB)", "ms",
                            tuple(theirs)),
                GOAL, higher_is_better=False,
            )
            print(verdict.render())
            verdicts.append(verdict)
    return verdicts


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of this benchmark."""
    parser.add_argument("--rounds", type=int, default=7, help="measured renders of each (default %(default)s)")
    parser.add_argument("--series", type=int, nargs="+", default=[10_000, 100_000],
                        help="series counts to measure at (default %(default)s)")


def main(args: argparse.Namespace) -> list[Verdict]:
    """Entry point of `python -m bench scrape`."""
    return run(args.rounds, args.series)
