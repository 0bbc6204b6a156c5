"""Specification of the normalize stage: every dialect in, one Observation out."""

from __future__ import annotations

import json

import pytest

from genai_exporter import catalog, semconv
from genai_exporter.config import default_dimensions
from genai_exporter.normalize import (
    MAX_REMEMBERED_KIND_CHARS,
    READING_PLAN_CACHE_SIZE,
    SPAN_KIND_CACHE_SIZE,
    Normalizer,
    Observation,
    Rejection,
    layer_of,
)
from genai_exporter.records import TokenUsage
from tests.spanfactory import START_NS, chat_attributes, span

# Also run from the Python sources, not only compiled (scripts/test.sh).
pytestmark = pytest.mark.data_path

USER_TIER = semconv.DEFAULT_USER_TIER_ATTRIBUTES[0]
FEATURE = semconv.DEFAULT_FEATURE_ATTRIBUTES[0]
CACHE_READ = semconv.CACHE_READ_TOKENS_ALIASES[0]
CACHE_WRITE = semconv.CACHE_WRITE_TOKENS_ALIASES[0]
TOOL_RESULT = semconv.TOOL_CALL_RESULT_ALIASES[0]
TOOL_NAME = semconv.TOOL_NAME_ALIASES[0]


def observe(attributes, **kwargs) -> Observation:
    outcome = Normalizer(default_dimensions()).normalize(span(attributes, **kwargs))
    assert isinstance(outcome, Observation), outcome
    return outcome


def reject(attributes, **kwargs) -> Rejection:
    outcome = Normalizer(default_dimensions()).normalize(span(attributes, **kwargs))
    assert isinstance(outcome, Rejection), outcome
    return outcome


def tool_attributes(result=None, **extra):
    attributes = {semconv.OPERATION_NAME: semconv.OP_EXECUTE_TOOL, TOOL_NAME: "search_docs", **extra}
    if result is not None:
        attributes[TOOL_RESULT] = result
    return attributes


# --- what a span is -------------------------------------------------------------------------------

def test_semconv_chat_span_becomes_a_model_layer_observation():
    obs = observe(chat_attributes())
    assert (obs.layer, obs.operation, obs.provider, obs.model) == ("model", "chat", "openai",
                                                                   "gpt-4o-mini-2024-07-18")


def test_span_without_any_genai_marker_is_ignored():
    assert Normalizer(default_dimensions()).normalize(span({"http.request.method": "POST"})) is None


@pytest.mark.parametrize(("operation", "layer"), [
    ("chat", "model"), ("embeddings", "model"), ("generate_content", "model"),
    ("execute_tool", "tool"), ("invoke_agent", "agent"), ("invoke_workflow", "agent"),
    ("retrieval", "retrieval"), ("search_memory", "memory"), ("fetch_response", "other"),
])
def test_layer_is_derived_from_the_operation(operation, layer):
    assert layer_of(operation) == layer


def test_service_comes_from_the_resource():
    assert observe(chat_attributes(), service="support-bot").service == "support-bot"


# --- token semantics --------------------------------------------------------------------------------

def test_semconv_input_tokens_include_cached_tokens_so_they_are_subtracted():
    obs = observe(chat_attributes(input_tokens=10_000, output_tokens=500,
                                  **{CACHE_READ: 6_000, CACHE_WRITE: 1_000}))
    assert obs.usage == TokenUsage(input=3_000, cache_read=6_000, cache_write=1_000, output=500)


def test_cached_tokens_reported_apart_from_input_are_not_subtracted():
    obs = observe(chat_attributes(input_tokens=200, output_tokens=50, **{CACHE_READ: 9_000}))
    assert obs.usage == TokenUsage(input=200, cache_read=9_000, cache_write=0, output=50)


def test_output_tokens_include_reasoning_tokens():
    obs = observe(chat_attributes(output_tokens=900, **{semconv.REASONING_TOKENS_ALIASES[0]: 600}))
    assert obs.usage.output == 900


def test_deprecated_names_prompt_and_completion_tokens_and_gen_ai_system():
    obs = observe({
        semconv.OPERATION_NAME: "chat",
        "gen_ai.system": "openai",
        semconv.REQUEST_MODEL: "gpt-4o",
        "gen_ai.usage.prompt_tokens": 800,
        "gen_ai.usage.completion_tokens": 120,
    })
    assert (obs.provider, obs.model, obs.usage) == ("openai", "gpt-4o", TokenUsage(800, 0, 0, 120))


