"""Aggregate stage: Observations (with their price) -> cumulative series state with bounded memory.

Holds plain dicts from label-value tuples to mutable series states, not prometheus_client metric
objects. Every label is capped to a number of distinct values (later values become `__overflow__`
and are still counted, so totals stay exact). Spans of a fleet repeat a few label combinations, so
the series a combination updates are resolved once and kept, by reference, in a bounded cache; a
span then adds to them without hashing a label tuple. Agent-run tallies waiting for their
invoke_agent span live in a bounded LRU. No clock and no I/O: exemplar timestamps come from the
span's end time. Not thread-safe by itself; the pipeline serialises access.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

from genai_exporter import catalog
from genai_exporter.catalog import LAYER_MODEL, LAYER_TOOL  # read on every span: by name, not as module attributes
from genai_exporter.config import CardinalityLimits
from genai_exporter.normalize import Observation
from genai_exporter.records import TokenCost
from genai_exporter.semconv import OP_INVOKE_AGENT  # read on every span: by name, not as a module attribute

LabelValues = tuple[str, ...]
# Layers whose operations can come back empty (genai_empty_responses_total).
_LAYERS_WITH_EMPTY_RESPONSES = frozenset({LAYER_MODEL, LAYER_TOOL})
# Layers whose calls an agent run counts (genai_agent_run_model_calls, genai_agent_run_tool_calls).
_RUN_LAYERS = frozenset({LAYER_MODEL, LAYER_TOOL})
# Label combinations whose resolved series labels are cached. Each entry holds about ten label
# tuples (~1 KiB); past the limit the cache starts over, so values that never repeat (a client
# putting ids in a dimension) cost time, never memory.
SERIES_LABELS_CACHE_SIZE = 4096


# Link from a data point to the span that produced it (OpenMetrics exemplar): (trace_id, span_id,
# value, timestamp_seconds), the ids as the span's bytes (exposition writes them as hex). A plain
# tuple, not a NamedTuple: one is made per series a span updates, and a plain tuple is built ten
# times faster than a NamedTuple (bench/RESULTS.md).
Exemplar = tuple[bytes, bytes, float, float]


@dataclass(slots=True)
class HistogramState:
    """Cumulative state of one histogram series: per-bucket counts (not cumulative), sum, count."""

    bucket_counts: list[int]
    sum: float = 0.0
    count: int = 0
    exemplars: dict[int, Exemplar] = field(default_factory=dict)


@dataclass(slots=True)
class CounterSeries:
    """Cumulative state of one counter series: its value and its latest exemplar.

    Mutable and referenced from the cache of resolved series, so that a span adds to it without
    hashing its label tuple again.
    """

    value: float = 0.0
    exemplar: Exemplar | None = None


@dataclass(slots=True)
class CounterFamily:
    """States of one counter family by label values."""

    spec: catalog.MetricSpec
    series: dict[LabelValues, CounterSeries] = field(default_factory=dict)

    def values(self) -> dict[LabelValues, float]:
        """Every series' value by its label values (a copy)."""
        return {labels: state.value for labels, state in self.series.items()}

    def series_of(self, labels: LabelValues) -> CounterSeries:
        """The series of these label values, started at 0 if it did not exist."""
        state = self.series.get(labels)
        if state is None:
            state = self.series[labels] = CounterSeries()
        return state

    def add(self, labels: LabelValues, amount: float, exemplar: Exemplar | None = None) -> None:
        """Increase one series; counters never decrease, so negative amounts are ignored."""
        if amount < 0:
            return
        state = self.series_of(labels)
        state.value += amount
        if exemplar is not None and self.spec.exemplars:
            state.exemplar = exemplar


@dataclass(slots=True)
class HistogramFamily:
    """States of one histogram family by label values."""

    spec: catalog.MetricSpec
    series: dict[LabelValues, HistogramState] = field(default_factory=dict)

    def series_of(self, labels: LabelValues) -> HistogramState:
        """The series of these label values, created empty if it did not exist."""
        state = self.series.get(labels)
        if state is None:
            state = self.series[labels] = HistogramState([0] * (len(self.spec.buckets) + 1))
        return state

    def observe(self, labels: LabelValues, value: float, exemplar: Exemplar | None = None) -> None:
        """Record one observation into its bucket (the +Inf bucket is the last index)."""
        self.observe_into(self.series_of(labels), value, exemplar)

    def observe_into(self, state: HistogramState, value: float, exemplar: Exemplar | None = None) -> None:
        """Record one observation into a series already resolved (see `series_of`)."""
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

    def add_call(self, layer: str, cost: TokenCost | None) -> None:
        """Count one model or tool call of the run, and a model call's cost."""
        if layer == LAYER_MODEL:
            self.model_calls += 1
            if cost is not None:
                self.cost_usd += cost.total
        else:
            self.tool_calls += 1


