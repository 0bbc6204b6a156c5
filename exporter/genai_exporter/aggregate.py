"""Aggregate stage: Observations (with their price) -> cumulative series state with bounded memory.

Holds plain dicts keyed by label-value tuples, not prometheus_client metric objects: label tuples
are resolved once per span, every label is capped to a number of distinct values (later values
become `__overflow__` and are still counted, so totals stay exact), and agent-run tallies waiting
for their invoke_agent span live in a bounded LRU. No clock and no I/O: exemplar timestamps come
from the span's end time. Not thread-safe by itself; the pipeline serialises access.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

from genai_exporter import catalog, semconv
from genai_exporter.config import CardinalityLimits
from genai_exporter.normalize import Observation
from genai_exporter.records import TokenCost

LabelValues = tuple[str, ...]
# Layers whose operations can come back empty (genai_empty_responses_total).
_LAYERS_WITH_EMPTY_RESPONSES = frozenset({catalog.LAYER_MODEL, catalog.LAYER_TOOL})


@dataclass(frozen=True, slots=True)
class Exemplar:
    """Link from a data point to the span that produced it (OpenMetrics exemplar)."""

    trace_id: str
    span_id: str
    value: float
    timestamp_seconds: float


@dataclass(slots=True)
class HistogramState:
    """Cumulative state of one histogram series: per-bucket counts (not cumulative), sum, count."""

    bucket_counts: list[int]
    sum: float = 0.0
    count: int = 0
    exemplars: dict[int, Exemplar] = field(default_factory=dict)


@dataclass(slots=True)
class CounterFamily:
    """Values of one counter family by label values, with the latest exemplar per series."""

    spec: catalog.MetricSpec
    values: dict[LabelValues, float] = field(default_factory=dict)
    exemplars: dict[LabelValues, Exemplar] = field(default_factory=dict)

    def add(self, labels: LabelValues, amount: float, exemplar: Exemplar | None = None) -> None:
        """Increase one series; counters never decrease, so negative amounts are ignored."""
        if amount < 0:
            return
        self.values[labels] = self.values.get(labels, 0.0) + amount
        if exemplar is not None and self.spec.exemplars:
            self.exemplars[labels] = exemplar


@dataclass(slots=True)
class HistogramFamily:
    """States of one histogram family by label values."""

    spec: catalog.MetricSpec
    series: dict[LabelValues, HistogramState] = field(default_factory=dict)

    def observe(self, labels: LabelValues, value: float, exemplar: Exemplar | None = None) -> None:
        """Record one observation into its bucket (the +Inf bucket is the last index)."""
        state = self.series.get(labels)
        if state is None:
            state = HistogramState([0] * (len(self.spec.buckets) + 1))
            self.series[labels] = state
        index = bisect_left(self.spec.buckets, value)
        state.bucket_counts[index] += 1
        state.sum += value
        state.count += 1
        if exemplar is not None and self.spec.exemplars:
            state.exemplars[index] = exemplar


class LabelCap:
    """Keeps at most `max_values` distinct values of one label; the rest become __overflow__."""

    def __init__(self, label: str, max_values: int, max_length: int) -> None:
        self.label = label
        self._max_values = max_values
        self._max_length = max_length
        self._seen: set[str] = set()
        self.overflows = 0

    def __call__(self, value: str) -> str:
        """The value to use as the label value; counts an overflow when the cap is reached."""
        if value in self._seen:
            return value
        if len(value) > self._max_length:
            value = value[: self._max_length]
            if value in self._seen:
                return value
        if len(self._seen) < self._max_values:
            self._seen.add(value)
            return value
        self.overflows += 1
        return catalog.OVERFLOW_VALUE


@dataclass(slots=True)
class _RunTally:
    cost_usd: float = 0.0
    model_calls: int = 0
    tool_calls: int = 0


class Aggregator:
    """All series state of the exporter, fed one observation at a time."""

    def __init__(self, dimension_labels: Sequence[str], dimension_caps: Sequence[int],
                 limits: CardinalityLimits) -> None:
        self.dimension_labels = tuple(dimension_labels)
        length = limits.max_label_value_length
        self._caps = {label: LabelCap(label, cap, length) for label, cap in limits.max_values.items()}
        self._dimension_caps = tuple(
            LabelCap(label, cap, length) for label, cap in zip(dimension_labels, dimension_caps, strict=True)
        )
        self._max_pending_runs = limits.max_pending_agent_runs
        self._pending_runs: OrderedDict[tuple[str, str], _RunTally] = OrderedDict()

        self.tokens = CounterFamily(catalog.TOKENS)
        self.cost = CounterFamily(catalog.COST)
        self.cache_savings = CounterFamily(catalog.CACHE_SAVINGS)
        self.unpriced_tokens = CounterFamily(catalog.UNPRICED_TOKENS)
        self.duration = HistogramFamily(catalog.OPERATION_DURATION)
        self.empty_responses = CounterFamily(catalog.EMPTY_RESPONSES)
        self.finish_reasons = CounterFamily(catalog.FINISH_REASONS)
        self.time_to_first_token = HistogramFamily(catalog.TIME_TO_FIRST_TOKEN)
        self.agent_run_cost = HistogramFamily(catalog.AGENT_RUN_COST)
        self.agent_run_model_calls = HistogramFamily(catalog.AGENT_RUN_MODEL_CALLS)
        self.agent_run_tool_calls = HistogramFamily(catalog.AGENT_RUN_TOOL_CALLS)
        self.output_checks = CounterFamily(catalog.OUTPUT_CHECKS)
        self.evaluation_score = HistogramFamily(catalog.EVALUATION_SCORE)
        self.evaluations = CounterFamily(catalog.EVALUATIONS)

        self.spans_received = 0
        self.spans_ignored = 0
        self.spans_dropped = 0
        self.agent_runs_evicted = 0
        # Known in advance, so exported at 0 from the start: the first increment is not lost.
        self.spans_rejected: dict[str, int] = dict.fromkeys(catalog.REJECT_REASONS, 0)
        # A sender's first successful export must move the 200 series, not create it.
        self.requests: dict[str, int] = {"200": 0}

    @property
    def pending_agent_runs(self) -> int:
        """Spans holding an agent-run tally while they wait for their own end."""
        return len(self._pending_runs)

    @property
    def label_overflows(self) -> dict[str, int]:
        """Overflow count per capped label (built-in labels and dimensions), every label listed."""
        counts = {cap.label: cap.overflows for cap in self._caps.values()}
        counts.update({cap.label: cap.overflows for cap in self._dimension_caps})
        return counts

    def _cap(self, label: str, value: str) -> str:
        return self._caps[label](value)

    def count_rejected(self, reason: str) -> None:
        """Count a span refused by normalize."""
        self.spans_rejected[reason] = self.spans_rejected.get(reason, 0) + 1

    def count_request(self, status_code: int) -> None:
        """Count an OTLP request by the HTTP status code it was answered with."""
        code = str(status_code)
        self.requests[code] = self.requests.get(code, 0) + 1

    def link_span(self, trace_id: str, span_id: str, parent_span_id: str) -> None:
        """Carry an agent-run tally through a span that is not a GenAI span (e.g. an HTTP hop)."""
        tally = self._pending_runs.pop((trace_id, span_id), None)
        if tally is not None and parent_span_id:
            self._carry_to_parent(trace_id, parent_span_id, tally)

    def _carry_to_parent(self, trace_id: str, parent_span_id: str, tally: _RunTally) -> None:
        key = (trace_id, parent_span_id)
        pending = self._pending_runs.get(key)
        if pending is None:
            self._pending_runs[key] = _RunTally(tally.cost_usd, tally.model_calls, tally.tool_calls)
            if len(self._pending_runs) > self._max_pending_runs:
                self._pending_runs.popitem(last=False)
                self.agent_runs_evicted += 1
            return
        pending.cost_usd += tally.cost_usd
        pending.model_calls += tally.model_calls
        pending.tool_calls += tally.tool_calls

    def record(self, observation: Observation, model: str, cost: TokenCost | None) -> None:
        """Add one GenAI span: `model` is the label value (canonical if priced), `cost` its price."""
        obs = observation
        cap = self._cap
        service = cap(catalog.SERVICE, obs.service)
        provider = cap(catalog.PROVIDER, obs.provider)
        model = cap(catalog.MODEL, model)
        operation = cap(catalog.OPERATION, obs.operation)
        agent = cap(catalog.AGENT, obs.agent)
        tool = cap(catalog.TOOL, obs.tool)
        error_type = cap(catalog.ERROR_TYPE, obs.error_type) if obs.error_type else ""
        dims = tuple(dim_cap(value) for dim_cap, value in zip(self._dimension_caps, obs.dimensions, strict=True))
        timestamp = obs.end_time_unix_nano / 1e9

        status = catalog.STATUS_ERROR if obs.error else catalog.STATUS_OK
        self.duration.observe(
            (service, obs.layer, operation, provider, model, agent, tool, status, error_type, *dims),
            obs.duration_seconds,
            Exemplar(obs.trace_id, obs.span_id, obs.duration_seconds, timestamp),
        )
        # Series the alerts divide by are started at 0 the first time their label set is seen, so
        # the first empty response or truncation of a tool or model is a visible increase (a series
        # born at 1 hides its first increment from rate() and increase()).
        if not obs.error and obs.layer in _LAYERS_WITH_EMPTY_RESPONSES:
            self.empty_responses.add((service, obs.layer, operation, provider, model, agent, tool, *dims),
                                     1 if obs.empty_response else 0)
        if obs.finish_reasons:
            self.finish_reasons.add((service, provider, model, catalog.FINISH_REASON_TRUNCATED, *dims), 0)
        for reason in obs.finish_reasons:
            self.finish_reasons.add((service, provider, model, cap(catalog.FINISH_REASON, reason), *dims), 1)
        if obs.time_to_first_token_seconds is not None:
            self.time_to_first_token.observe((service, provider, model, *dims), obs.time_to_first_token_seconds)

        usage = obs.usage
        if usage is not None:
            token_counts = (usage.input, usage.cache_read, usage.cache_write, usage.output)
            for token_type, count in zip(catalog.TOKEN_TYPES, token_counts, strict=True):
                self.tokens.add((service, provider, model, operation, token_type, *dims), count)
            # A priced model's unpriced tokens are 0, exported as such: the hole in cost tracking
            # is then a rise of an existing series, and "no unpriced tokens" reads as 0, not "no data".
            self.unpriced_tokens.add((service, provider, model, *dims), usage.total if cost is None else 0)
            if cost is not None:
                self.cache_savings.add((service, provider, model, operation, *dims), cost.cache_savings)
                costs = (cost.input, cost.cache_read, cost.cache_write, cost.output)
                for token_type, amount in zip(catalog.TOKEN_TYPES, costs, strict=True):
                    exemplar = Exemplar(obs.trace_id, obs.span_id, amount, timestamp) if amount > 0 else None
                    self.cost.add((service, provider, model, operation, token_type, *dims), amount, exemplar)

        for check, passed in obs.check_results:
            check = cap(catalog.CHECK, check)
            # Both results exist from the first check on, so a fail ratio never divides by nothing.
            for result in catalog.RESULTS:
                hit = passed == (result == catalog.RESULT_PASS)
                self.output_checks.add((service, check, result, agent, tool, model, *dims), 1 if hit else 0)
        for evaluation in obs.evaluations:
            name = cap(catalog.EVALUATION, evaluation.name)
            self.evaluations.add((service, name, cap(catalog.LABEL, evaluation.label), *dims), 1)
            if evaluation.score is not None:
                self.evaluation_score.observe((service, name, agent, model, *dims), evaluation.score)

        self._record_agent_run(obs, service, agent, dims, cost)

    def _record_agent_run(self, obs: Observation, service: str, agent: str, dims: LabelValues,
                          cost: TokenCost | None) -> None:
        # Children end before their parent: each span adds its own part to the tally its children
        # left under its id, then hands the sum to its parent. An invoke_agent span reports it.
        tally = self._pending_runs.pop((obs.trace_id, obs.span_id), None) or _RunTally()
        if obs.layer == catalog.LAYER_MODEL:
            tally.model_calls += 1
            if cost is not None:
                tally.cost_usd += cost.total
        elif obs.layer == catalog.LAYER_TOOL:
            tally.tool_calls += 1
        if obs.operation == semconv.OP_INVOKE_AGENT:
            labels = (service, agent, *dims)
            self.agent_run_cost.observe(labels, tally.cost_usd)
            self.agent_run_model_calls.observe(labels, float(tally.model_calls))
            self.agent_run_tool_calls.observe(labels, float(tally.tool_calls))
        if obs.parent_span_id and (tally.model_calls or tally.tool_calls or tally.cost_usd):
            self._carry_to_parent(obs.trace_id, obs.parent_span_id, tally)
