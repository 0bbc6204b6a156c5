"""Specification against real spans: what the exporter makes of real instrumentation libraries.

Every span here was emitted by a real instrumentation library (official openai-v2, OpenInference,
OpenLLMetry) around the real `openai` client talking to a scripted fake server (see
tests/instrumented.py). The expected numbers come from the scripted usage and the built-in price
table; what each library reports (and leaves out) is written down in docs/dialects-observed.md,
which a test below keeps in step with the installed libraries.
"""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from genai_exporter import catalog, semconv
from genai_exporter.config import Config
from genai_exporter.inprocess import readable_span_to_record
from genai_exporter.pipeline import Pipeline
from genai_exporter.pricing import PriceEntry, load_price_table
from genai_exporter.receive import decode_export_request
from genai_exporter.records import IngestResult, TokenUsage
from tests import dump_dialects
from tests.fakes.openai_server import (
    ChatReply,
    EmbeddingReply,
    ErrorReply,
    FakeOpenAIServer,
    Usage,
)
from tests.instrumented import (
    CHAT_CACHE_WRITE,
    CHAT_CACHED_REASONING,
    CHAT_EMPTY,
    CHAT_JSON,
    CHAT_JSON_MALFORMED,
    CHAT_RATE_LIMITED,
    CHAT_STREAM,
    CHAT_TOOL_CALL,
    CHAT_TRUNCATED,
    EMBEDDINGS,
    GPT_4O_MINI,
    GPT_4O_MINI_SNAPSHOT,
    Capture,
    Instrumentation,
    Scenario,
    to_otlp_protobuf,
)

# Also run from the Python sources, not only compiled (scripts/test.sh).
pytestmark = pytest.mark.data_path

SERVICE = dump_dialects.SERVICE_NAME
PROVIDER = "openai"
EMBEDDING_MODEL = EMBEDDINGS.request_model
PRICES = load_price_table()
NO_DIMENSIONS = {dimension.label: catalog.UNKNOWN_VALUE for dimension in Config().dimensions}
OTLP_PROTOBUF = "application/x-protobuf"

ALL = tuple(Instrumentation)
OPENAI_V2_MODES = (Instrumentation.OPENAI_V2, Instrumentation.OPENAI_V2_LATEST,
                   Instrumentation.OPENAI_V2_LATEST_CONTENT)
# What each library puts on its spans, as observed (docs/dialects-observed.md): openai-v2 2.4b0
# reports neither cached nor reasoning tokens of chat completions; only OpenInference reports
# cache writes; only OpenInference and OpenLLMetry record when the first chunk of a stream came.
REPORTS_CACHE_READ = frozenset({Instrumentation.OPENINFERENCE, Instrumentation.OPENLLMETRY})
REPORTS_CACHE_WRITE = frozenset({Instrumentation.OPENINFERENCE})
RECORDS_FIRST_CHUNK = (Instrumentation.OPENINFERENCE, Instrumentation.OPENLLMETRY)
# error.type as each library reports a 429 (OpenInference only in its exception event).
REPORTED_RATE_LIMIT_ERROR_TYPE = {
    Instrumentation.OPENAI_V2: "<class 'openai.RateLimitError'>",
    Instrumentation.OPENAI_V2_LATEST: "<class 'openai.RateLimitError'>",
    Instrumentation.OPENAI_V2_LATEST_CONTENT: "<class 'openai.RateLimitError'>",
    Instrumentation.OPENINFERENCE: "openai.RateLimitError",
    Instrumentation.OPENLLMETRY: "RateLimitError",
}


@pytest.fixture(scope="module")
def captures() -> dict[Instrumentation, dict[str, Capture]]:
    """Every standard scenario under every instrumentation, captured once (one process each)."""
    return dump_dialects.capture_standard(SERVICE)


def metrics_of(*captured: Capture) -> CollectorRegistry:
    """A fresh pipeline (built-in defaults and prices) fed the captured spans, on its own registry."""
    pipeline = Pipeline(prices=PRICES)
    pipeline.ingest([readable_span_to_record(span) for item in captured for span in item.spans])
    registry = CollectorRegistry()
    registry.register(pipeline.collector)
    return registry


def price_of(model: str) -> PriceEntry:
    entry = PRICES.lookup(PROVIDER, model)
    assert entry is not None, f"the built-in price table has no price for {model}"
    return entry


