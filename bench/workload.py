"""Realistic GenAI spans for the benchmarks, made by the real OpenTelemetry SDK.

Agent runs as instrumented agents emit them: one trace per run, an `invoke_agent` root over a
`retrieval` (with its `embeddings` call), `chat` calls with `execute_tool` calls between them, and a
final `chat`; about ten attributes on each span (current GenAI semconv names, through `semconv`),
user tier and feature on every span as a Baggage-copying processor puts them, three services with
realistic resources. Deterministic for a seed (operations, attributes, timings) except trace and
span ids, which the SDK draws at random. Spans are kept as SDK `ReadableSpan`s (for the
in-process benchmarks) and encoded into OTLP protobuf bodies by the SDK's own encoder (for the
ingest benchmark).
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer, set_span_in_context

from genai_exporter import semconv

START_NS = 1_760_000_000_000_000_000
# Seeds of the rounds of `fresh_spans`: round n draws its runs from FRESH_SEED + n.
FRESH_SEED = 1000
# Model calls fail this often (1 in N), as error.type and an ERROR status.
MODEL_ERROR_EVERY = 50


@dataclass(frozen=True)
class _Agent:
    name: str
    service: str
    provider: str
    model: str
    response_model: str
    tools: tuple[str, ...]
    features: tuple[str, ...]


_AGENTS = (
    _Agent("support-triage", "support-bot", "openai", "gpt-4o-mini", "gpt-4o-mini-2024-07-18",
           ("get_order", "search_docs", "create_ticket"), ("support", "search")),
    _Agent("research-assistant", "research-api", "anthropic", "claude-sonnet-4-5", "claude-sonnet-4-5-20250929",
           ("web_search", "search_docs"), ("search",)),
    _Agent("code-reviewer", "dev-platform", "openai", "gpt-4.1", "gpt-4.1-2025-04-14",
           ("search_docs", "create_ticket"), ("code-review",)),
    _Agent("sql-analyst", "dev-platform", "gcp.gemini", "gemini-2.5-flash", "gemini-2.5-flash",
           ("run_sql",), ("analytics",)),
)
_TIERS = ("free", "pro", "enterprise")
_FINISH_REASONS = ("stop", "tool_calls", "length")
_EMBEDDING_MODEL = "text-embedding-3-small"


def _resource(service: str) -> Resource:
    return Resource.create({
        semconv.SERVICE_NAME: service,
        "service.version": "2.14.1",
        "service.instance.id": f"{service}-7d9f8b6c5-x2x9q",
        "deployment.environment.name": "production",
        "host.name": "ip-10-0-12-34.ec2.internal",
        "k8s.namespace.name": "agents",
        "k8s.pod.name": f"{service}-7d9f8b6c5-x2x9q",
    })


class _Keep(SpanProcessor):
    """Keeps every finished span, in the order they end."""

    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def on_end(self, span: ReadableSpan) -> None:
        self.spans.append(span)


class _SpanMaker:
    """Emits agent runs through one TracerProvider per service, at explicit timestamps."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)
        self.kept = _Keep()
        self._tracers: dict[str, Tracer] = {}
        for service in sorted({agent.service for agent in _AGENTS}):
            provider = TracerProvider(resource=_resource(service))
            provider.add_span_processor(self.kept)
            self._tracers[service] = provider.get_tracer("bench.agents", "1.0.0")
        self._calls = 0
        self._clock = START_NS

    def run(self) -> None:
        """Emit one agent run: one trace, its spans ending in order, children before parents."""
        rng = self._rng
        agent = rng.choice(_AGENTS)
        tier = rng.choices(_TIERS, (0.5, 0.35, 0.15))[0]
        feature = rng.choice(agent.features)
        who = {semconv.USER_TIER: tier, semconv.APP_FEATURE: feature}
        tracer = self._tracers[agent.service]
        start = self._clock
        self._clock += 3_000_000_000
        root = tracer.start_span(
            f"invoke_agent {agent.name}", start_time=start,
            attributes={semconv.OPERATION_NAME: semconv.OP_INVOKE_AGENT, semconv.PROVIDER_NAME: agent.provider,
                        semconv.AGENT_NAME: agent.name, "gen_ai.agent.id": f"asst_{rng.getrandbits(64):016x}",
                        "gen_ai.conversation.id": f"conv_{rng.getrandbits(64):016x}",
                        semconv.REQUEST_MODEL: agent.model, **who})
        context = set_span_in_context(root)
        cursor = start + 2_000_000
        cursor = self._retrieval(tracer, context, cursor, agent, who)
        for _ in range(rng.choice((1, 1, 2, 3))):
            cursor = self._chat(tracer, context, cursor, agent, who, final=False)
            cursor = self._tool(tracer, context, cursor, agent, who)
        cursor = self._chat(tracer, context, cursor, agent, who, final=True)
        root.end(end_time=cursor + 1_000_000)

    def _retrieval(self, tracer: Tracer, context: Context, cursor: int, agent: _Agent, who: dict[str, str]) -> int:
        rng = self._rng
        span = tracer.start_span(
            "retrieval kb-articles", context=context, start_time=cursor,
            attributes={semconv.OPERATION_NAME: semconv.OP_RETRIEVAL, semconv.DATA_SOURCE_ID: "kb-articles",
                        semconv.AGENT_NAME: agent.name, "gen_ai.request.top_k": 5,
                        "db.system.name": "qdrant", "server.address": "qdrant.agents.svc", **who})
        inner = set_span_in_context(span, context)
        embedding_end = cursor + rng.randint(20_000_000, 90_000_000)
        tracer.start_span(
            f"embeddings {_EMBEDDING_MODEL}", context=inner, kind=SpanKind.CLIENT, start_time=cursor + 500_000,
            attributes={semconv.OPERATION_NAME: semconv.OP_EMBEDDINGS, semconv.PROVIDER_NAME: "openai",
                        semconv.REQUEST_MODEL: _EMBEDDING_MODEL, semconv.RESPONSE_MODEL: _EMBEDDING_MODEL,
                        semconv.INPUT_TOKENS: rng.randint(8, 120), "gen_ai.embeddings.dimension.count": 1536,
                        "gen_ai.request.encoding_formats": ("float",), "server.address": "api.openai.com",
                        **who},
        ).end(end_time=embedding_end)
        end = embedding_end + rng.randint(5_000_000, 40_000_000)
        span.end(end_time=end)
        return end + 1_000_000

    def _chat(self, tracer: Tracer, context: Context, cursor: int, agent: _Agent, who: dict[str, str], *,
              final: bool) -> int:
        rng = self._rng
        self._calls += 1
        attributes = {
            semconv.OPERATION_NAME: semconv.OP_CHAT, semconv.PROVIDER_NAME: agent.provider,
            semconv.REQUEST_MODEL: agent.model, semconv.AGENT_NAME: agent.name,
            semconv.REQUEST_MAX_TOKENS: 1024, "gen_ai.request.temperature": 0.2,
            "server.address": f"api.{agent.provider.split('.')[-1]}.com", **who,
        }
        end = cursor + rng.randint(300_000_000, 9_000_000_000)
        span = tracer.start_span(f"chat {agent.model}", context=context, kind=SpanKind.CLIENT,
                                 start_time=cursor, attributes=attributes)
        if self._calls % MODEL_ERROR_EVERY == 0:
            span.set_attribute(semconv.ERROR_TYPE, "RateLimitError")
            span.set_status(Status(StatusCode.ERROR, "rate limited"))
        else:
            prompt = rng.randint(800, 24_000)
            span.set_attributes({
                semconv.RESPONSE_MODEL: agent.response_model, "gen_ai.response.id": f"chatcmpl-{rng.getrandbits(96):x}",
                semconv.INPUT_TOKENS: prompt, semconv.OUTPUT_TOKENS: rng.randint(20, 1024),
                semconv.FINISH_REASONS: (_FINISH_REASONS[0] if final else _FINISH_REASONS[1],),
            })
            if prompt > 1024 and rng.random() < 0.6:
                span.set_attribute(semconv.CACHE_READ_TOKENS, 1024 * (prompt // 2048))
        span.end(end_time=end)
        return end + 1_000_000

    def _tool(self, tracer: Tracer, context: Context, cursor: int, agent: _Agent, who: dict[str, str]) -> int:
        rng = self._rng
        tool = rng.choice(agent.tools)
        result = [] if rng.random() < 0.03 else [{"id": f"kb-{rng.randint(1000, 9999)}", "score": 0.81}]
        end = cursor + rng.randint(50_000_000, 2_000_000_000)
        tracer.start_span(
            f"execute_tool {tool}", context=context, start_time=cursor,
            attributes={semconv.OPERATION_NAME: semconv.OP_EXECUTE_TOOL, semconv.TOOL_NAME: tool,
                        semconv.TOOL_TYPE: "function", semconv.TOOL_CALL_ID: f"call_{rng.getrandbits(96):024x}",
                        semconv.TOOL_CALL_ARGUMENTS: json.dumps({"query": "refund policy", "top_k": 5}),
                        semconv.TOOL_CALL_RESULT: json.dumps(result), semconv.AGENT_NAME: agent.name, **who},
        ).end(end_time=end)
        return end + 1_000_000


def agent_spans(count: int, seed: int = 42) -> list[ReadableSpan]:
    """At least `count` finished spans of whole agent runs (cut to `count`), in end order."""
    maker = _SpanMaker(seed)
    while len(maker.kept.spans) < count:
        maker.run()
    return maker.kept.spans[:count]


def otlp_bodies(spans: Sequence[ReadableSpan], batch_size: int) -> list[bytes]:
    """The spans as OTLP/HTTP protobuf bodies of `batch_size` spans, encoded by the SDK's encoder."""
    return [encode_spans(spans[index:index + batch_size]).SerializeToString()
            for index in range(0, len(spans), batch_size)]


def fresh_spans(count: int, round_number: int) -> list[ReadableSpan]:
    """`count` spans that no other round sends: agent runs drawn from a seed of the round's own.

    What traffic brings: the same call sites as every other round (services, agents, models, tools,
    tiers, features: what the exporter remembers) with new ids, token counts, tool results and
    timings. A benchmark that posted the same bodies round after round would find even the token
    counts remembered by the receiver, and flatter the exporter (bench/RESULTS.md, run 9).
    """
    return agent_spans(count, seed=FRESH_SEED + round_number)


def describe(spans: Sequence[ReadableSpan]) -> str:
    """One line saying what the spans are: the mix of operations and attributes per span."""
    operations = Counter(str(span.attributes.get(semconv.OPERATION_NAME)) for span in spans)
    attributes = sum(len(span.attributes) for span in spans) / len(spans)
    mix = ", ".join(f"{name} {count / len(spans):.0%}" for name, count in operations.most_common())
    return f"{len(spans)} spans ({mix}), {attributes:.1f} attributes per span"