@dataclass(slots=True)
class _ResolvedSeries:
    """The capped label tuples of every series that spans of one label combination update, and the
    states of those series, each looked up the first time a span of the combination moves it.

    `overflowed` lists the caps that turned a value of the combination into `__overflow__`: they
    count one overflow per observation, so they are counted again on every use of the entry.
    """

    service: str
    dimensions: LabelValues
    provider_model: tuple[str, str]
    tokens: tuple[LabelValues, ...]
    per_model: LabelValues
    cache_savings: LabelValues
    truncations: LabelValues
    agent_tool_model: tuple[str, str, str]
    agent_run: LabelValues
    overflowed: tuple[LabelCap, ...]
    duration_state: HistogramState
    # None for spans that cannot come back empty (errors, layers other than model and tool).
    empty_responses_state: CounterSeries | None
    time_to_first_token_state: HistogramState | None = None
    token_states: tuple[CounterSeries, ...] = ()
    unpriced_state: CounterSeries | None = None
    cost_states: tuple[CounterSeries, ...] = ()
    cache_savings_state: CounterSeries | None = None
    # Series of each finish reason that its cap let through (an overflowing one is capped each time).
    finish_reason_states: dict[str, CounterSeries] = field(default_factory=dict)


class Aggregator:
    """All series state of the exporter, fed one observation at a time."""

    # Slots, read on every span: a slot is found on the class, an attribute of __dict__ only after it.
    __slots__ = (
        "_caps", "_dimension_caps", "_max_pending_runs", "_pending_runs", "_series_cache", "agent_run_cost",
        "agent_run_model_calls", "agent_run_tool_calls", "agent_runs_evicted", "cache_savings", "cost",
        "dimension_labels", "duration", "empty_responses", "evaluation_score", "evaluations", "finish_reasons",
        "output_checks", "requests", "spans_dropped", "spans_ignored", "spans_received", "spans_rejected",
        "time_to_first_token", "tokens", "unpriced_tokens",
    )

    def __init__(self, dimension_labels: Sequence[str], dimension_caps: Sequence[int],
                 limits: CardinalityLimits) -> None:
        self.dimension_labels = tuple(dimension_labels)
        length = limits.max_label_value_length
        self._caps = {label: LabelCap(label, cap, length) for label, cap in limits.max_values.items()}
        self._dimension_caps = tuple(
            LabelCap(label, cap, length) for label, cap in zip(dimension_labels, dimension_caps, strict=True)
        )
        self._max_pending_runs = limits.max_pending_agent_runs
        self._pending_runs: OrderedDict[tuple[bytes, bytes], _RunTally] = OrderedDict()
        self._series_cache: dict[tuple[object, ...], _ResolvedSeries] = {}

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
    def cached_label_combinations(self) -> int:
        """Label combinations whose series labels are cached: lets tests check the cache stays bounded."""
        return len(self._series_cache)

    @property
    def label_overflows(self) -> dict[str, int]:
        """Overflow count per capped label (built-in labels and dimensions), every label listed."""
        counts = {cap.label: cap.overflows for cap in self._caps.values()}
        counts.update({cap.label: cap.overflows for cap in self._dimension_caps})
        return counts

    def count_rejected(self, reason: str) -> None:
        """Count a span refused by normalize."""
        self.spans_rejected[reason] = self.spans_rejected.get(reason, 0) + 1

    def count_request(self, status_code: int) -> None:
        """Count an OTLP request by the HTTP status code it was answered with."""
        code = str(status_code)
        self.requests[code] = self.requests.get(code, 0) + 1

    def link_span(self, trace_id: bytes, span_id: bytes, parent_span_id: bytes) -> None:
        """Carry an agent-run tally through a span that is not a GenAI span (e.g. an HTTP hop)."""
        tally = self._pending_runs.pop((trace_id, span_id), None)
        if tally is not None and parent_span_id:
            self._carry_to_parent(trace_id, parent_span_id, tally)

    def _carry_to_parent(self, trace_id: bytes, parent_span_id: bytes, tally: _RunTally) -> None:
        """Add a tally to the parent's; the caller hands over `tally` and must not use it again."""
        key = (trace_id, parent_span_id)
        pending = self._pending_runs.get(key)
        if pending is None:
            self._pending_runs[key] = tally
            if len(self._pending_runs) > self._max_pending_runs:
                self._pending_runs.popitem(last=False)
                self.agent_runs_evicted += 1
            return
        pending.cost_usd += tally.cost_usd
        pending.model_calls += tally.model_calls
        pending.tool_calls += tally.tool_calls

    def _resolve(self, obs: Observation, model: str) -> _ResolvedSeries:
        """Cap each label value of the observation and build the label tuples of its series."""
        caps = self._caps
        overflows_before = {cap: cap.overflows for cap in (*caps.values(), *self._dimension_caps)}
        service = caps[catalog.SERVICE](obs.service)
        provider = caps[catalog.PROVIDER](obs.provider)
        model = caps[catalog.MODEL](model)
        operation = caps[catalog.OPERATION](obs.operation)
        agent = caps[catalog.AGENT](obs.agent)
        tool = caps[catalog.TOOL](obs.tool)
        error_type = caps[catalog.ERROR_TYPE](obs.error_type) if obs.error_type else ""
        dims = tuple(dim_cap(value) for dim_cap, value in zip(self._dimension_caps, obs.dimensions, strict=True))
        status = catalog.STATUS_ERROR if obs.error else catalog.STATUS_OK
        duration = (service, obs.layer, operation, provider, model, agent, tool, status, error_type, *dims)
        # Series the alerts divide by are started at 0 the first time their label set is seen, so
        # the first empty response or truncation of a tool or model is a visible increase (a series
        # born at 1 hides its first increment from rate() and increase()).
        empty_responses = None
        if not obs.error and obs.layer in _LAYERS_WITH_EMPTY_RESPONSES:
            empty_responses = self.empty_responses.series_of(
                (service, obs.layer, operation, provider, model, agent, tool, *dims))
        return _ResolvedSeries(
            service=service, dimensions=dims, provider_model=(provider, model),
            tokens=tuple((service, provider, model, operation, token_type, *dims)
                         for token_type in catalog.TOKEN_TYPES),
            per_model=(service, provider, model, *dims),
            cache_savings=(service, provider, model, operation, *dims),
            truncations=(service, provider, model, catalog.FINISH_REASON_TRUNCATED, *dims),
            agent_tool_model=(agent, tool, model),
            agent_run=(service, agent, *dims),
            overflowed=tuple(cap for cap, before in overflows_before.items() if cap.overflows > before),
            duration_state=self.duration.series_of(duration),
            empty_responses_state=empty_responses,
        )

    def record(self, observation: Observation, model: str, cost: TokenCost | None) -> None:
        """Add one GenAI span: `model` is the label value (canonical if priced), `cost` its price."""
        # One unpacking instead of a dozen attribute reads: this runs for every span.
        (service, dimensions, layer, operation, provider, _, agent, tool, error, error_type, duration, usage,
         empty_response, finish_reasons, time_to_first_token, trace_id, span_id, parent_span_id, end_time_unix_nano,
         check_results, evaluations) = observation
        key = (service, layer, operation, provider, model, agent, tool, error, error_type, dimensions)
        series = self._series_cache.get(key)
        if series is None:
            series = self._resolve(observation, model)
            if len(self._series_cache) >= SERIES_LABELS_CACHE_SIZE:
                self._series_cache.clear()
            self._series_cache[key] = series
        else:
            for cap in series.overflowed:
                cap.overflows += 1
        timestamp = end_time_unix_nano / 1e9

        self.duration.observe_into(series.duration_state, duration, (trace_id, span_id, duration, timestamp))
        empty_responses = series.empty_responses_state
        if empty_responses is not None and empty_response:
            empty_responses.value += 1
        if finish_reasons:
            self._record_finish_reasons(finish_reasons, series)
        if time_to_first_token is not None:
            state = series.time_to_first_token_state
            if state is None:
                state = series.time_to_first_token_state = self.time_to_first_token.series_of(series.per_model)
            self.time_to_first_token.observe_into(state, time_to_first_token)

        if usage is not None:
            token_states = series.token_states
            if not token_states:
                token_states = series.token_states = tuple(map(self.tokens.series_of, series.tokens))
            # Same order as catalog.TOKEN_TYPES; counters never decrease, so negative counts are ignored.
            # Equal lengths by construction; zip's strict= keyword would cost a keyword call per span.
            for state, count in zip(token_states, usage):  # noqa: B905
                if count > 0:
                    state.value += count
            # A priced model's unpriced tokens are 0, exported as such: the hole in cost tracking
            # is then a rise of an existing series, and "no unpriced tokens" reads as 0, not "no data".
            unpriced = series.unpriced_state
            if unpriced is None:
                unpriced = series.unpriced_state = self.unpriced_tokens.series_of(series.per_model)
            if cost is None:
                unpriced.value += usage.total
            else:
                self._record_cost(cost, series, trace_id, span_id, timestamp)

        if check_results or evaluations:
            self._record_quality(observation, series)
        self._record_agent_run(trace_id, span_id, parent_span_id, layer, operation, series.agent_run, cost)

    def _record_finish_reasons(self, reasons: tuple[str, ...], series: _ResolvedSeries) -> None:
        if not series.finish_reason_states:
            self.finish_reasons.series_of(series.truncations)
        states = series.finish_reason_states
        for reason in reasons:
            state = states.get(reason)
            if state is None:
                capped = self._caps[catalog.FINISH_REASON](reason)
                (provider, model) = series.provider_model
                state = self.finish_reasons.series_of((series.service, provider, model, capped, *series.dimensions))
                if capped != catalog.OVERFLOW_VALUE:
                    states[reason] = state
            state.value += 1

    def _record_cost(self, cost: TokenCost, series: _ResolvedSeries, trace_id: bytes, span_id: bytes,
                     timestamp: float) -> None:
        savings = series.cache_savings_state
        if savings is None:
            savings = series.cache_savings_state = self.cache_savings.series_of(series.cache_savings)
        if cost.cache_savings >= 0:
            savings.value += cost.cache_savings
        cost_states = series.cost_states
        if not cost_states:
            cost_states = series.cost_states = tuple(map(self.cost.series_of, series.tokens))
        # The first four fields of a TokenCost, in the order of catalog.TOKEN_TYPES (no strict=, as above).
        for state, amount in zip(cost_states, cost[:4]):  # noqa: B905
            if amount > 0:
                state.value += amount
                state.exemplar = (trace_id, span_id, amount, timestamp)

    def _record_quality(self, obs: Observation, series: _ResolvedSeries) -> None:
        service, dims = series.service, series.dimensions
        agent, tool, model = series.agent_tool_model
        for check, passed in obs.check_results:
            check = self._caps[catalog.CHECK](check)
            # Both results exist from the first check on, so a fail ratio never divides by nothing.
            for result in catalog.RESULTS:
                hit = passed == (result == catalog.RESULT_PASS)
                self.output_checks.add((service, check, result, agent, tool, model, *dims), 1 if hit else 0)
        for evaluation in obs.evaluations:
            name = self._caps[catalog.EVALUATION](evaluation.name)
            self.evaluations.add((service, name, self._caps[catalog.LABEL](evaluation.label), *dims), 1)
            if evaluation.score is not None:
                self.evaluation_score.observe((service, name, agent, model, *dims), evaluation.score)

    def _record_agent_run(self, trace_id: bytes, span_id: bytes, parent_span_id: bytes, layer: str, operation: str,
                          labels: LabelValues, cost: TokenCost | None) -> None:
        # Children end before their parent: each span adds its own part to the tally its children
        # left under its id, then hands the sum to its parent. An invoke_agent span reports it.
        tally = self._pending_runs.pop((trace_id, span_id), None)
        counts_a_call = layer in _RUN_LAYERS
        if tally is None and counts_a_call and parent_span_id and operation != OP_INVOKE_AGENT:
            # A call with no children goes straight into its parent's tally when a sibling already
            # started one (most calls of a run), without a tally of its own.
            parent = self._pending_runs.get((trace_id, parent_span_id))
            if parent is not None:
                parent.add_call(layer, cost)
                return
        if counts_a_call:
            if tally is None:
                tally = _RunTally()
            tally.add_call(layer, cost)
        if operation == OP_INVOKE_AGENT:
            if tally is None:
                tally = _RunTally()
            self.agent_run_cost.observe(labels, tally.cost_usd)
            self.agent_run_model_calls.observe(labels, float(tally.model_calls))
            self.agent_run_tool_calls.observe(labels, float(tally.tool_calls))
        if (tally is not None and parent_span_id
                and (tally.model_calls or tally.tool_calls or tally.cost_usd)):
            self._carry_to_parent(trace_id, parent_span_id, tally)