def token_labels(token_type: str, model: str = GPT_4O_MINI,
                 operation: str = semconv.OP_CHAT) -> dict[str, str]:
    return {catalog.SERVICE: SERVICE, catalog.PROVIDER: PROVIDER, catalog.MODEL: model,
            catalog.OPERATION: operation, catalog.TOKEN_TYPE: token_type, **NO_DIMENSIONS}


def call_labels(**overrides: str) -> dict[str, str]:
    """Labels of a model chat call on the per-operation families (duration, empty responses)."""
    return {catalog.SERVICE: SERVICE, catalog.LAYER: catalog.LAYER_MODEL, catalog.OPERATION: semconv.OP_CHAT,
            catalog.PROVIDER: PROVIDER, catalog.MODEL: GPT_4O_MINI, catalog.AGENT: "", catalog.TOOL: "",
            **NO_DIMENSIONS, **overrides}


def model_labels(**overrides: str) -> dict[str, str]:
    return {catalog.SERVICE: SERVICE, catalog.PROVIDER: PROVIDER, catalog.MODEL: GPT_4O_MINI,
            **NO_DIMENSIONS, **overrides}


def tokens_by_type(registry: CollectorRegistry, model: str = GPT_4O_MINI,
                   operation: str = semconv.OP_CHAT) -> dict[str, float | None]:
    return {token_type: registry.get_sample_value(catalog.TOKENS.name,
                                                  token_labels(token_type, model, operation))
            for token_type in catalog.TOKEN_TYPES}


def reported_partition(usage: Usage, instrumentation: Instrumentation) -> TokenUsage:
    """The billed partition of the usage as the library reports it: cache details it leaves out
    can only be billed as uncached input."""
    cache_read = (usage.cached_tokens or 0) if instrumentation in REPORTS_CACHE_READ else 0
    cache_write = (usage.cache_write_tokens or 0) if instrumentation in REPORTS_CACHE_WRITE else 0
    return TokenUsage(input=usage.prompt_tokens - cache_read - cache_write, cache_read=cache_read,
                      cache_write=cache_write, output=usage.completion_tokens)


def partition_by_type(usage: TokenUsage) -> dict[str, float | None]:
    return dict(zip(catalog.TOKEN_TYPES, (float(usage.input), float(usage.cache_read),
                                          float(usage.cache_write), float(usage.output)), strict=True))


def chat_usage(scenario: Scenario) -> Usage:
    assert isinstance(scenario.reply, ChatReply)
    return scenario.reply.usage


# --- Acceptance --------------------------------------------------------------------------------

@pytest.mark.parametrize("instrumentation", ALL)
def test_every_span_a_library_emits_is_accepted(captures, instrumentation):
    pipeline = Pipeline(prices=PRICES)
    spans = [readable_span_to_record(span)
             for captured in captures[instrumentation].values() for span in captured.spans]
    assert pipeline.ingest(spans) == IngestResult()


# --- Tokens and cost -------------------------------------------------------------------------------

@pytest.mark.parametrize("instrumentation", ALL)
@pytest.mark.parametrize("scenario", [CHAT_CACHED_REASONING, CHAT_CACHE_WRITE, CHAT_STREAM],
                         ids=lambda scenario: scenario.name)
def test_tokens_are_the_billed_partition_of_the_reported_usage(captures, instrumentation, scenario):
    registry = metrics_of(captures[instrumentation][scenario.name])
    expected = reported_partition(chat_usage(scenario), instrumentation)
    assert tokens_by_type(registry) == partition_by_type(expected)


@pytest.mark.parametrize("instrumentation", ALL)
def test_cost_is_each_token_type_times_its_price(captures, instrumentation):
    registry = metrics_of(captures[instrumentation][CHAT_CACHED_REASONING.name])
    usage = reported_partition(chat_usage(CHAT_CACHED_REASONING), instrumentation)
    price = price_of(GPT_4O_MINI_SNAPSHOT)
    cache_read_rate = price.cache_read if price.cache_read is not None else price.input
    cache_write_rate = price.cache_write if price.cache_write is not None else price.input
    expected = {
        catalog.TOKEN_TYPE_INPUT: usage.input * price.input / 1e6,
        catalog.TOKEN_TYPE_CACHE_READ: usage.cache_read * cache_read_rate / 1e6,
        catalog.TOKEN_TYPE_CACHE_WRITE: usage.cache_write * cache_write_rate / 1e6,
        catalog.TOKEN_TYPE_OUTPUT: usage.output * price.output / 1e6,
    }
    costs = {token_type: registry.get_sample_value(catalog.COST.name, token_labels(token_type))
             for token_type in catalog.TOKEN_TYPES}
    assert costs == pytest.approx(expected, rel=1e-12, abs=0.0)


