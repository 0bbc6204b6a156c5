"""Real GenAI spans: the real `openai` client, instrumented by real libraries, against a fake server.

The exporter's value is reading what instrumentation libraries actually emit, so its tests need
spans those libraries produced, not spans typed by hand. Each capture runs scripted calls
(`Scenario`) with `openai.OpenAI` against `FakeOpenAIServer` under one instrumentation and returns
the finished spans.

Instrumentors patch the `openai` module globally, and the official one fixes its semconv mode from
environment variables read once per process, so each capture runs in a fresh Python process. The
child exports its spans as OTLP protobuf (the bytes an OTLP exporter would send); the parent
decodes them back into `ReadableSpan`s. Run as `python -m tests.instrumented INSTRUMENTATION
SERVICE_NAME IN_FILE OUT_FILE` (the parent does that; nothing else should need to).
"""

from __future__ import annotations

import enum
import os
import pickle
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from tests.fakes.openai_server import (
    ChatReply,
    EmbeddingReply,
    ErrorReply,
    FakeOpenAIServer,
    Reply,
    ToolCall,
    Usage,
)

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
# A capture that takes longer than this is stuck (a library waiting on the network, say).
CAPTURE_TIMEOUT_SECONDS = 120


class Instrumentation(enum.StrEnum):
    """An instrumentation library in one configuration: what a user would actually deploy."""

    OPENAI_V2 = "openai-v2"
    OPENAI_V2_LATEST = "openai-v2-latest"
    OPENAI_V2_LATEST_CONTENT = "openai-v2-latest-content"
    OPENINFERENCE = "openinference"
    OPENLLMETRY = "openllmetry"

    @property
    def description(self) -> str:
        """Which library, in which mode, for documents and test ids."""
        return _DESCRIPTIONS[self]


_DESCRIPTIONS = {
    Instrumentation.OPENAI_V2: "official opentelemetry-instrumentation-openai-v2, default settings",
    Instrumentation.OPENAI_V2_LATEST: "official opentelemetry-instrumentation-openai-v2 with "
    "OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental, no message content",
    Instrumentation.OPENAI_V2_LATEST_CONTENT: "official opentelemetry-instrumentation-openai-v2 with "
    "OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental and "
    "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=SPAN_ONLY",
    Instrumentation.OPENINFERENCE: "openinference-instrumentation-openai (Arize), default settings "
    "(inputs and outputs captured)",
    Instrumentation.OPENLLMETRY: "opentelemetry-instrumentation-openai from OpenLLMetry (Traceloop), "
    "default settings (TRACELOOP_TRACE_CONTENT unset: content captured)",
}

# Environment of the capturing process per instrumentation. Every variable any of them reads is
# set or removed, so the caller's environment cannot change what a library emits.
_ENVIRONMENT: dict[Instrumentation, dict[str, str | None]] = {
    Instrumentation.OPENAI_V2: {
        "OTEL_SEMCONV_STABILITY_OPT_IN": None,
        "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": None,
    },
    Instrumentation.OPENAI_V2_LATEST: {
        "OTEL_SEMCONV_STABILITY_OPT_IN": "gen_ai_latest_experimental",
        "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": None,
    },
    Instrumentation.OPENAI_V2_LATEST_CONTENT: {
        "OTEL_SEMCONV_STABILITY_OPT_IN": "gen_ai_latest_experimental",
        "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "SPAN_ONLY",
    },
    Instrumentation.OPENINFERENCE: {"OPENINFERENCE_HIDE_OUTPUTS": None, "OPENINFERENCE_HIDE_INPUTS": None},
    Instrumentation.OPENLLMETRY: {"TRACELOOP_TRACE_CONTENT": None},
}
_COMMON_ENVIRONMENT: dict[str, str | None] = {
    "OTEL_SDK_DISABLED": None,
    "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": None,
    "OTEL_INSTRUMENTATION_GENAI_EMIT_EVENT": None,
    "OPENAI_API_KEY": None,
    "OPENAI_BASE_URL": None,
    # Keep every library off the network: the fake server is on loopback.
    "NO_PROXY": "127.0.0.1",
    "no_proxy": "127.0.0.1",
}


@dataclass(frozen=True)
class Scenario:
    """One scripted model call: what the client asks for and what the server answers."""

    name: str
    call: Literal["chat", "chat_stream", "embeddings"]
    request_model: str
    reply: Reply
    max_tokens: int | None = None
    description: str = ""
    # The OpenAI `response_format` request parameter, e.g. {"type": "json_object"}.
    response_format: dict[str, str] | None = None


