"""Expose stage: the only module that knows the Prometheus exposition formats.

`GenAICollector` is a prometheus_client custom collector: each scrape builds fresh metric families
from the aggregator's state (plus budgets and build info), so it can be registered on any
registry, the exporter's own or an application's. `render` answers a scrape with the Prometheus
text format or OpenMetrics (with exemplars) according to the Accept header.
"""

from __future__ import annotations

import platform
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence

from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import CollectorRegistry
from prometheus_client.samples import Exemplar as PrometheusExemplar

from genai_exporter import __version__, catalog
from genai_exporter.aggregate import Aggregator, CounterFamily, Exemplar, HistogramFamily
from genai_exporter.config import Budget

# OpenMetrics exemplar label names; Grafana's exemplar link uses trace_id.
EXEMPLAR_TRACE_ID = "trace_id"
EXEMPLAR_SPAN_ID = "span_id"


def _exemplar(exemplar: Exemplar | None) -> PrometheusExemplar | None:
    if exemplar is None:
        return None
    return PrometheusExemplar(
        {EXEMPLAR_TRACE_ID: exemplar.trace_id, EXEMPLAR_SPAN_ID: exemplar.span_id},
        exemplar.value,
        exemplar.timestamp_seconds,
    )


def _label_names(spec: catalog.MetricSpec, dimension_labels: Sequence[str]) -> list[str]:
    return [catalog.SERVICE, *spec.labels, *dimension_labels] if spec.domain else list(spec.labels)


def _format_bound(bound: float) -> str:
    return repr(float(bound))


def counter_family(family: CounterFamily, dimension_labels: Sequence[str]) -> CounterMetricFamily:
    """A counter family with one sample per series, exemplars attached where the spec has them."""
    spec = family.spec
    metric = CounterMetricFamily(spec.family_name, spec.help, labels=_label_names(spec, dimension_labels),
                                 unit=spec.unit)
    exemplars = family.exemplars
    for labels, value in family.values.items():
        metric.add_metric(labels, value, exemplar=_exemplar(exemplars.get(labels)))
    return metric


def histogram_family(family: HistogramFamily, dimension_labels: Sequence[str]) -> HistogramMetricFamily:
    """A histogram family with cumulative buckets, exemplars on the buckets they fell into."""
    spec = family.spec
    metric = HistogramMetricFamily(spec.family_name, spec.help, labels=_label_names(spec, dimension_labels),
                                   unit=spec.unit)
    bounds = [_format_bound(b) for b in spec.buckets] + ["+Inf"]
    for labels, state in family.series.items():
        buckets = []
        cumulative = 0
        for index, bound in enumerate(bounds):
            cumulative += state.bucket_counts[index]
            exemplar = _exemplar(state.exemplars.get(index))
            buckets.append((bound, cumulative, exemplar) if exemplar else (bound, cumulative))
        metric.add_metric(labels, buckets, state.sum)
    return metric


def _self_counter(spec: catalog.MetricSpec, values: Iterable[tuple[tuple[str, ...], float]]) -> Metric:
    metric = CounterMetricFamily(spec.family_name, spec.help, labels=list(spec.labels))
    for labels, value in values:
        metric.add_metric(labels, value)
    return metric


def budget_families(budgets: Sequence[Budget]) -> Iterator[Metric]:
    """Budget gauges from the config, one family per budget kind, labelled by their dimensions."""
    for spec in catalog.BUDGET_METRICS:
        series = [b for b in budgets if b.metric == spec.name]
        if not series:
            continue
        metric = GaugeMetricFamily(spec.name, spec.help)
        for budget in series:
            metric.add_sample(spec.name, dict(budget.labels), budget.value)
        yield metric


class GenAICollector:
    """Custom collector: fresh families from the aggregator on every scrape.

    Example output (Prometheus text format):
        # HELP genai_tokens_total Billed tokens of GenAI model calls; ...
        # TYPE genai_tokens_total counter
        genai_tokens_total{service="checkout",provider="openai",model="gpt-4o-mini",operation="chat",
                           token_type="input",user_tier="free",feature="search"} 1200.0
    """

    def __init__(self, aggregator: Aggregator, lock: threading.Lock, budgets: Sequence[Budget] = (),
                 build: tuple[str, str] = (__version__, platform.python_version())) -> None:
        self._aggregator = aggregator
        self._lock = lock
        self._budgets = tuple(budgets)
        self._build = build

    def collect(self) -> Iterator[Metric]:
        """Called by prometheus_client on every scrape."""
        agg = self._aggregator
        dims = agg.dimension_labels
        with self._lock:
            families: list[Metric] = [
                counter_family(agg.tokens, dims),
                counter_family(agg.cost, dims),
                counter_family(agg.cache_savings, dims),
                counter_family(agg.unpriced_tokens, dims),
                histogram_family(agg.duration, dims),
                counter_family(agg.empty_responses, dims),
                counter_family(agg.finish_reasons, dims),
                histogram_family(agg.time_to_first_token, dims),
                histogram_family(agg.agent_run_cost, dims),
                histogram_family(agg.agent_run_model_calls, dims),
                histogram_family(agg.agent_run_tool_calls, dims),
                counter_family(agg.output_checks, dims),
                histogram_family(agg.evaluation_score, dims),
                counter_family(agg.evaluations, dims),
                _self_counter(catalog.SPANS_RECEIVED, [((), agg.spans_received)]),
                _self_counter(catalog.SPANS_REJECTED, [((r,), n) for r, n in sorted(agg.spans_rejected.items())]),
                _self_counter(catalog.SPANS_IGNORED, [((), agg.spans_ignored)]),
                _self_counter(catalog.SPANS_DROPPED, [((), agg.spans_dropped)]),
                _self_counter(catalog.LABEL_OVERFLOW,
                              [((label,), n) for label, n in sorted(agg.label_overflows.items())]),
                _self_counter(catalog.REQUESTS, [((code,), n) for code, n in sorted(agg.requests.items())]),
                _self_counter(catalog.AGENT_RUNS_EVICTED, [((), agg.agent_runs_evicted)]),
            ]
        yield from families
        build = GaugeMetricFamily(catalog.BUILD_INFO.name, catalog.BUILD_INFO.help,
                                  labels=list(catalog.BUILD_INFO.labels))
        build.add_metric(list(self._build), 1.0)
        yield build
        yield from budget_families(self._budgets)


def metrics_renderer(registry: CollectorRegistry) -> Callable[[str | None], tuple[bytes, str]]:
    """A scrape handler: Accept header in, (body, content type) out, OpenMetrics when asked for."""

    def render(accept_header: str | None) -> tuple[bytes, str]:
        encoder, content_type = choose_encoder(accept_header or "")
        return encoder(registry), content_type

    return render