def test_current_name_wins_over_its_deprecated_alias():
    obs = observe(chat_attributes(input_tokens=100, **{"gen_ai.usage.prompt_tokens": 999}))
    assert obs.usage.input == 100


def test_cache_creation_is_an_alias_of_cache_write():
    obs = observe(chat_attributes(input_tokens=5_000, **{"gen_ai.usage.cache_creation.input_tokens": 4_000}))
    assert (obs.usage.input, obs.usage.cache_write) == (1_000, 4_000)


@pytest.mark.parametrize(("old", "new"), [
    ("az.ai.openai", "azure.ai.openai"), ("vertex_ai", "gcp.vertex_ai"), ("xai", "x_ai"),
    ("Anthropic", "anthropic"), ("mistralai", "mistral_ai"),
])
def test_old_provider_values_are_mapped_to_current_ones(old, new):
    assert observe(chat_attributes(provider=old)).provider == new


def test_openinference_llm_span():
    obs = observe({
        semconv.OPENINFERENCE_SPAN_KIND: "LLM",
        "llm.provider": "openai",
        "llm.model_name": "gpt-4o-mini-2024-07-18",
        "llm.token_count.prompt": 1_500,
        "llm.token_count.completion": 200,
        "llm.token_count.prompt_details.cache_read": 1_024,
    })
    assert (obs.operation, obs.provider, obs.usage) == ("chat", "openai", TokenUsage(476, 1_024, 0, 200))


def test_openllmetry_pre_semconv_span():
    obs = observe({
        semconv.TRACELOOP_LLM_REQUEST_TYPE: "chat",
        "gen_ai.system": "Anthropic",
        semconv.REQUEST_MODEL: "claude-sonnet-4-5",
        "gen_ai.usage.prompt_tokens": 3_000,
        "gen_ai.usage.completion_tokens": 400,
        "gen_ai.usage.cache_read_input_tokens": 2_000,
        "gen_ai.usage.cache_creation_input_tokens": 500,
    })
    assert (obs.operation, obs.provider, obs.usage) == ("chat", "anthropic", TokenUsage(500, 2_000, 500, 400))


def test_vercel_ai_sdk_legacy_span():
    obs = observe({
        semconv.VERCEL_OPERATION_ID: "ai.generateText.doGenerate",
        "ai.model.provider": "openai.chat",
        "ai.model.id": "gpt-4.1",
        "ai.usage.promptTokens": 640,
        "ai.usage.completionTokens": 64,
        "ai.response.msToFirstChunk": 420,
    })
    assert (obs.operation, obs.provider, obs.model, obs.usage, obs.time_to_first_token_seconds) == (
        "chat", "openai", "gpt-4.1", TokenUsage(640, 0, 0, 64), 0.42)


def test_langfuse_usage_details_json():
    obs = observe({
        semconv.LANGFUSE_OBSERVATION_TYPE: "generation",
        "langfuse.observation.model.name": "gpt-4o",
        semconv.LANGFUSE_USAGE_DETAILS: json.dumps({"input": 300, "output": 40, "input_cache_read": 700}),
    })
    assert obs.usage == TokenUsage(300, 700, 0, 40)


def test_embeddings_reporting_only_a_total_count_it_as_input():
    obs = observe({semconv.OPERATION_NAME: "embeddings", semconv.REQUEST_MODEL: "text-embedding-3-small",
                   "llm.usage.total_tokens": 812})
    assert obs.usage == TokenUsage(812, 0, 0, 0)


def test_model_call_without_usage_has_no_usage():
    attributes = {semconv.OPERATION_NAME: "chat", semconv.REQUEST_MODEL: "gpt-4o"}
    assert observe(attributes).usage is None


def test_tokens_on_agent_spans_are_not_counted_again():
    attributes = chat_attributes(**{semconv.OPERATION_NAME: semconv.OP_INVOKE_AGENT})
    assert observe(attributes).usage is None


# --- bad input -------------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [-5, "lots", True, 1.5, 10**12])
def test_invalid_token_count_rejects_the_span(bad):
    assert reject(chat_attributes(input_tokens=bad)).reason == catalog.REJECT_INVALID_TOKENS


def test_token_count_as_integral_float_or_digit_string_is_accepted():
    assert observe(chat_attributes(input_tokens=120.0, output_tokens="30")).usage == TokenUsage(120, 0, 0, 30)


def test_span_ending_before_it_starts_is_rejected():
    assert reject(chat_attributes(), duration_s=-1).reason == catalog.REJECT_INVALID_DURATION