GPT_4O_MINI = "gpt-4o-mini"
GPT_4O_MINI_SNAPSHOT = "gpt-4o-mini-2024-07-18"
EMBEDDING_MODEL = "text-embedding-3-small"

CHAT_CACHED_REASONING = Scenario(
    name="chat_cached_reasoning",
    call="chat",
    request_model=GPT_4O_MINI,
    reply=ChatReply(GPT_4O_MINI_SNAPSHOT, Usage(prompt_tokens=2_000, completion_tokens=500,
                                                 cached_tokens=1_536, reasoning_tokens=256)),
    description="chat completion whose prompt is partly served from the prompt cache and whose "
    "output includes reasoning tokens",
)
CHAT_CACHE_WRITE = Scenario(
    name="chat_cache_write",
    call="chat",
    request_model=GPT_4O_MINI,
    reply=ChatReply(GPT_4O_MINI_SNAPSHOT, Usage(prompt_tokens=3_000, completion_tokens=120,
                                                 cached_tokens=0, cache_write_tokens=2_048)),
    description="chat completion that writes 2048 prompt tokens to the cache "
    "(prompt_tokens_details.cache_write_tokens)",
)
CHAT_STREAM = Scenario(
    name="chat_stream",
    call="chat_stream",
    request_model=GPT_4O_MINI,
    reply=ChatReply(GPT_4O_MINI_SNAPSHOT, Usage(prompt_tokens=850, completion_tokens=42, cached_tokens=512),
                    content="The capital of France is Paris. It has been the capital since 987."),
    description="streamed chat completion with stream_options.include_usage (usage in the last chunk)",
)
EMBEDDINGS = Scenario(
    name="embeddings",
    call="embeddings",
    request_model=EMBEDDING_MODEL,
    reply=EmbeddingReply(EMBEDDING_MODEL, prompt_tokens=14),
    description="embeddings of two short texts",
)
CHAT_EMPTY = Scenario(
    name="chat_empty",
    call="chat",
    request_model=GPT_4O_MINI,
    reply=ChatReply(GPT_4O_MINI_SNAPSHOT, Usage(prompt_tokens=310, completion_tokens=0), content=""),
    description="chat completion that returns an empty message (content \"\", 0 completion tokens)",
)
CHAT_TRUNCATED = Scenario(
    name="chat_truncated",
    call="chat",
    request_model=GPT_4O_MINI,
    reply=ChatReply(GPT_4O_MINI_SNAPSHOT, Usage(prompt_tokens=420, completion_tokens=64),
                    content="Here is a detailed plan. First, we gather the requirements from",
                    finish_reason="length"),
    max_tokens=64,
    description="chat completion cut off at max_tokens=64 (finish_reason length)",
)
CHAT_TOOL_CALL = Scenario(
    name="chat_tool_call",
    call="chat",
    request_model=GPT_4O_MINI,
    reply=ChatReply(GPT_4O_MINI_SNAPSHOT, Usage(prompt_tokens=95, completion_tokens=18), content=None,
                    finish_reason="tool_calls",
                    tool_calls=(ToolCall("call_fake0001", "get_weather", '{"city": "Paris"}'),)),
    description="chat completion that answers with a tool call and no text",
)
JSON_ANSWER = '{"summary": "Revenue grew 12% quarter over quarter.", "sql": "SELECT 1", "row_count": 3}'
CHAT_JSON = Scenario(
    name="chat_json",
    call="chat",
    request_model=GPT_4O_MINI,
    reply=ChatReply(GPT_4O_MINI_SNAPSHOT, Usage(prompt_tokens=240, completion_tokens=31), content=JSON_ANSWER),
    response_format={"type": "json_object"},
    description="chat completion asked for a JSON object (response_format json_object) that answers with one",
)
CHAT_JSON_MALFORMED = Scenario(
    name="chat_json_malformed",
    call="chat",
    request_model=GPT_4O_MINI,
    reply=ChatReply(GPT_4O_MINI_SNAPSHOT, Usage(prompt_tokens=240, completion_tokens=12),
                    content="```json\n" + JSON_ANSWER + "\n```"),
    response_format={"type": "json_object"},
    description="chat completion asked for a JSON object that answers with JSON wrapped in a markdown fence",
)
CHAT_RATE_LIMITED = Scenario(
    name="chat_rate_limited",
    call="chat",
    request_model=GPT_4O_MINI,
    reply=ErrorReply(429),
    description="chat completion rejected with HTTP 429 (the client raises openai.RateLimitError)",
)

