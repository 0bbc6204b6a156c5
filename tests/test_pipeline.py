"""Specification of the assembled pipeline and of the in-process SpanProcessor."""

from __future__ import annotations

import threading

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry

from genai_exporter import catalog, semconv
from genai_exporter.inprocess import GenAIMetricsSpanProcessor
from genai_exporter.pipeline import INGEST_CHUNK_SIZE, Pipeline
from genai_exporter.pricing import load_price_table
from genai_exporter.receive import decode_export_request
from genai_exporter.records import IngestResult
from tests.spanfactory import chat_attributes, span

# Also run from the Python sources, not only compiled (scripts/test.sh).
pytestmark = pytest.mark.data_path

PRICES = load_price_table()


def registry_of(pipeline: Pipeline) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(pipeline.collector)
    return registry


def tokens_labels(token_type: str, model: str = "gpt-4o-mini") -> dict[str, str]:
    return {catalog.SERVICE: "checkout", catalog.PROVIDER: "openai", catalog.MODEL: model,
            catalog.OPERATION: "chat", catalog.TOKEN_TYPE: token_type, "user_tier": "", "feature": ""}


def test_dated_response_model_is_counted_under_its_canonical_price_entry():
    pipeline = Pipeline(prices=PRICES)
    pipeline.ingest([span(chat_attributes(input_tokens=1_000, output_tokens=100))])
    assert registry_of(pipeline).get_sample_value(catalog.TOKENS.name, tokens_labels("input")) == 1_000


def test_cost_is_tokens_times_the_price_per_million():
    pipeline = Pipeline(prices=PRICES)
    pipeline.ingest([span(chat_attributes(input_tokens=1_000_000, output_tokens=2_000_000))])
    entry = PRICES.lookup("openai", "gpt-4o-mini")
    registry = registry_of(pipeline)
    assert (registry.get_sample_value(catalog.COST.name, tokens_labels("input")),
            registry.get_sample_value(catalog.COST.name, tokens_labels("output"))) == (
        entry.input, entry.output * 2)


def test_unknown_model_counts_unpriced_tokens_instead_of_zero_cost():
    pipeline = Pipeline(prices=PRICES)
    pipeline.ingest([span(chat_attributes(provider="acme", request_model="acme-reasoner-1",
                                          response_model="acme-reasoner-1", input_tokens=700, output_tokens=50))])
    labels = {catalog.SERVICE: "checkout", catalog.PROVIDER: "acme", catalog.MODEL: "acme-reasoner-1",
              "user_tier": "", "feature": ""}
    registry = registry_of(pipeline)
    assert (registry.get_sample_value(catalog.UNPRICED_TOKENS.name, labels),
            registry.get_sample_value(catalog.COST.name, {**labels, catalog.OPERATION: "chat",
                                                          catalog.TOKEN_TYPE: "input"})) == (750.0, None)


def test_bad_span_is_rejected_alone_and_the_rest_of_the_batch_counts():
    pipeline = Pipeline(prices=PRICES)
    result = pipeline.ingest([
        span(chat_attributes(input_tokens=400, output_tokens=10)),
        span(chat_attributes(input_tokens=-5), span_id="00f067aa0ba902b7"),
    ])
    registry = registry_of(pipeline)
    assert (result,
            registry.get_sample_value(catalog.TOKENS.name, tokens_labels("input")),
            registry.get_sample_value(catalog.SPANS_RECEIVED.name),
            registry.get_sample_value(catalog.SPANS_REJECTED.name, {catalog.REASON: "invalid_tokens"})) == (
        IngestResult(1, "1 span(s) rejected: span 00f067aa0ba902b7: token count -5 is outside 0..100000000"),
        400.0, 2.0, 1.0)


def test_partial_success_message_names_three_rejections_and_counts_the_rest():
    pipeline = Pipeline(prices=PRICES)
    result = pipeline.ingest([span(chat_attributes(), duration_s=-1) for _ in range(5)])
    assert (result.rejected_spans, result.error_message.endswith("; and 2 more")) == (5, True)


def test_non_genai_spans_are_counted_as_ignored():
    pipeline = Pipeline(prices=PRICES)
    pipeline.ingest([span({"http.request.method": "GET"}), span({"db.system": "postgresql"})])
    assert registry_of(pipeline).get_sample_value(catalog.SPANS_IGNORED.name) == 2.0


def test_counters_never_decrease_across_batches():
    pipeline = Pipeline(prices=PRICES)
    registry = registry_of(pipeline)
    seen = []
    for batch in ([span(chat_attributes(input_tokens=10))], [span(chat_attributes(input_tokens=-1))],
                  [span(chat_attributes(input_tokens=5))]):
        pipeline.ingest(batch)
        seen.append(registry.get_sample_value(catalog.TOKENS.name, tokens_labels("input")))
    assert seen == [10.0, 10.0, 15.0]


def test_an_agent_run_longer_than_an_ingest_chunk_is_tallied_whole():
    pipeline = Pipeline(prices=PRICES)
    root = "00f067aa0ba90200"
    calls = [span(chat_attributes(), parent_span_id=root, start_ns=1_760_000_000_000_000_000 + i * 1_000_000)
             for i in range(INGEST_CHUNK_SIZE + 44)]
    agent = span({semconv.OPERATION_NAME: semconv.OP_INVOKE_AGENT, semconv.AGENT_NAME_ALIASES[0]: "triage"},
                 span_id=root, duration_s=600)
    pipeline.ingest([agent, *calls])
    labels = {catalog.SERVICE: "checkout", catalog.AGENT: "triage", "user_tier": "", "feature": ""}
    registry = registry_of(pipeline)
    assert (registry.get_sample_value(catalog.AGENT_RUN_MODEL_CALLS.name + "_sum", labels),
            registry.get_sample_value(catalog.SPANS_RECEIVED.name)) == (
        INGEST_CHUNK_SIZE + 44.0, INGEST_CHUNK_SIZE + 45.0)


