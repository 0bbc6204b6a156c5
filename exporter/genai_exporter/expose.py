"""Expose stage: the only module that knows the Prometheus exposition formats.

`GenAICollector` is a prometheus_client custom collector: each scrape builds fresh metric families
from the aggregator's state (plus budgets and build info), so it can be registered on any
registry, an application's included. The exporter's own /metrics does not go through those
families: `metrics_renderer` writes the same state straight to the Prometheus text format or
OpenMetrics (with exemplars), byte for byte what prometheus_client's encoders write for the
collector's families (the tests compare them), at a fraction of the cost: the labels of a series
are formatted once per scrape, not once per sample, and no sample objects are built.
"""

from __future__ import annotations

import platform
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.openmetrics.exposition import ALLOWUTF8, UNDERSCORES
from prometheus_client.registry import CollectorRegistry
from prometheus_client.samples import Exemplar as PrometheusExemplar
from prometheus_client.utils import floatToGoString

from genai_exporter import __version__, catalog
from genai_exporter.aggregate import Aggregator, CounterSeries, Exemplar, HistogramState, LabelValues
from genai_exporter.config import Budget
from genai_exporter.extensions import data_path_build

# OpenMetrics exemplar label names; Grafana's exemplar link uses trace_id.
EXEMPLAR_TRACE_ID = "trace_id"
EXEMPLAR_SPAN_ID = "span_id"
OPENMETRICS_MEDIA_TYPE = "application/openmetrics-text"
# Name escaping schemes under which every name we expose is written unchanged: catalogue names and
# dimension labels are legacy Prometheus names (config validates the latter). The other schemes
# ("dots", "values") rewrite names, and are left to prometheus_client's encoders.
_IDENTITY_ESCAPINGS = frozenset({UNDERSCORES, ALLOWUTF8})
_EOF = b"# EOF\n"
# What prometheus_client escapes: label values and OpenMetrics HELP text, then text-format HELP.
_VALUE_ESCAPES = str.maketrans({"\\": r"\\", "\n": r"\n", '"': r"\""})
_TEXT_HELP_ESCAPES = str.maketrans({"\\": r"\\", "\n": r"\n"})
# Label names sort before or after the `le` label that histogram buckets add.
_BUCKET_LABEL = "le"


@dataclass(frozen=True, slots=True)
class _Counters:
    """A counter family as the aggregator holds it: series (value and exemplar) by label values."""

    spec: catalog.MetricSpec
    label_names: tuple[str, ...]
    series: Mapping[LabelValues, CounterSeries]


@dataclass(frozen=True, slots=True)
class _Histograms:
    """A histogram family as the aggregator holds it: per-bucket counts by label values."""

    spec: catalog.MetricSpec
    label_names: tuple[str, ...]
    series: Mapping[LabelValues, HistogramState]


@dataclass(frozen=True, slots=True)
class _Gauges:
    """A gauge family whose samples each carry their own labels (budgets, build info)."""

    name: str
    help: str
    samples: tuple[tuple[tuple[tuple[str, str], ...], float], ...]


_Family = _Counters | _Histograms | _Gauges


def _exemplar(exemplar: Exemplar | None) -> PrometheusExemplar | None:
    if exemplar is None:
        return None
    trace_id, span_id, value, timestamp_seconds = exemplar
    return PrometheusExemplar({EXEMPLAR_TRACE_ID: trace_id.hex(), EXEMPLAR_SPAN_ID: span_id.hex()}, value,
                              timestamp_seconds)


def _label_names(spec: catalog.MetricSpec, dimension_labels: Sequence[str]) -> tuple[str, ...]:
    return (catalog.SERVICE, *spec.labels, *dimension_labels) if spec.domain else spec.labels


def _bucket_bounds(spec: catalog.MetricSpec) -> list[str]:
    return [repr(float(bound)) for bound in spec.buckets] + ["+Inf"]


def _counter_family(family: _Counters) -> CounterMetricFamily:
    """A counter family with one sample per series, exemplars attached where the spec has them."""
    spec = family.spec
    metric = CounterMetricFamily(spec.family_name, spec.help, labels=family.label_names, unit=spec.unit)
    exemplars = spec.exemplars
    for labels, series in family.series.items():
        metric.add_metric(labels, series.value, exemplar=_exemplar(series.exemplar) if exemplars else None)
    return metric