@pytest.mark.parametrize("instrumentation", ALL)
def test_embedding_tokens_are_all_input(captures, instrumentation):
    registry = metrics_of(captures[instrumentation][EMBEDDINGS.name])
    assert isinstance(EMBEDDINGS.reply, EmbeddingReply)
    expected = TokenUsage(input=EMBEDDINGS.reply.prompt_tokens)
    assert tokens_by_type(registry, EMBEDDING_MODEL, semconv.OP_EMBEDDINGS) == partition_by_type(expected)


@pytest.mark.parametrize("instrumentation", ALL)
def test_embedding_cost_is_input_tokens_times_the_input_price(captures, instrumentation):
    registry = metrics_of(captures[instrumentation][EMBEDDINGS.name])
    assert isinstance(EMBEDDINGS.reply, EmbeddingReply)
    expected = EMBEDDINGS.reply.prompt_tokens * price_of(EMBEDDING_MODEL).input / 1e6
    labels = token_labels(catalog.TOKEN_TYPE_INPUT, EMBEDDING_MODEL, semconv.OP_EMBEDDINGS)
    assert registry.get_sample_value(catalog.COST.name, labels) == pytest.approx(expected, rel=1e-12, abs=0.0)


# --- Reliability signals ----------------------------------------------------------------------------

@pytest.mark.parametrize("instrumentation", ALL)
def test_successful_call_observes_its_span_duration_once_as_ok(captures, instrumentation):
    captured = captures[instrumentation][CHAT_CACHED_REASONING.name]
    registry = metrics_of(captured)
    labels = call_labels(**{catalog.STATUS: catalog.STATUS_OK, catalog.ERROR_TYPE: ""})
    duration = (captured.span.end_time - captured.span.start_time) / 1e9
    name = catalog.OPERATION_DURATION.name
    assert (registry.get_sample_value(f"{name}_count", labels),
            registry.get_sample_value(f"{name}_sum", labels)) == (1.0, pytest.approx(duration, rel=1e-12))


@pytest.mark.parametrize("instrumentation", ALL)
def test_empty_completion_counts_one_empty_model_response(captures, instrumentation):
    registry = metrics_of(captures[instrumentation][CHAT_EMPTY.name])
    assert registry.get_sample_value(catalog.EMPTY_RESPONSES.name, call_labels()) == 1.0


@pytest.mark.parametrize("instrumentation", ALL)
@pytest.mark.parametrize("scenario", [CHAT_CACHED_REASONING, CHAT_TOOL_CALL, CHAT_STREAM],
                         ids=lambda scenario: scenario.name)
def test_answers_with_text_or_a_tool_call_are_not_empty_responses(captures, instrumentation, scenario):
    registry = metrics_of(captures[instrumentation][scenario.name])
    assert registry.get_sample_value(catalog.EMPTY_RESPONSES.name, call_labels()) == 0.0


@pytest.mark.parametrize("instrumentation", ALL)
def test_truncated_completion_counts_finish_reason_length(captures, instrumentation):
    registry = metrics_of(captures[instrumentation][CHAT_TRUNCATED.name])
    labels = model_labels(**{catalog.FINISH_REASON: catalog.FINISH_REASON_TRUNCATED})
    assert registry.get_sample_value(catalog.FINISH_REASONS.name, labels) == 1.0


def _error_counts(registry: CollectorRegistry) -> dict[tuple[str, str], float]:
    """Duration _count of error series by (model, error_type), whatever the other labels."""
    counts: dict[tuple[str, str], float] = {}
    for family in registry.collect():
        for sample in family.samples:
            if (sample.name == f"{catalog.OPERATION_DURATION.name}_count"
                    and sample.labels[catalog.STATUS] == catalog.STATUS_ERROR):
                key = (sample.labels[catalog.MODEL], sample.labels[catalog.ERROR_TYPE])
                counts[key] = counts.get(key, 0.0) + sample.value
    return counts