def test_span_lasting_more_than_a_week_is_rejected():
    assert reject(chat_attributes(), duration_s=8 * 24 * 3600).reason == catalog.REJECT_INVALID_DURATION


def test_span_with_malformed_ids_is_rejected():
    assert reject(chat_attributes(), trace_id="abcd").reason == catalog.REJECT_INVALID_SPAN


def test_rejection_message_names_the_span_and_the_value():
    rejection = reject(chat_attributes(input_tokens=-5), span_id="00f067aa0ba902b7")
    assert rejection.message == "span 00f067aa0ba902b7: token count -5 is outside 0..100000000"


# --- status, errors, emptiness ------------------------------------------------------------------------

def test_error_status_with_error_type():
    obs = observe(chat_attributes(**{semconv.ERROR_TYPE: "RateLimitError"}), error=True)
    assert (obs.error, obs.error_type) == (True, "RateLimitError")


def test_error_status_without_error_type_gets_the_semconv_fallback():
    obs = observe(chat_attributes(), error=True)
    assert (obs.error, obs.error_type) == (True, "_OTHER")


def test_duration_in_seconds_from_span_timestamps():
    assert observe(chat_attributes(), duration_s=2.25).duration_seconds == 2.25


def test_model_call_with_zero_output_tokens_is_empty():
    assert observe(chat_attributes(output_tokens=0)).empty_response is True


def test_embeddings_never_count_as_empty():
    attributes = chat_attributes(output_tokens=0, **{semconv.OPERATION_NAME: "embeddings"})
    assert observe(attributes).empty_response is False


def test_empty_captured_output_messages_are_empty():
    messages = json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": "  "}],
                            "finish_reason": "stop"}])
    attributes = {semconv.OPERATION_NAME: "chat", semconv.OUTPUT_MESSAGES: messages}
    assert observe(attributes).empty_response is True


def test_output_message_with_a_tool_call_is_not_empty():
    messages = json.dumps([{"role": "assistant", "parts": [
        {"type": "tool_call", "id": "call_1", "name": "get_order", "arguments": {"id": 7}}]}])
    attributes = {semconv.OPERATION_NAME: "chat", semconv.OUTPUT_MESSAGES: messages}
    assert observe(attributes).empty_response is False


def test_uncaptured_output_is_unknown_not_empty():
    attributes = {semconv.OPERATION_NAME: "chat", semconv.REQUEST_MODEL: "gpt-4o"}
    assert observe(attributes).empty_response is False


@pytest.mark.parametrize("result", ["", "   ", "null", "[]", "{}", "[ ]", '""'])
def test_tool_returning_nothing_with_status_ok_is_empty(result):
    assert observe(tool_attributes(result)).empty_response is True


@pytest.mark.parametrize("result", ['{"rows": []}', "0", "false", '[{"id": 1}]'])
def test_tool_returning_something_is_not_empty(result):
    assert observe(tool_attributes(result)).empty_response is False


def test_tool_without_captured_result_is_not_empty():
    assert observe(tool_attributes()).empty_response is False


def test_failed_tool_call_counts_as_error_not_as_empty():
    obs = observe(tool_attributes("[]"), error=True)
    assert (obs.error, obs.empty_response) == (True, False)


def test_tool_name_is_read_from_the_tool_span():
    assert observe(tool_attributes("ok")).tool == "search_docs"


# --- response details, dimensions --------------------------------------------------------------------

def test_finish_reasons_are_read_as_a_list():
    obs = observe(chat_attributes(**{semconv.FINISH_REASONS_ALIASES[0]: ("length", "stop")}))
    assert obs.finish_reasons == ("length", "stop")


def test_time_to_first_chunk_in_seconds():
    obs = observe(chat_attributes(**{semconv.TIME_TO_FIRST_CHUNK_ALIASES[0]: 0.35}))
    assert obs.time_to_first_token_seconds == 0.35


def test_dimensions_come_from_span_attributes_before_resource_attributes():
    obs = observe(chat_attributes(**{USER_TIER: "pro"}), resource={USER_TIER: "free", FEATURE: "search"})
    assert obs.dimensions == ("pro", "search")


def test_dimension_falls_back_to_its_next_attribute_name():
    obs = observe(chat_attributes(**{semconv.DEFAULT_USER_TIER_ATTRIBUTES[1]: "enterprise"}))
    assert obs.dimensions == ("enterprise", "")


