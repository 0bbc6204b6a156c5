"""Specification of the aggregate stage: label capping, token partition series, agent-run tallies."""

from __future__ import annotations

from dataclasses import replace

import pytest

from genai_exporter import catalog, semconv
from genai_exporter.aggregate import SERIES_LABELS_CACHE_SIZE, Aggregator
from genai_exporter.config import CardinalityLimits, default_dimensions
from genai_exporter.normalize import Normalizer, Observation
from genai_exporter.records import SpanRecord, TokenCost
from tests.spanfactory import chat_attributes, new_span_id, span

# Also run from the Python sources, not only compiled (scripts/test.sh).
pytestmark = pytest.mark.data_path

DIMENSIONS = default_dimensions()
COST = TokenCost(input=0.0003, cache_read=0.0, cache_write=0.0, output=0.0006)


def aggregator(**limits) -> Aggregator:
    return Aggregator([d.label for d in DIMENSIONS], [d.max_values for d in DIMENSIONS],
                      CardinalityLimits(**limits))


def observation(record: SpanRecord) -> Observation:
    outcome = Normalizer(DIMENSIONS).normalize(record)
    assert isinstance(outcome, Observation)
    return outcome


def chat(**kwargs) -> Observation:
    return observation(span(chat_attributes(input_tokens=2_000, output_tokens=1_000), **kwargs))


def test_every_token_type_gets_a_series_even_at_zero():
    agg = aggregator()
    agg.record(chat(), "gpt-4o-mini", COST)
    assert {labels[4]: value for labels, value in agg.tokens.values().items()} == {
        "input": 2_000.0, "cache_read": 0.0, "cache_write": 0.0, "output": 1_000.0}


def test_cost_series_carry_the_canonical_model_label():
    agg = aggregator()
    agg.record(chat(), "gpt-4o-mini", COST)
    assert sorted(agg.cost.values().items())[-1] == (
        ("checkout", "openai", "gpt-4o-mini", "chat", "output", "", ""), 0.0006)


def test_unpriced_call_counts_its_tokens_as_unpriced_and_no_cost():
    agg = aggregator()
    agg.record(chat(), "acme-reasoner-1", None)
    assert (agg.unpriced_tokens.values(), agg.cost.values()) == (
        {("checkout", "openai", "acme-reasoner-1", "", ""): 3_000.0}, {})


def test_label_values_past_the_cap_become_overflow_and_are_still_counted():
    agg = aggregator(max_values={**CardinalityLimits().max_values, catalog.MODEL: 2})
    for model in ("m1", "m2", "m3", "m4"):
        agg.record(chat(), model, None)
    models = sorted(labels[2] for labels in agg.unpriced_tokens.values())
    overflow_tokens = agg.unpriced_tokens.values()[("checkout", "openai", catalog.OVERFLOW_VALUE, "", "")]
    assert (models, overflow_tokens, agg.label_overflows[catalog.MODEL]) == (
        ["__overflow__", "m1", "m2"], 6_000.0, 2)


def test_every_observation_of_an_overflowed_value_counts_as_an_overflow():
    agg = aggregator(max_values={**CardinalityLimits().max_values, catalog.MODEL: 1})
    for model in ("m1", "m2", "m2", "m2", "m1"):
        agg.record(chat(), model, None)
    assert (agg.label_overflows[catalog.MODEL], agg.unpriced_tokens.values()[
        ("checkout", "openai", catalog.OVERFLOW_VALUE, "", "")]) == (3, 9_000.0)


def test_label_combination_cache_stays_bounded_when_values_never_repeat():
    agg = aggregator()
    base = chat()
    for index in range(SERIES_LABELS_CACHE_SIZE + 10):
        agg.record(base._replace(dimensions=(f"user-{index}", "search")), "gpt-4o-mini", None)
    assert (agg.cached_label_combinations, agg.label_overflows["user_tier"]) == (
        10, SERIES_LABELS_CACHE_SIZE + 10 - 100)


def test_dimension_values_past_their_cap_overflow():
    dims = (replace(DIMENSIONS[0], max_values=1), DIMENSIONS[1])
    agg = Aggregator([d.label for d in dims], [d.max_values for d in dims], CardinalityLimits())
    for user in ("free", "pro"):
        attributes = chat_attributes(**{semconv.DEFAULT_USER_TIER_ATTRIBUTES[0]: user})
        agg.record(observation(span(attributes)), "gpt-4o-mini", None)
    assert agg.label_overflows["user_tier"] == 1


def test_long_label_values_are_truncated():
    agg = aggregator(max_label_value_length=8)
    agg.record(chat(service="a-very-long-service-name"), "gpt-4o-mini", None)
    assert next(iter(agg.unpriced_tokens.values()))[0] == "a-very-l"


def test_distinct_values_kept_stay_bounded_whatever_arrives():
    agg = aggregator(max_values={**CardinalityLimits().max_values, catalog.SERVICE: 10})
    for index in range(5_000):
        agg.record(chat(service=f"svc-{index}"), "gpt-4o-mini", None)
    assert len(agg.duration.series) == 11