@pytest.mark.parametrize("instrumentation", ALL)
def test_rate_limited_call_is_one_error_of_the_type_the_library_reports(captures, instrumentation):
    registry = metrics_of(captures[instrumentation][CHAT_RATE_LIMITED.name])
    error_types = {error_type: count for (_, error_type), count in _error_counts(registry).items()}
    assert error_types == {REPORTED_RATE_LIMIT_ERROR_TYPE[instrumentation]: 1.0}


@pytest.mark.parametrize("instrumentation", ALL)
def test_rate_limited_call_is_attributed_to_the_requested_model(captures, instrumentation):
    registry = metrics_of(captures[instrumentation][CHAT_RATE_LIMITED.name])
    models = {model: count for (model, _), count in _error_counts(registry).items()}
    assert models == {GPT_4O_MINI: 1.0}


@pytest.mark.parametrize("instrumentation", ALL)
def test_rate_limited_call_counts_no_tokens(captures, instrumentation):
    registry = metrics_of(captures[instrumentation][CHAT_RATE_LIMITED.name])
    samples = [sample for family in registry.collect() for sample in family.samples
               if sample.name == catalog.TOKENS.name]
    assert samples == []


# --- Streaming ------------------------------------------------------------------------------------

@pytest.mark.parametrize("instrumentation", RECORDS_FIRST_CHUNK)
def test_stream_time_to_first_token_is_the_first_chunk_event_after_span_start(captures, instrumentation):
    span = captures[instrumentation][CHAT_STREAM.name].span
    registry = metrics_of(captures[instrumentation][CHAT_STREAM.name])
    first_chunk_seconds = (span.events[0].timestamp - span.start_time) / 1e9
    name = catalog.TIME_TO_FIRST_TOKEN.name
    assert (registry.get_sample_value(f"{name}_count", model_labels()),
            registry.get_sample_value(f"{name}_sum", model_labels())) == (
        1.0, pytest.approx(first_chunk_seconds, rel=1e-9))


@pytest.mark.parametrize("instrumentation", OPENAI_V2_MODES)
def test_stream_without_a_first_chunk_time_records_no_time_to_first_token(captures, instrumentation):
    registry = metrics_of(captures[instrumentation][CHAT_STREAM.name])
    assert registry.get_sample_value(f"{catalog.TIME_TO_FIRST_TOKEN.name}_count", model_labels()) is None


# --- Transport and documentation -------------------------------------------------------------------

def _exposition_via_otlp(captured: Mapping[str, Capture]) -> bytes:
    pipeline = Pipeline(prices=PRICES)
    body = to_otlp_protobuf([span for item in captured.values() for span in item.spans])
    records = decode_export_request(body, OTLP_PROTOBUF, None, len(body), pipeline.keep_attributes)
    pipeline.ingest(records)
    registry = CollectorRegistry()
    registry.register(pipeline.collector)
    return generate_latest(registry)


@pytest.mark.parametrize("instrumentation", ALL)
def test_spans_give_the_same_metrics_over_otlp_as_in_process(captures, instrumentation):
    in_process = generate_latest(metrics_of(*captures[instrumentation].values()))
    assert _exposition_via_otlp(captures[instrumentation]).decode() == in_process.decode()


def test_dialects_document_describes_the_installed_libraries(captures):
    document = dump_dialects.DOCUMENT_PATH.read_text(encoding="utf-8")
    assert dump_dialects.render(captures) == document, "stale: run `python -m tests.dump_dialects`"


# --- The fake server speaks the OpenAI API ------------------------------------------------------------

def test_fake_server_usage_details_reach_the_openai_client():
    import openai

    with FakeOpenAIServer() as fake:
        client = openai.OpenAI(base_url=fake.url, api_key="test", max_retries=0)
        fake.script(ChatReply(GPT_4O_MINI_SNAPSHOT,
                              Usage(2_000, 500, cached_tokens=1_536, reasoning_tokens=256)))
        completion = client.chat.completions.create(
            model=GPT_4O_MINI, messages=[{"role": "user", "content": "hi"}])
    usage = completion.usage
    assert usage is not None and usage.prompt_tokens_details and usage.completion_tokens_details
    assert (usage.prompt_tokens, usage.completion_tokens, usage.prompt_tokens_details.cached_tokens,
            usage.completion_tokens_details.reasoning_tokens) == (2_000, 500, 1_536, 256)