def _histogram_family(family: _Histograms) -> HistogramMetricFamily:
    """A histogram family with cumulative buckets, exemplars on the buckets they fell into."""
    spec = family.spec
    metric = HistogramMetricFamily(spec.family_name, spec.help, labels=family.label_names, unit=spec.unit)
    bounds = _bucket_bounds(spec)
    for labels, state in family.series.items():
        buckets = []
        cumulative = 0
        for index, bound in enumerate(bounds):
            cumulative += state.bucket_counts[index]
            exemplar = _exemplar(state.exemplars.get(index))
            buckets.append((bound, cumulative, exemplar) if exemplar else (bound, cumulative))
        metric.add_metric(labels, buckets, state.sum)
    return metric


def _gauge_family(family: _Gauges) -> GaugeMetricFamily:
    """A gauge family with the labels of each sample."""
    metric = GaugeMetricFamily(family.name, family.help)
    for labels, value in family.samples:
        metric.add_sample(family.name, dict(labels), value)
    return metric


def _prometheus_family(family: _Family) -> Metric:
    if isinstance(family, _Counters):
        return _counter_family(family)
    if isinstance(family, _Histograms):
        return _histogram_family(family)
    return _gauge_family(family)


def _budget_families(budgets: Sequence[Budget]) -> Iterator[_Gauges]:
    """Budget gauges from the config, one family per budget kind, labelled by their dimensions."""
    for spec in catalog.BUDGET_METRICS:
        samples = tuple((budget.labels, budget.value) for budget in budgets if budget.metric == spec.name)
        if samples:
            yield _Gauges(spec.name, spec.help, samples)


class _ExpositionWriter:
    """Writes families in the Prometheus text format or OpenMetrics, as prometheus_client does.

    prometheus_client formats every sample from scratch; here the labels of a series are written
    once for all its samples (a histogram series has 20), and label values and counts, which
    series share, are escaped or formatted once per scrape.
    """

    def __init__(self, openmetrics: bool) -> None:
        self.openmetrics = openmetrics
        self.chunks: list[str] = []
        self._escaped: dict[str, str] = {}
        self._counts: dict[int, str] = {}

    def _escape(self, value: str) -> str:
        escaped = self._escaped.get(value)
        if escaped is None:
            escaped = self._escaped[value] = value.translate(_VALUE_ESCAPES)
        return escaped

    def _count(self, count: int) -> str:
        text = self._counts.get(count)
        if text is None:
            text = self._counts[count] = floatToGoString(count)
        return text

    def _pairs(self, names: Sequence[str], values: Sequence[str]) -> list[str]:
        """`name="value"` of each label, sorted by name as prometheus_client sorts them."""
        return [f'{name}="{self._escape(value)}"' for name, value in sorted(zip(names, values, strict=True))]

    def _header(self, name: str, kind: str, help_text: str, unit: str) -> None:
        if self.openmetrics:
            self.chunks.append(f"# HELP {name} {help_text.translate(_VALUE_ESCAPES)}\n# TYPE {name} {kind}\n")
            if unit:
                self.chunks.append(f"# UNIT {name} {unit}\n")
        else:
            self.chunks.append(f"# HELP {name} {help_text.translate(_TEXT_HELP_ESCAPES)}\n# TYPE {name} {kind}\n")

    def _exemplar(self, exemplar: Exemplar | None) -> str:
        if exemplar is None or not self.openmetrics:
            return ""
        trace_id, span_id, value, timestamp_seconds = exemplar
        # Hex digits only: nothing to escape.
        return (f' # {{{EXEMPLAR_SPAN_ID}="{span_id.hex()}",'
                f'{EXEMPLAR_TRACE_ID}="{trace_id.hex()}"}} '
                f"{floatToGoString(value)} {timestamp_seconds}")

    def counters(self, family: _Counters) -> None:
        """HELP/TYPE(/UNIT), then `name_total{labels} value [exemplar]` per series."""
        spec = family.spec
        sample = f"{spec.family_name}_total"
        self._header(spec.family_name if self.openmetrics else sample, "counter", spec.help, spec.unit)
        names, exemplars, append = family.label_names, spec.exemplars, self.chunks.append
        for labels, series in family.series.items():
            label_text = f"{{{','.join(self._pairs(names, labels))}}}" if labels else ""
            exemplar = self._exemplar(series.exemplar) if exemplars else ""
            append(f"{sample}{label_text} {floatToGoString(series.value)}{exemplar}\n")

    def histograms(self, family: _Histograms) -> None:
        """HELP/TYPE(/UNIT), then per series its cumulative buckets, `_count` and `_sum`."""
        spec = family.spec
        name = spec.family_name
        self._header(name, "histogram", spec.help, spec.unit)
        names = family.label_names
        before_le = sum(1 for label in names if label < _BUCKET_LABEL)
        bucket_templates = [f'{name}_bucket{{%sle="{bound}"%s}} ' for bound in _bucket_bounds(spec)]
        count_sample, sum_sample = f"{name}_count", f"{name}_sum"
        append, count_text, exemplar_text = self.chunks.append, self._count, self._exemplar
        for labels, state in family.series.items():
            pairs = self._pairs(names, labels)
            around_le = ("".join(f"{pair}," for pair in pairs[:before_le]),
                         "".join(f",{pair}" for pair in pairs[before_le:]))
            exemplars = state.exemplars
            cumulative = 0
            for index, (template, count) in enumerate(zip(bucket_templates, state.bucket_counts, strict=True)):
                cumulative += count
                exemplar = exemplar_text(exemplars.get(index)) if exemplars else ""
                append(f"{template % around_le}{count_text(cumulative)}{exemplar}\n")
            label_text = f"{{{','.join(pairs)}}}" if pairs else ""
            append(f"{count_sample}{label_text} {count_text(cumulative)}\n"
                   f"{sum_sample}{label_text} {floatToGoString(state.sum)}\n")

    def gauges(self, family: _Gauges) -> None:
        """HELP/TYPE, then one line per sample with its own labels."""
        self._header(family.name, "gauge", family.help, "")
        for labels, value in family.samples:
            pairs = self._pairs([name for name, _ in labels], [value for _, value in labels])
            label_text = f"{{{','.join(pairs)}}}" if pairs else ""
            self.chunks.append(f"{family.name}{label_text} {floatToGoString(value)}\n")

    def write(self, family: _Family) -> None:
        """Append the lines of one family."""
        if isinstance(family, _Counters):
            self.counters(family)
        elif isinstance(family, _Histograms):
            self.histograms(family)
        else:
            self.gauges(family)