def test_exemplar_ids_and_end_time_are_kept():
    obs = observe(chat_attributes(), span_id="00f067aa0ba902b7", duration_s=1)
    assert (obs.trace_id.hex(), obs.span_id.hex(), obs.end_time_unix_nano) == (
        "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", START_NS + 1_000_000_000)


def test_keep_attributes_lists_every_key_normalize_reads():
    keep = Normalizer(default_dimensions()).keep_attributes
    assert {semconv.OPERATION_NAME, "llm.token_count.prompt", USER_TIER, semconv.SERVICE_NAME} <= keep


# --- what a normalizer remembers ------------------------------------------------------------------
# What a span is (labels, layer, matching output checks) is worked out once per distinct descriptive
# values and remembered; what it measured is read from every span.

def test_spans_of_one_call_site_share_a_kind_and_keep_their_own_measurements():
    normalizer = Normalizer(default_dimensions())
    first = normalizer.normalize(span(chat_attributes(input_tokens=100, output_tokens=10), span_id="00000000000000a1",
                                      duration_s=1))
    second = normalizer.normalize(span(chat_attributes(input_tokens=200, output_tokens=0), span_id="00000000000000a2",
                                       duration_s=2))
    assert (first.usage, first.duration_seconds, first.span_id.hex(), first.empty_response,
            second.usage, second.duration_seconds, second.span_id.hex(), second.empty_response,
            normalizer.remembered_kinds) == (
        TokenUsage(100, 0, 0, 10), 1.0, "00000000000000a1", False,
        TokenUsage(200, 0, 0, 0), 2.0, "00000000000000a2", True, 1)


def test_values_that_python_finds_equal_but_that_read_differently_are_not_confused():
    normalizer = Normalizer(default_dimensions())
    tiers = [normalizer.normalize(span(chat_attributes(**{USER_TIER: tier}))).dimensions[0]
             for tier in (True, 1, 1.0, "1", True)]
    assert tiers == ["True", "1", "1.0", "1", "True"]


def test_the_deprecated_alias_loses_whichever_order_the_attributes_come_in():
    normalizer = Normalizer(default_dimensions())
    current, deprecated = semconv.INPUT_TOKENS_ALIASES[0], semconv.INPUT_TOKENS_ALIASES[1]
    base = {semconv.OPERATION_NAME: semconv.OP_CHAT, semconv.REQUEST_MODEL: "gpt-4o-mini"}
    orders = ({**base, deprecated: 7, current: 70}, {**base, current: 70, deprecated: 7})
    assert [normalizer.normalize(span(attributes)).usage.input for attributes in orders] == [70, 70]


def test_spans_of_resources_seen_in_turn_each_get_their_own_service():
    normalizer = Normalizer(default_dimensions())
    resources = [{semconv.SERVICE_NAME: name} for name in ("checkout", "search", "checkout")]
    assert [normalizer.normalize(span(chat_attributes(), resource=resource)).service for resource in resources] == [
        "checkout", "search", "checkout"]


def test_a_kind_decided_by_a_very_long_value_is_read_but_not_remembered():
    normalizer = Normalizer(default_dimensions())
    model = "m" * (MAX_REMEMBERED_KIND_CHARS + 1)
    obs = normalizer.normalize(span(chat_attributes(response_model=model)))
    assert (obs.model, normalizer.remembered_kinds) == (model, 0)


def test_a_key_value_list_among_descriptive_values_is_read_for_its_span_alone():
    normalizer = Normalizer(default_dimensions())
    obs = normalizer.normalize(span(chat_attributes(**{USER_TIER: {"plan": "pro"}})))
    assert (obs.operation, obs.dimensions, normalizer.remembered_kinds) == (semconv.OP_CHAT, ("", ""), 0)


def test_remembered_kinds_stay_bounded_whatever_values_arrive():
    normalizer = Normalizer(default_dimensions())
    for index in range(SPAN_KIND_CACHE_SIZE + 10):
        last = normalizer.normalize(span(chat_attributes(**{USER_TIER: f"user-{index}"})))
    assert (last.dimensions[0], normalizer.remembered_kinds) == (f"user-{SPAN_KIND_CACHE_SIZE + 9}", 10)


def test_remembered_reading_plans_stay_bounded_whatever_keys_arrive():
    normalizer = Normalizer(default_dimensions())
    for index in range(READING_PLAN_CACHE_SIZE + 10):
        last = normalizer.normalize(span(chat_attributes(**{f"app.custom.{index}": "x"})))
    assert (last.operation, normalizer.remembered_plans) == (semconv.OP_CHAT, 10)