def test_fake_server_streams_usage_only_in_a_last_chunk_without_choices():
    import openai

    with FakeOpenAIServer() as fake:
        client = openai.OpenAI(base_url=fake.url, api_key="test", max_retries=0)
        fake.script(ChatReply(GPT_4O_MINI_SNAPSHOT, Usage(850, 42), content="Paris is the capital."))
        chunks = list(client.chat.completions.create(
            model=GPT_4O_MINI, messages=[{"role": "user", "content": "hi"}], stream=True,
            stream_options={"include_usage": True}))
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    with_usage = [(len(chunk.choices), chunk.usage.total_tokens) for chunk in chunks if chunk.usage]
    assert (text, with_usage) == ("Paris is the capital.", [(0, 892)])


def test_fake_server_answers_an_unscripted_request_with_500_and_reports_it():
    import openai

    with FakeOpenAIServer() as fake:
        client = openai.OpenAI(base_url=fake.url, api_key="test", max_retries=0)
        with pytest.raises(openai.InternalServerError):
            client.embeddings.create(model=EMBEDDING_MODEL, input="hello")
    assert fake.problems == ["/v1/embeddings: no reply scripted"]


def test_fake_server_sends_openai_error_bodies():
    import openai

    with FakeOpenAIServer() as fake:
        client = openai.OpenAI(base_url=fake.url, api_key="test", max_retries=0)
        fake.script(ErrorReply(429))
        with pytest.raises(openai.RateLimitError) as raised:
            client.chat.completions.create(model=GPT_4O_MINI, messages=[{"role": "user", "content": "hi"}])
    assert (raised.value.status_code, raised.value.code) == (429, "rate_limit_exceeded")


# --- deterministic output checks on captured content -----------------------------------------------

# Libraries that capture the answer's text in their default (or content) configuration.
CAPTURES_OUTPUT = (Instrumentation.OPENAI_V2_LATEST_CONTENT, Instrumentation.OPENINFERENCE,
                   Instrumentation.OPENLLMETRY)


def check_counts(registry: CollectorRegistry, check: str) -> dict[str, float | None]:
    """How often the built-in check passed and failed on the gpt-4o-mini chat call."""
    labels = model_labels(**{catalog.AGENT: "", catalog.TOOL: "", catalog.CHECK: check})
    del labels[catalog.PROVIDER]
    return {result: registry.get_sample_value(catalog.OUTPUT_CHECKS.name, {**labels, catalog.RESULT: result})
            for result in catalog.RESULTS}


@pytest.mark.parametrize("instrumentation", CAPTURES_OUTPUT)
def test_json_answer_to_a_json_request_passes_the_valid_json_check(captures, instrumentation):
    registry = metrics_of(captures[instrumentation][CHAT_JSON.name])
    assert check_counts(registry, "valid_json") == {catalog.RESULT_PASS: 1.0, catalog.RESULT_FAIL: 0.0}


@pytest.mark.parametrize("instrumentation", CAPTURES_OUTPUT)
def test_fenced_json_answer_to_a_json_request_fails_the_valid_json_check(captures, instrumentation):
    registry = metrics_of(captures[instrumentation][CHAT_JSON_MALFORMED.name])
    assert check_counts(registry, "valid_json") == {catalog.RESULT_PASS: 0.0, catalog.RESULT_FAIL: 1.0}


@pytest.mark.parametrize("instrumentation", [Instrumentation.OPENAI_V2, Instrumentation.OPENAI_V2_LATEST])
def test_answer_that_was_not_captured_is_not_checked(captures, instrumentation):
    registry = metrics_of(captures[instrumentation][CHAT_JSON_MALFORMED.name])
    assert check_counts(registry, "valid_json") == {catalog.RESULT_PASS: None, catalog.RESULT_FAIL: None}


@pytest.mark.parametrize("instrumentation", CAPTURES_OUTPUT)
def test_plain_text_request_is_not_held_to_json(captures, instrumentation):
    registry = metrics_of(captures[instrumentation][CHAT_CACHED_REASONING.name])
    assert check_counts(registry, "valid_json") == {catalog.RESULT_PASS: None, catalog.RESULT_FAIL: None}