def _write_families(families: Iterable[_Family], openmetrics: bool) -> str:
    """The exposition text of the families, without the OpenMetrics `# EOF` terminator."""
    writer = _ExpositionWriter(openmetrics)
    for family in families:
        writer.write(family)
    return "".join(writer.chunks)


class GenAICollector:
    """Custom collector: fresh families from the aggregator on every scrape.

    Example output (Prometheus text format):
        # HELP genai_tokens_total Billed tokens of GenAI model calls; ...
        # TYPE genai_tokens_total counter
        genai_tokens_total{feature="search",model="gpt-4o-mini",operation="chat",provider="openai",
                           service="checkout",token_type="input",user_tier="free"} 1200.0
    """

    def __init__(self, aggregator: Aggregator, lock: threading.Lock, budgets: Sequence[Budget] = (),
                 build: tuple[str, str, str] | None = None) -> None:
        self._aggregator = aggregator
        self._lock = lock
        if build is None:  # the labels of genai_exporter_build_info, of this process by default
            build = (__version__, platform.python_version(), data_path_build())
        build_info = _Gauges(catalog.BUILD_INFO.name, catalog.BUILD_INFO.help,
                             ((tuple(zip(catalog.BUILD_INFO.labels, build, strict=True)), 1.0),))
        self._static_families: tuple[_Gauges, ...] = (build_info, *_budget_families(budgets))

    def _live_families(self) -> list[_Family]:
        """The aggregator's families; they read its live state, so they are used under the lock."""
        agg = self._aggregator
        dims = agg.dimension_labels

        def counters(spec: catalog.MetricSpec, series: Mapping[LabelValues, CounterSeries]) -> _Counters:
            return _Counters(spec, _label_names(spec, dims), series)

        def totals(spec: catalog.MetricSpec, values: Mapping[LabelValues, float]) -> _Counters:
            return counters(spec, {labels: CounterSeries(value) for labels, value in values.items()})

        def histograms(spec: catalog.MetricSpec, series: Mapping[LabelValues, HistogramState]) -> _Histograms:
            return _Histograms(spec, _label_names(spec, dims), series)

        return [
            counters(catalog.TOKENS, agg.tokens.series),
            counters(catalog.COST, agg.cost.series),
            counters(catalog.CACHE_SAVINGS, agg.cache_savings.series),
            counters(catalog.UNPRICED_TOKENS, agg.unpriced_tokens.series),
            histograms(catalog.OPERATION_DURATION, agg.duration.series),
            counters(catalog.EMPTY_RESPONSES, agg.empty_responses.series),
            counters(catalog.FINISH_REASONS, agg.finish_reasons.series),
            histograms(catalog.TIME_TO_FIRST_TOKEN, agg.time_to_first_token.series),
            histograms(catalog.AGENT_RUN_COST, agg.agent_run_cost.series),
            histograms(catalog.AGENT_RUN_MODEL_CALLS, agg.agent_run_model_calls.series),
            histograms(catalog.AGENT_RUN_TOOL_CALLS, agg.agent_run_tool_calls.series),
            counters(catalog.OUTPUT_CHECKS, agg.output_checks.series),
            histograms(catalog.EVALUATION_SCORE, agg.evaluation_score.series),
            counters(catalog.EVALUATIONS, agg.evaluations.series),
            totals(catalog.SPANS_RECEIVED, {(): agg.spans_received}),
            totals(catalog.SPANS_REJECTED, {(r,): n for r, n in sorted(agg.spans_rejected.items())}),
            totals(catalog.SPANS_IGNORED, {(): agg.spans_ignored}),
            totals(catalog.SPANS_DROPPED, {(): agg.spans_dropped}),
            totals(catalog.LABEL_OVERFLOW, {(label,): n for label, n in sorted(agg.label_overflows.items())}),
            totals(catalog.REQUESTS, {(code,): n for code, n in sorted(agg.requests.items())}),
            totals(catalog.AGENT_RUNS_EVICTED, {(): agg.agent_runs_evicted}),
        ]

    def collect(self) -> Iterator[Metric]:
        """Called by prometheus_client on every scrape."""
        with self._lock:
            families = [_prometheus_family(family) for family in self._live_families()]
        yield from families
        yield from (_prometheus_family(family) for family in self._static_families)

    def write(self, openmetrics: bool) -> str:
        """What prometheus_client's encoder writes for `collect()`, without building the families."""
        with self._lock:
            live = _write_families(self._live_families(), openmetrics)
        return live + _write_families(self._static_families, openmetrics)