def test_duration_histogram_buckets_and_exemplar():
    agg = aggregator()
    obs = chat(duration_s=0.5)
    agg.record(obs, "gpt-4o-mini", COST)
    state = next(iter(agg.duration.series.values()))
    bucket = catalog.DURATION_BUCKETS_SECONDS.index(0.64)
    assert (state.count, state.sum, state.bucket_counts[bucket], state.exemplars[bucket][1]) == (
        1, 0.5, 1, obs.span_id)


def _agent_run(children_per_run: int, *, via_http_hop: bool = False) -> list[SpanRecord]:
    """An invoke_agent span with chat and tool children, optionally under a non-GenAI hop."""
    root_id = new_span_id()
    parent = root_id
    spans = []
    if via_http_hop:
        hop_id = new_span_id()
        spans.append(span({"http.request.method": "POST"}, span_id=hop_id, parent_span_id=root_id,
                          start_ns=1_760_000_000_000_000_000 + 9_000_000_000))
        parent = hop_id
    for index in range(children_per_run):
        start = 1_760_000_000_000_000_000 + index * 1_000_000
        spans.insert(index, span(chat_attributes(), parent_span_id=parent, start_ns=start))
        tool = {semconv.OPERATION_NAME: semconv.OP_EXECUTE_TOOL, semconv.TOOL_NAME_ALIASES[0]: "get_order"}
        spans.insert(index, span(tool, parent_span_id=parent, start_ns=start, duration_s=0.1))
    agent = {semconv.OPERATION_NAME: semconv.OP_INVOKE_AGENT, semconv.AGENT_NAME_ALIASES[0]: "support-triage"}
    spans.append(span(agent, span_id=root_id, duration_s=30))
    return spans


def _feed(agg: Aggregator, spans: list[SpanRecord]) -> None:
    normalizer = Normalizer(DIMENSIONS)
    for record in sorted(spans, key=lambda s: s.end_time_unix_nano):
        outcome = normalizer.normalize(record)
        if outcome is None:
            agg.link_span(record.trace_id, record.span_id, record.parent_span_id)
        else:
            agg.record(outcome, "gpt-4o-mini", COST if outcome.layer == "model" else None)


def test_agent_run_counts_model_and_tool_calls_beneath_it():
    agg = aggregator()
    _feed(agg, _agent_run(3))
    labels = ("checkout", "support-triage", "", "")
    model_calls = agg.agent_run_model_calls.series[labels]
    tool_calls = agg.agent_run_tool_calls.series[labels]
    assert (model_calls.sum, tool_calls.sum, model_calls.count) == (3.0, 3.0, 1)


def test_agent_run_cost_is_the_sum_of_its_model_calls():
    agg = aggregator()
    _feed(agg, _agent_run(4))
    assert agg.agent_run_cost.series[("checkout", "support-triage", "", "")].sum == COST.total * 4


def test_agent_run_tally_crosses_non_genai_spans():
    agg = aggregator()
    _feed(agg, _agent_run(2, via_http_hop=True))
    assert agg.agent_run_model_calls.series[("checkout", "support-triage", "", "")].sum == 2.0


def test_pending_agent_runs_are_bounded_and_evictions_counted():
    agg = aggregator(max_pending_agent_runs=5)
    for _ in range(8):
        agg.record(chat(parent_span_id=new_span_id()), "gpt-4o-mini", COST)
    assert (agg.pending_agent_runs, agg.agent_runs_evicted) == (5, 3)


def test_rejection_reasons_start_at_zero():
    assert aggregator().spans_rejected == dict.fromkeys(catalog.REJECT_REASONS, 0)


def test_a_series_keeps_counting_after_its_label_combination_left_the_cache():
    agg = aggregator()
    first = chat()
    agg.record(first, "gpt-4o-mini", COST)
    for index in range(SERIES_LABELS_CACHE_SIZE):
        agg.record(first._replace(dimensions=(f"user-{index}", "search")), "gpt-4o-mini", None)
    agg.record(first, "gpt-4o-mini", COST)
    labels = ("checkout", "openai", "gpt-4o-mini", "chat", "output", "", "")
    assert (agg.tokens.values()[labels], agg.cost.values()[labels], agg.cost.series[labels].exemplar[1]) == (
        2_000.0, 0.0012, first.span_id)


def test_every_finish_reason_past_its_cap_counts_as_an_overflow():
    agg = aggregator(max_values={**CardinalityLimits().max_values, catalog.FINISH_REASON: 2})
    for reasons in (("stop",), ("length",), ("content_filter",), ("content_filter", "stop"), ("content_filter",)):
        agg.record(chat()._replace(finish_reasons=reasons), "gpt-4o-mini", None)
    counts = {labels[3]: value for labels, value in agg.finish_reasons.values().items()}
    assert (counts, agg.label_overflows[catalog.FINISH_REASON]) == (
        {"length": 1.0, "stop": 2.0, catalog.OVERFLOW_VALUE: 3.0}, 3)