STANDARD_SCENARIOS = (
    CHAT_CACHED_REASONING,
    CHAT_CACHE_WRITE,
    CHAT_STREAM,
    EMBEDDINGS,
    CHAT_EMPTY,
    CHAT_TRUNCATED,
    CHAT_TOOL_CALL,
    CHAT_JSON,
    CHAT_JSON_MALFORMED,
    CHAT_RATE_LIMITED,
)

_MESSAGES = [
    {"role": "system", "content": "You are a concise assistant."},
    {"role": "user", "content": "What is the capital of France?"},
]
_EMBEDDING_INPUTS = ["The capital of France is Paris.", "Paris is on the Seine."]


@dataclass(frozen=True)
class Capture:
    """Spans one scenario produced, and what the client saw (the exception class it raised, if any)."""

    scenario: Scenario
    spans: tuple[ReadableSpan, ...]
    client_error: str = ""

    @property
    def span(self) -> ReadableSpan:
        """The only span of the scenario; fails if the library emitted several or none."""
        if len(self.spans) != 1:
            names = [span.name for span in self.spans]
            raise AssertionError(f"{self.scenario.name}: expected one span, got {names}")
        return self.spans[0]


def _instrumentor(instrumentation: Instrumentation) -> Any:
    # Imported here: each library is imported only in the process that uses it.
    if instrumentation is Instrumentation.OPENINFERENCE:
        from openinference.instrumentation.openai import OpenAIInstrumentor

        return OpenAIInstrumentor()
    if instrumentation is Instrumentation.OPENLLMETRY:
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor

        return OpenAIInstrumentor()
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

    return OpenAIInstrumentor()


def _run_scenario(client: Any, scenario: Scenario) -> str:
    """Make the scenario's call; returns the class name of the exception the client raised, or ""."""
    import openai

    try:
        if scenario.call == "embeddings":
            client.embeddings.create(model=scenario.request_model, input=_EMBEDDING_INPUTS)
            return ""
        options: dict[str, Any] = {"model": scenario.request_model, "messages": _MESSAGES, "temperature": 0.2}
        if scenario.max_tokens is not None:
            options["max_tokens"] = scenario.max_tokens
        if scenario.response_format is not None:
            options["response_format"] = scenario.response_format
        if scenario.call == "chat_stream":
            stream = client.chat.completions.create(
                stream=True, stream_options={"include_usage": True}, **options)
            for _chunk in stream:
                pass
        else:
            client.chat.completions.create(**options)
    except openai.APIError as error:
        return type(error).__name__
    return ""


def capture_in_this_process(
    instrumentation: Instrumentation, scenarios: Sequence[Scenario], service_name: str
) -> dict[str, tuple[str, bytes]]:
    """Run the scenarios under the instrumentation here: per scenario, the client's exception class
    name ("" if none) and the OTLP protobuf of its spans.

    Only safe in a process that does nothing else: it sets environment variables and patches the
    `openai` module. `capture` runs it in a child process.
    """
    for name, value in (_COMMON_ENVIRONMENT | _ENVIRONMENT[instrumentation]).items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    import openai
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = _instrumentor(instrumentation)
    instrumentor.instrument(tracer_provider=provider)
    results: dict[str, tuple[str, bytes]] = {}
    try:
        with FakeOpenAIServer() as fake:
            client = openai.OpenAI(base_url=fake.url, api_key="test", max_retries=0)
            for scenario in scenarios:
                fake.script(scenario.reply)
                client_error = _run_scenario(client, scenario)
                if fake.problems or fake.pending_replies:
                    raise RuntimeError(f"{scenario.name}: fake server problems {fake.problems}, "
                                       f"{fake.pending_replies} replies unused")
                spans = exporter.get_finished_spans()
                exporter.clear()
                results[scenario.name] = (client_error, to_otlp_protobuf(spans))
    finally:
        instrumentor.uninstrument()
        provider.shutdown()
    return results


def to_otlp_protobuf(spans: Sequence[ReadableSpan]) -> bytes:
    """The OTLP/HTTP request body an OTLP exporter would send for these spans."""
    return encode_spans(spans).SerializeToString()