class _RegistryAsCollector:
    """A registry seen as one collector, so it can be encoded after ours in a registry of their own."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterator[Metric]:
        return self._registry.collect()


def metrics_renderer(collector: GenAICollector, others: CollectorRegistry | None = None,
                     ) -> Callable[[str | None], tuple[bytes, str]]:
    """A scrape handler: Accept header in, (body, content type) out, OpenMetrics when asked for.

    The collector's families come first, written directly; then those of `others` (e.g. the
    process collector) through prometheus_client's encoders. Content negotiation is
    prometheus_client's, so both parts always agree on the format.
    """

    def render(accept_header: str | None) -> tuple[bytes, str]:
        encoder, content_type = choose_encoder(accept_header or "")
        # choose_encoder binds the negotiated escaping to the encoder it returns (a partial); the
        # plain text encoder it returns without one defaults to underscores.
        escaping = getattr(encoder, "keywords", {}).get("escaping", UNDERSCORES)
        if escaping not in _IDENTITY_ESCAPINGS:
            registry = CollectorRegistry()
            registry.register(collector)
            if others is not None:
                registry.register(_RegistryAsCollector(others))
            return encoder(registry), content_type
        openmetrics = content_type.startswith(OPENMETRICS_MEDIA_TYPE)
        ours = collector.write(openmetrics).encode()
        if others is not None:
            return ours + encoder(others), content_type
        return (ours + _EOF if openmetrics else ours), content_type

    return render