def test_batches_ingested_from_two_threads_at_once_count_as_if_ingested_one_after_the_other():
    # Batches are normalized outside the aggregator's lock: the OTLP listener and the in-process
    # processor (serve --demo) may normalize at the same moment, filling the same caches.
    models = ("gpt-4o-mini", "gpt-4o", "claude-sonnet-4", "an-unpriced-model")
    batches = [[span(chat_attributes(request_model=models[i % 4], response_model=models[i % 4], input_tokens=i,
                                     **{semconv.USER_TIER: f"tier-{i % 7}"}), start_ns=1_760_000_000_000_000_000 + i)
                 for i in range(batch * 600, batch * 600 + 600)] for batch in range(12)]
    one_after_the_other = Pipeline(prices=PRICES)
    for batch in batches:
        one_after_the_other.ingest(batch)
    at_once = Pipeline(prices=PRICES)
    threads = [threading.Thread(target=lambda part=part: [at_once.ingest(batch) for batch in part])
               for part in (batches[0::2], batches[1::2])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    def rounded(pipeline: Pipeline) -> dict[tuple, float]:  # float sums depend on the order of addition
        return {key: round(value, 9) for key, value in _samples(registry_of(pipeline)).items()}

    assert rounded(at_once) == rounded(one_after_the_other)


# --- the in-process SpanProcessor ---------------------------------------------------------------------

def _agent_run(provider: TracerProvider) -> None:
    tracer = provider.get_tracer("shop.agent")
    agent_attributes = {semconv.OPERATION_NAME: semconv.OP_INVOKE_AGENT, semconv.AGENT_NAME_ALIASES[0]: "triage"}
    with tracer.start_as_current_span("invoke_agent triage", attributes=agent_attributes):
        for _ in range(2):
            with tracer.start_as_current_span("chat gpt-4o-mini", kind=trace.SpanKind.CLIENT,
                                              attributes=chat_attributes(input_tokens=900, output_tokens=90)):
                pass
            tool = {semconv.OPERATION_NAME: semconv.OP_EXECUTE_TOOL, semconv.TOOL_NAME_ALIASES[0]: "get_order",
                    semconv.TOOL_CALL_RESULT_ALIASES[0]: "[]"}
            with tracer.start_as_current_span("execute_tool get_order", attributes=tool):
                pass


def _samples(registry: CollectorRegistry) -> dict[tuple, float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in registry.collect() for s in family.samples
            if family.name.startswith("genai_") and not family.name.startswith("genai_exporter_build")}


def test_processor_gives_the_same_metrics_as_the_otlp_path_for_the_same_spans():
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({semconv.SERVICE_NAME: "checkout"}))
    processor_registry = CollectorRegistry()
    processor = GenAIMetricsSpanProcessor(processor_registry, prices=PRICES)
    provider.add_span_processor(processor)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    _agent_run(provider)

    body = encode_spans(memory.get_finished_spans()).SerializeToString()
    otlp_pipeline = Pipeline(prices=PRICES)
    otlp_pipeline.ingest(decode_export_request(body, "application/x-protobuf", None, 1 << 20,
                                               otlp_pipeline.keep_attributes))
    processor_samples = _samples(processor_registry)
    assert (processor_samples == _samples(registry_of(otlp_pipeline)),
            processor_samples[(catalog.AGENT_RUN_MODEL_CALLS.name + "_sum",
                               (("agent", "triage"), ("feature", ""), ("service", "checkout"),
                                ("user_tier", "")))]) == (True, 2.0)


def test_processor_on_end_never_raises_into_the_application():
    processor = GenAIMetricsSpanProcessor(CollectorRegistry(), prices=PRICES)
    processor.on_end(object())  # not a span at all
    assert processor.force_flush() is True


def test_a_span_that_cannot_be_converted_is_dropped_alone():
    registry = CollectorRegistry()
    processor = GenAIMetricsSpanProcessor(registry, prices=PRICES)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("chat", attributes=chat_attributes()):
        pass
    processor.on_end(object())
    with tracer.start_as_current_span("chat", attributes=chat_attributes()):
        pass
    assert registry.get_sample_value(catalog.SPANS_RECEIVED.name) == 2.0


def test_processor_drops_and_counts_spans_beyond_its_queue():
    registry = CollectorRegistry()
    processor = GenAIMetricsSpanProcessor(registry, prices=PRICES, max_queue_size=0)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    with provider.get_tracer("t").start_as_current_span("chat", attributes=chat_attributes()):
        pass
    assert registry.get_sample_value(catalog.SPANS_DROPPED.name) == 1.0


def test_cache_savings_count_what_cache_reads_would_have_cost_uncached():
    pipeline = Pipeline(prices=PRICES)
    pipeline.ingest([span(chat_attributes(provider="anthropic", request_model="claude-sonnet-4-5",
                                          response_model="claude-sonnet-4-5", input_tokens=50_000,
                                          output_tokens=100, **{semconv.CACHE_READ_TOKENS: 40_000}))])
    labels = {catalog.SERVICE: "checkout", catalog.PROVIDER: "anthropic", catalog.MODEL: "claude-sonnet-4-5",
              catalog.OPERATION: "chat", "user_tier": "", "feature": ""}
    assert registry_of(pipeline).get_sample_value(catalog.CACHE_SAVINGS.name, labels) == 40_000 * (3.0 - 0.3) / 1e6