def _any_value(value: AnyValue) -> Any:
    field = value.WhichOneof("value")
    if field == "array_value":
        return tuple(_any_value(item) for item in value.array_value.values)
    if field == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    return getattr(value, field) if field else None


def _attributes(pairs: Sequence[KeyValue]) -> dict[str, Any]:
    return {pair.key: _any_value(pair.value) for pair in pairs}


def spans_from_otlp(body: bytes) -> list[ReadableSpan]:
    """Rebuild ReadableSpans from an OTLP trace request, as the child process exported them."""
    request = ExportTraceServiceRequest.FromString(body)
    spans: list[ReadableSpan] = []
    for resource_spans in request.resource_spans:
        resource = Resource(_attributes(resource_spans.resource.attributes), resource_spans.schema_url)
        for scope_spans in resource_spans.scope_spans:
            scope = InstrumentationScope(scope_spans.scope.name, scope_spans.scope.version or None,
                                         scope_spans.schema_url or None)
            for span in scope_spans.spans:
                trace_id = int.from_bytes(span.trace_id, "big")
                context = SpanContext(trace_id, int.from_bytes(span.span_id, "big"), is_remote=False,
                                      trace_flags=TraceFlags(TraceFlags.SAMPLED))
                parent = None
                if span.parent_span_id:
                    parent = SpanContext(trace_id, int.from_bytes(span.parent_span_id, "big"),
                                         is_remote=False)
                spans.append(ReadableSpan(
                    name=span.name,
                    context=context,
                    parent=parent,
                    resource=resource,
                    attributes=_attributes(span.attributes),
                    events=[Event(event.name, _attributes(event.attributes), event.time_unix_nano)
                            for event in span.events],
                    kind=SpanKind(span.kind - 1),  # OTLP numbers kinds from 1 (INTERNAL)
                    instrumentation_scope=scope,
                    status=Status(StatusCode(span.status.code), span.status.message or None),
                    start_time=span.start_time_unix_nano,
                    end_time=span.end_time_unix_nano,
                ))
    return spans


def _child_environment() -> dict[str, str]:
    environment = dict(os.environ)
    paths = [str(REPOSITORY_ROOT), *filter(None, environment.get("PYTHONPATH", "").split(os.pathsep))]
    environment["PYTHONPATH"] = os.pathsep.join(paths)
    return environment


def capture(
    instrumentation: Instrumentation, scenarios: Sequence[Scenario], service_name: str
) -> dict[str, Capture]:
    """Run the scenarios under one instrumentation in a fresh process; their spans by scenario name."""
    with tempfile.TemporaryDirectory(prefix="genai-capture-") as directory:
        request_path, result_path = Path(directory, "scenarios.pickle"), Path(directory, "spans.pickle")
        request_path.write_bytes(pickle.dumps(tuple(scenarios)))
        completed = subprocess.run(
            [sys.executable, "-m", "tests.instrumented", instrumentation.value, service_name,
             str(request_path), str(result_path)],
            cwd=REPOSITORY_ROOT, env=_child_environment(), capture_output=True, text=True,
            timeout=CAPTURE_TIMEOUT_SECONDS, check=False,
        )
        if completed.returncode != 0:
            raise RuntimeError(f"capture under {instrumentation} failed (exit {completed.returncode}):\n"
                               f"{completed.stderr[-4000:]}")
        exported: dict[str, tuple[str, bytes]] = pickle.loads(result_path.read_bytes())
    return {
        scenario.name: Capture(scenario, tuple(spans_from_otlp(exported[scenario.name][1])),
                               exported[scenario.name][0])
        for scenario in scenarios
    }


def capture_all(
    instrumentations: Sequence[Instrumentation], scenarios: Sequence[Scenario], service_name: str
) -> dict[Instrumentation, dict[str, Capture]]:
    """`capture` for several instrumentations at once, their processes running in parallel."""
    with ThreadPoolExecutor(max_workers=len(instrumentations) or 1) as pool:
        futures = {item: pool.submit(capture, item, scenarios, service_name) for item in instrumentations}
        return {item: future.result() for item, future in futures.items()}


def _main(arguments: Sequence[str]) -> None:
    instrumentation, service_name, request_path, result_path = arguments
    scenarios: tuple[Scenario, ...] = pickle.loads(Path(request_path).read_bytes())
    results = capture_in_this_process(Instrumentation(instrumentation), scenarios, service_name)
    Path(result_path).write_bytes(pickle.dumps(results))


if __name__ == "__main__":
    _main(sys.argv[1:])
