"""Specification of the quality signals: deterministic output checks and evaluation scores."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry

from genai_exporter import catalog, semconv
from genai_exporter.checks import CapturedOutput, run_check, span_matches
from genai_exporter.config import (
    CHECK_JSON,
    CHECK_NOT_EMPTY,
    CHECK_REQUIRED_FIELDS,
    CHECK_TOOL_CALLED,
    ConfigError,
    OutputCheck,
    SpanMatch,
    load_config,
    parse_config,
    parse_field_path,
)
from genai_exporter.inprocess import GenAIMetricsSpanProcessor
from genai_exporter.normalize import Evaluation, Normalizer, Observation
from genai_exporter.pipeline import Pipeline
from genai_exporter.records import SpanEvent
from tests.spanfactory import chat_attributes, span

# Also run from the Python sources, not only compiled (scripts/test.sh).
pytestmark = pytest.mark.data_path

ANSWER = '{"summary": "Revenue grew 12%.", "sql": "SELECT region, SUM(amount) FROM orders", "sources": [{"url": "x"}]}'
VALID_JSON = OutputCheck("valid_json", CHECK_JSON)
ANSWER_FIELDS = OutputCheck("answer_fields", CHECK_REQUIRED_FIELDS,
                            fields=(("summary",), ("sql",), ("sources", 0, "url")))
SUPPORT_TOOLS = OutputCheck("support_tools", CHECK_TOOL_CALLED, tools=("get_order", "search_docs"))
NOT_EMPTY = OutputCheck("not_empty", CHECK_NOT_EMPTY)


def _assistant(*parts: dict[str, object]) -> str:
    return json.dumps([{semconv.OUTPUT_MESSAGE_ROLE: semconv.ROLE_ASSISTANT, semconv.OUTPUT_MESSAGE_PARTS: list(parts),
                        semconv.OUTPUT_MESSAGE_FINISH_REASON: "stop"}])


def _text_part(content: str) -> dict[str, object]:
    return {semconv.OUTPUT_PART_TYPE: semconv.OUTPUT_PART_TEXT_TYPE, semconv.OUTPUT_PART_CONTENT: content}


# --- the checks --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "passed"), [
    (ANSWER, True),
    ("```json\n" + ANSWER + "\n```", False),
    (ANSWER[:40], False),
    ("", False),
])
def test_valid_json_check(text, passed):
    assert run_check(VALID_JSON, CapturedOutput(text)) is passed


@pytest.mark.parametrize(("text", "passed"), [
    (ANSWER, True),
    ('{"summary": "Revenue grew 12%.", "sources": [{"url": "x"}]}', False),  # no sql
    ('{"summary": "Revenue grew 12%.", "sql": null, "sources": [{"url": "x"}]}', False),  # sql is null
    ('{"summary": "s", "sql": "q", "sources": []}', False),  # no first source
    ('["summary", "sql"]', False),  # not an object
    (ANSWER[:40], False),
])
def test_required_fields_check(text, passed):
    assert run_check(ANSWER_FIELDS, CapturedOutput(text)) is passed


@pytest.mark.parametrize(("tool_calls", "passed"), [
    (("get_order",), True),
    (("web_search", "search_docs"), True),
    (("web_search",), False),
    ((), False),
])
def test_tool_called_check(tool_calls, passed):
    assert run_check(SUPPORT_TOOLS, CapturedOutput("", tool_calls)) is passed


@pytest.mark.parametrize(("output", "passed"), [
    (CapturedOutput("Your order has shipped."), True),
    (CapturedOutput(" \n\t"), False),
    (CapturedOutput(None, ("get_order",)), True),
])
def test_not_empty_check(output, passed):
    assert run_check(NOT_EMPTY, output) is passed


@pytest.mark.parametrize("check", [VALID_JSON, ANSWER_FIELDS, SUPPORT_TOOLS, NOT_EMPTY], ids=lambda c: c.kind)
def test_output_that_was_not_captured_is_not_judged(check):
    assert run_check(check, CapturedOutput(None)) is None


def test_json_nested_deeper_than_the_parser_goes_fails_instead_of_raising():
    assert run_check(VALID_JSON, CapturedOutput("[" * 100_000 + "]" * 100_000)) is False


def test_field_paths_read_keys_and_list_indexes():
    assert [parse_field_path(text) for text in ("answer", "sources[0].url", "a.b[1][2]", "a..b", "[0]")] == [
        ("answer",), ("sources", 0, "url"), ("a", "b", 1, 2), None, None]


def test_rule_matches_dated_variants_of_a_model_and_every_condition():
    match = SpanMatch(operations=("chat",), agents=("sql-analyst",), models=("gpt-4.1",),
                      attributes=(("app.feature", "analytics"),))
    attributes = {"app.feature": "analytics"}

    def matches(**span: str) -> bool:
        fields = {"operation": "chat", "agent": "sql-analyst", "tool": "", "model": "gpt-4.1-2025-04-14",
                  "output_type": "", **span}
        return span_matches(match, attribute=attributes.get, **fields)

    assert (matches(), matches(model="gpt-4.1-mini"), matches(agent="support-triage"), matches(operation="embeddings"),
            matches(model="gpt-4.1")) == (True, False, False, False, True)


# --- the config of the checks ----------------------------------------------------------------------------

def test_output_check_rules_are_read_from_the_config(tmp_path: Path):
    path = tmp_path / "config.yaml"
    path.write_text(
        "output_checks:\n"
        "  - name: answer_fields\n"
        "    kind: required_fields\n"
        "    fields: [summary, 'sources[0].url']\n"
        "    match: {agent: sql-analyst, model: [gpt-4.1, gpt-4o], output_type: json}\n"
        "  - name: support_tools\n"
        "    kind: tool_called\n"
        "    tools: get_order\n"
        "    match: {operation: execute_tool, attributes: {app.feature: support}}\n")
    assert load_config(path).output_checks == (
        OutputCheck("answer_fields", CHECK_REQUIRED_FIELDS,
                    SpanMatch(agents=("sql-analyst",), models=("gpt-4.1", "gpt-4o"), output_types=("json",)),
                    fields=(("summary",), ("sources", 0, "url"))),
        OutputCheck("support_tools", CHECK_TOOL_CALLED,
                    SpanMatch(operations=("execute_tool",), attributes=(("app.feature", "support"),)),
                    tools=("get_order",)),
    )


def test_every_problem_of_the_output_check_rules_is_reported_with_its_path():
    document = {"output_checks": [
        {"name": "Answer Fields", "kind": "required_fields", "fields": ["sources[x]"]},
        {"name": "tools", "kind": "tool_called", "match": {"agnet": "a"}},
        {"name": "tools", "kind": "spellcheck", "fields": ["a"]},
    ]}
    with pytest.raises(ConfigError) as error:
        parse_config(document, "config.yaml", Path("."))
    assert error.value.problems == [
        "output_checks[0].name: must be lowercase letters, digits and _ (a label value), got 'Answer Fields'",
        "output_checks[0].fields: 'sources[x]' is not a field path (e.g. answer, sources[0].url)",
        "output_checks[1].match.agnet: unknown key (known: agent, attributes, model, operation, output_type, tool)",
        "output_checks[1].tools: must be a non-empty string or list of strings, got None",
        "output_checks[2].name: 'tools' is defined twice",
        "output_checks[2].kind: must be one of json, required_fields, tool_called, not_empty, got 'spellcheck'",
        "output_checks[2].fields: only a required_fields check has fields",
    ]


def test_without_rules_a_json_request_is_held_to_valid_json():
    normalizer = Normalizer((), load_config(None).output_checks)
    observation = normalizer.normalize(span(chat_attributes(**{
        semconv.OUTPUT_TYPE: semconv.OUTPUT_TYPE_JSON,
        semconv.OUTPUT_MESSAGES: _assistant(_text_part(ANSWER[:30]))})))
    assert isinstance(observation, Observation) and observation.check_results == (("valid_json", False),)


# --- checks on spans ---------------------------------------------------------------------------------

def test_tool_span_is_checked_against_the_tool_it_ran():
    normalizer = Normalizer((), (OutputCheck("support_tools", CHECK_TOOL_CALLED,
                                             SpanMatch(operations=("execute_tool",)), tools=("get_order",)),))
    observation = normalizer.normalize(span({
        semconv.OPERATION_NAME: semconv.OP_EXECUTE_TOOL, semconv.TOOL_NAME: "web_search",
        semconv.TOOL_CALL_RESULT: '[{"url": "https://docs.python.org"}]'}))
    assert isinstance(observation, Observation) and observation.check_results == (("support_tools", False),)


def test_model_tool_calls_are_read_from_the_output_messages():
    normalizer = Normalizer((), (SUPPORT_TOOLS,))
    observation = normalizer.normalize(span(chat_attributes(**{semconv.OUTPUT_MESSAGES: _assistant(
        {semconv.OUTPUT_PART_TYPE: semconv.OUTPUT_PART_TOOL_CALL_TYPE, semconv.OUTPUT_PART_TOOL_CALL_ID: "call_1",
         semconv.OUTPUT_PART_TOOL_NAME: "search_docs", semconv.OUTPUT_PART_TOOL_ARGUMENTS: {"query": "refund"}})})))
    assert isinstance(observation, Observation) and observation.check_results == (("support_tools", True),)


def test_failed_operations_are_not_checked():
    normalizer = Normalizer((), (NOT_EMPTY,))
    observation = normalizer.normalize(span(chat_attributes(**{
        semconv.ERROR_TYPE: "RateLimitError", semconv.OUTPUT_MESSAGES: _assistant()}), error=True))
    assert isinstance(observation, Observation) and observation.check_results == ()


def test_check_results_count_by_result_with_the_other_result_started_at_zero():
    pipeline = Pipeline(load_config(None))
    answer = _assistant(_text_part(ANSWER))
    pipeline.ingest([span(chat_attributes(**{semconv.OUTPUT_TYPE: "json", semconv.OUTPUT_MESSAGES: answer}))
                     for _ in range(3)])
    registry = CollectorRegistry()
    registry.register(pipeline.collector)
    labels = {catalog.SERVICE: "checkout", catalog.CHECK: "valid_json", catalog.AGENT: "", catalog.TOOL: "",
              catalog.MODEL: "gpt-4o-mini", "user_tier": "", "feature": ""}
    assert [registry.get_sample_value(catalog.OUTPUT_CHECKS.name, {**labels, catalog.RESULT: result})
            for result in catalog.RESULTS] == [3.0, 0.0]


# --- evaluation results ------------------------------------------------------------------------------

def _judged_chat(provider: TracerProvider, score: object, label: str = "relevant") -> None:
    tracer = provider.get_tracer("shop.agent")
    attributes = chat_attributes(**{semconv.AGENT_NAME: "support-triage"})
    with tracer.start_as_current_span("chat gpt-4o-mini", attributes=attributes) as chat:
        chat.add_event(semconv.EVALUATION_RESULT_EVENT, {
            semconv.EVALUATION_NAME: "answer_relevance", semconv.EVALUATION_SCORE_VALUE_ALIASES[0]: score,
            semconv.EVALUATION_SCORE_LABEL: label, semconv.EVALUATION_EXPLANATION: "Answers the question asked."})


def test_evaluation_events_from_the_otel_sdk_become_the_score_histogram():
    registry = CollectorRegistry()
    provider = TracerProvider(resource=Resource.create({semconv.SERVICE_NAME: "checkout"}))
    provider.add_span_processor(GenAIMetricsSpanProcessor(registry))
    for score in (0.9, 0.85, 0.3):
        _judged_chat(provider, score, "relevant" if score >= 0.5 else "irrelevant")
    labels = {catalog.SERVICE: "checkout", catalog.EVALUATION: "answer_relevance", "user_tier": "", "feature": ""}
    score_labels = {**labels, catalog.AGENT: "support-triage", catalog.MODEL: "gpt-4o-mini"}
    name = catalog.EVALUATION_SCORE.name
    assert (registry.get_sample_value(f"{name}_count", score_labels),
            registry.get_sample_value(f"{name}_sum", score_labels),
            registry.get_sample_value(f"{name}_bucket", {**score_labels, "le": "0.5"}),
            registry.get_sample_value(catalog.EVALUATIONS.name, {**labels, catalog.LABEL: "relevant"}),
            registry.get_sample_value(catalog.EVALUATIONS.name, {**labels, catalog.LABEL: "irrelevant"})) == (
        3.0, pytest.approx(2.05), 1.0, 2.0, 1.0)


@pytest.mark.parametrize(("score", "expected"), [
    (0.75, 0.75), (4, 4.0), ("0.5", 0.5), (float("nan"), None), (float("inf"), None), ("excellent", None),
])
def test_evaluation_scores_that_are_not_finite_numbers_count_without_a_score(score, expected):
    event = SpanEvent(semconv.EVALUATION_RESULT_EVENT, 1_760_000_001_000_000_000,
                      {semconv.EVALUATION_NAME: "answer_relevance", semconv.EVALUATION_SCORE_VALUE_ALIASES[0]: score})
    observation = Normalizer(()).normalize(span(chat_attributes())._replace(events=(event,)))
    assert isinstance(observation, Observation) and observation.evaluations == (
        Evaluation("answer_relevance", expected, ""),)


def test_a_span_that_only_carries_an_evaluation_counts_as_an_evaluate_operation():
    normalizer = Normalizer(())
    observation = normalizer.normalize(span({semconv.EVALUATION_NAME: "faithfulness",
                                             semconv.EVALUATION_SCORE_VALUE_ALIASES[0]: 0.4}))
    assert isinstance(observation, Observation) and (observation.operation, observation.evaluations) == (
        semconv.OP_EVALUATE, (Evaluation("faithfulness", 0.4, ""),))
