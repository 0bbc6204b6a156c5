"""The demo agent workload: production-like agent traces built with the real OpenTelemetry SDK.

Each agent run is one trace: `invoke_agent` → (`search_memory`) → (`retrieval` → `embeddings`) →
`chat` → `execute_tool` → `chat` … → final `chat`, from four agents in three services, on OpenAI,
Anthropic and Gemini models. Who and what a run serves (user tier, feature) travels in Baggage
and `BaggageSpanProcessor` copies it onto every span, the way a real deployment carries it.

Runs are planned first and then emitted with explicit start and end timestamps: a run that "took"
40 s is generated in microseconds and ends now, its children nested inside it and ending before it.
Nothing sleeps for simulated time.

The healthy baseline is quiet for alerting: model and tool errors are 1 %, empty search results
2.5 %, nothing is truncated or unpriced, and every user tier stays well under the default budget
of 1000 tokens/s at the default 2 runs/s. Rare events are spread evenly (one per block of calls
at a random place in the block) rather than drawn independently, so the baseline has no random
clusters that would trip an alert, and the first one comes within seconds of the start.
"""

from __future__ import annotations

import json
import logging
import math
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from opentelemetry import baggage, trace
from opentelemetry._logs import LoggerProvider, LogRecord, SeverityNumber
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Span, SpanProcessor, SynchronousMultiSpanProcessor, TracerProvider
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from genai_exporter import semconv
from genai_exporter.demo.scenarios import (
    PROVIDER_OUTAGE,
    QUALITY_REGRESSION,
    RETRY_LOOP,
    TIER_SPIKE,
    TOOL_OUTAGE,
    TRUNCATION,
    UNPRICED_MODEL,
    ScenarioSchedule,
    ScenarioSwitch,
)

LOGGER = logging.getLogger(__name__)
T = TypeVar("T")

# Token counts are planned at real-agent sizes (prompts of 500-20000 tokens, answers of 50-1500)
# and reported at this scale. At the default 2 runs/s, real sizes would put every user tier at
# 5-20x the default budget of 1000 tokens/s; scaled, the busiest tier stays near a third of it
# while the shape of the distributions (long tails, cache shares, growth over a run) stays real.
# Latencies are computed from the real sizes.
DEMO_TOKEN_SCALE = 0.03
DEFAULT_RATE = 2.0
# The exporter config of `serve --demo`: budgets set against this workload at DEFAULT_RATE.
DEMO_CONFIG_FILE = Path(__file__).resolve().parent / "config.yaml"

TIER_FREE = "free"
TIER_PRO = "pro"
TIER_ENTERPRISE = "enterprise"
USER_TIERS = (TIER_FREE, TIER_PRO, TIER_ENTERPRISE)

# Finish reasons as the OpenAI API and the OTel GenAI utilities report them.
FINISH_STOP = "stop"
FINISH_TOOL_CALLS = "tool_calls"
FINISH_LENGTH = "length"


@dataclass(frozen=True)
class Model:
    """A model the demo calls: its provider, names, and latency profile."""

    provider: str
    name: str
    response_name: str
    first_token_s: float
    output_tokens_per_s: float


# OpenAI answers with the dated snapshot it served; the price table must know both names.
GPT_4O_MINI = Model("openai", "gpt-4o-mini", "gpt-4o-mini-2024-07-18", 0.45, 85.0)
GPT_4_1 = Model("openai", "gpt-4.1", "gpt-4.1-2025-04-14", 0.7, 55.0)
CLAUDE_SONNET_4_5 = Model("anthropic", "claude-sonnet-4-5", "claude-sonnet-4-5", 0.9, 60.0)
CLAUDE_HAIKU_4_5 = Model("anthropic", "claude-haiku-4-5", "claude-haiku-4-5", 0.45, 110.0)
GEMINI_2_5_FLASH = Model("gcp.gemini", "gemini-2.5-flash", "gemini-2.5-flash", 0.5, 160.0)
TEXT_EMBEDDING_3_SMALL = Model("openai", "text-embedding-3-small", "text-embedding-3-small", 0.0, 0.0)
# No price table lists it: the unpriced_model scenario's hole in cost tracking.
ACME_REASONER_1 = Model("acme", "acme-reasoner-1", "acme-reasoner-1", 1.2, 40.0)
BASELINE_MODELS = (GPT_4O_MINI, GPT_4_1, CLAUDE_SONNET_4_5, CLAUDE_HAIKU_4_5, GEMINI_2_5_FLASH,
                   TEXT_EMBEDDING_3_SMALL)

OUTAGE_PROVIDER = GPT_4O_MINI.provider
FALLBACK_MODEL = GEMINI_2_5_FLASH
# Error types as the provider SDKs name their exceptions (error.type is the exception class).
OUTAGE_ERROR_TYPES = (("RateLimitError", 0.7), ("APIConnectionError", 0.3))
BASELINE_MODEL_ERROR_TYPES = (("RateLimitError", 0.5), ("APITimeoutError", 0.3), ("InternalServerError", 0.2))
BASELINE_MODEL_ERROR_EVERY = 100
BASELINE_TOOL_ERROR_EVERY = 100
BASELINE_EMPTY_SEARCH_EVERY = 40
# An agent run that gives up (its invoke_agent span ends in error): rare in a healthy system, well
# inside a 99 % run-success SLO; every run of a retry loop ends so, when it hits its turn limit.
BASELINE_RUN_FAILURE_EVERY = 400
RUN_FAILURE_ERROR_TYPE = "MaxTurnsExceeded"
# Quiet failures of a healthy system: now and then a malformed JSON answer or a tool the agent has
# no business calling. The output checks count them (genai_output_checks_total).
BASELINE_MALFORMED_JSON_EVERY = 60
BASELINE_WRONG_TOOL_EVERY = 50
# An LLM judge scores this share of final answers (gen_ai.evaluation.result events).
JUDGE_SAMPLE_SHARE = 0.25
JUDGE_EVALUATION = "answer_relevance"
JUDGE_PASS_SCORE = 0.5
JUDGE_LABEL_PASS = "relevant"
JUDGE_LABEL_FAIL = "irrelevant"
# What the message finish_reason of gen_ai.output.messages says for each span finish reason.
_MESSAGE_FINISH_REASON = {"stop": "stop", "length": "length", "tool_calls": "tool_call"}


def _lognormal(rng: random.Random, median: float, sigma: float, low: float, high: float) -> float:
    """A long-tailed positive draw (latencies, token counts), clipped to a plausible range."""
    return min(high, max(low, median * math.exp(rng.gauss(0.0, sigma))))


def _pick(rng: random.Random, options: Sequence[tuple[T, float]]) -> T:
    return rng.choices([option for option, _ in options], [weight for _, weight in options])[0]


def _scaled(tokens: float) -> int:
    return max(1, round(tokens * DEMO_TOKEN_SCALE))


class _Rare:
    """Fires once per block of `every` calls, at a random place in the block.

    The first block is a quarter as long, so a fresh demo shows the event within seconds.
    """

    def __init__(self, every: int, rng: random.Random) -> None:
        self._every = every
        self._rng = rng
        self._count = 0
        self._block = max(1, every // 4)
        self._fire_at = rng.randrange(self._block)

    def __call__(self) -> bool:
        fire = self._count == self._fire_at
        self._count += 1
        if self._count == self._block:
            self._count = 0
            self._block = self._every
            self._fire_at = self._rng.randrange(self._every)
        return fire


# --- Tools ------------------------------------------------------------------------------------

_DOC_TITLES = {
    "reset password": ("Reset your password", "Password policy", "Sign-in troubleshooting"),
    "refund policy": ("Refunds and returns", "Refund timelines", "Cancel an order"),
    "export csv": ("Export reports as CSV", "Scheduled exports", "Export limits"),
    "sso setup": ("Configure SAML SSO", "SCIM provisioning", "SSO troubleshooting"),
    "api rate limits": ("Rate limits by plan", "Handling 429 responses", "Usage dashboard"),
}
_SEARCH_SITES = ("docs.python.org", "postgresql.org/docs", "developer.mozilla.org", "stackoverflow.com",
                 "github.com", "learn.microsoft.com")
_SQL_QUERIES = (
    "SELECT region, SUM(amount) AS revenue FROM orders WHERE ordered_at >= DATE '2026-01-01' GROUP BY region",
    "SELECT plan, COUNT(*) AS accounts FROM accounts WHERE churned_at IS NULL GROUP BY plan",
    "SELECT DATE_TRUNC('week', created_at) AS week, COUNT(*) FROM tickets GROUP BY 1 ORDER BY 1",
)
_SQL_ERRORS = (
    'column "revenue_usd" does not exist',
    'relation "order_items_v2" does not exist',
    "syntax error at or near \"GROUP\"",
)


def _search_docs(rng: random.Random) -> tuple[dict[str, Any], Any]:
    query = rng.choice(tuple(_DOC_TITLES))
    hits = [{"id": f"kb-{rng.randint(1000, 9999)}", "title": title, "score": round(rng.uniform(0.55, 0.93), 2)}
            for title in _DOC_TITLES[query][: rng.randint(1, 3)]]
    return {"query": query, "top_k": 5}, hits


def _web_search(rng: random.Random) -> tuple[dict[str, Any], Any]:
    query = rng.choice(("postgres partial index", "python asyncio timeout", "http 429 retry-after",
                        "css grid auto-fit", "oauth pkce flow"))
    sites = rng.sample(_SEARCH_SITES, rng.randint(2, 4))
    return {"query": query}, [{"url": f"https://{site}/search?q={query.replace(' ', '+')}", "title": query.title()}
                              for site in sites]


def _get_order(rng: random.Random) -> tuple[dict[str, Any], Any]:
    order_id = f"A-{rng.randint(10000, 99999)}"
    return {"order_id": order_id}, {
        "order_id": order_id,
        "status": rng.choice(("processing", "shipped", "delivered", "returned")),
        "items": rng.randint(1, 6),
        "total_usd": round(rng.uniform(12, 480), 2),
    }


def _run_sql(rng: random.Random) -> tuple[dict[str, Any], Any]:
    rows = [[rng.choice(("emea", "amer", "apac")), round(rng.uniform(1e4, 9e5), 2)] for _ in range(rng.randint(3, 12))]
    return {"query": rng.choice(_SQL_QUERIES)}, {"columns": ["group", "value"], "rows": rows, "row_count": len(rows)}


def _create_ticket(rng: random.Random) -> tuple[dict[str, Any], Any]:
    return ({"title": rng.choice(("Refund not received", "Cannot sign in", "Export times out")),
             "priority": rng.choice(("low", "normal", "high"))},
            {"ticket_id": f"SUP-{rng.randint(1000, 9999)}", "status": "open"})


@dataclass(frozen=True)
class Tool:
    """A tool an agent calls: its latency, what its result adds to the context, how it fails."""

    name: str
    call: Callable[[random.Random], tuple[dict[str, Any], Any]]
    latency_s: float
    result_tokens: float
    timeout_s: float
    # A search that finds nothing answers "[]": a normal, rare outcome (and the silent failure).
    can_be_empty: bool = False


SEARCH_DOCS = Tool("search_docs", _search_docs, 0.18, 900, 5.0, can_be_empty=True)
WEB_SEARCH = Tool("web_search", _web_search, 1.1, 1400, 10.0, can_be_empty=True)
GET_ORDER = Tool("get_order", _get_order, 0.09, 180, 3.0)
RUN_SQL = Tool("run_sql", _run_sql, 0.8, 500, 30.0)
CREATE_TICKET = Tool("create_ticket", _create_ticket, 0.35, 60, 5.0)
TOOLS = (SEARCH_DOCS, WEB_SEARCH, GET_ORDER, RUN_SQL, CREATE_TICKET)
OUTAGE_TOOL = SEARCH_DOCS


# --- Agents -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class AgentProfile:
    """One agent of the demo: where it runs, who uses it, which models and tools it calls.

    Token sizes are real-agent sizes (scaled when reported, see DEMO_TOKEN_SCALE).
    """

    name: str
    service: str
    weight: float
    features: tuple[tuple[str, float], ...]
    tiers: tuple[tuple[str, float], ...]
    models: tuple[tuple[Model, float], ...]
    tools: tuple[tuple[Tool, float], ...]
    tool_rounds: tuple[tuple[int, float], ...]
    tools_per_round: tuple[tuple[int, float], ...]
    system_prompt_tokens: int
    user_message_tokens: float
    max_tokens: int
    stream_all: bool = False
    stream_final: bool = False
    memory_probability: float = 0.0
    retrieval_source: str = ""
    retrieval_probability: float = 0.0
    # Works on long documents: the truncation scenario hits it.
    long_context: bool = False


SUPPORT_TRIAGE = AgentProfile(
    name="support-triage", service="support-bot", weight=0.35,
    features=(("support", 0.8), ("search", 0.2)),
    tiers=((TIER_FREE, 0.55), (TIER_PRO, 0.35), (TIER_ENTERPRISE, 0.10)),
    models=((GPT_4O_MINI, 0.8), (CLAUDE_HAIKU_4_5, 0.2)),
    tools=((GET_ORDER, 0.45), (SEARCH_DOCS, 0.40), (CREATE_TICKET, 0.15)),
    tool_rounds=((0, 0.10), (1, 0.55), (2, 0.35)), tools_per_round=((1, 1.0),),
    system_prompt_tokens=2200, user_message_tokens=120, max_tokens=1024,
    stream_final=True, memory_probability=0.4, retrieval_source="kb-support-articles", retrieval_probability=0.3,
)
RESEARCH_ASSISTANT = AgentProfile(
    name="research-assistant", service="research-api", weight=0.30,
    features=(("search", 1.0),),
    tiers=((TIER_FREE, 0.45), (TIER_PRO, 0.40), (TIER_ENTERPRISE, 0.15)),
    models=((CLAUDE_SONNET_4_5, 1.0),),
    tools=((WEB_SEARCH, 0.55), (SEARCH_DOCS, 0.45)),
    tool_rounds=((1, 0.4), (2, 0.4), (3, 0.2)), tools_per_round=((1, 0.6), (2, 0.4)),
    system_prompt_tokens=3000, user_message_tokens=200, max_tokens=2048,
    stream_all=True, memory_probability=0.2, retrieval_source="kb-product-docs", retrieval_probability=1.0,
    long_context=True,
)
CODE_REVIEWER = AgentProfile(
    name="code-reviewer", service="dev-platform", weight=0.15,
    features=(("code-review", 1.0),),
    tiers=((TIER_FREE, 0.10), (TIER_PRO, 0.55), (TIER_ENTERPRISE, 0.35)),
    models=((GPT_4_1, 0.6), (CLAUDE_SONNET_4_5, 0.4)),
    tools=((SEARCH_DOCS, 0.5), (WEB_SEARCH, 0.3), (CREATE_TICKET, 0.2)),
    tool_rounds=((0, 0.4), (1, 0.45), (2, 0.15)), tools_per_round=((1, 1.0),),
    system_prompt_tokens=2600, user_message_tokens=2500, max_tokens=2048,
    long_context=True,
)
SQL_ANALYST = AgentProfile(
    name="sql-analyst", service="dev-platform", weight=0.20,
    features=(("analytics", 1.0),),
    tiers=((TIER_FREE, 0.05), (TIER_PRO, 0.45), (TIER_ENTERPRISE, 0.50)),
    models=((GPT_4_1, 0.7), (GEMINI_2_5_FLASH, 0.3)),
    tools=((RUN_SQL, 1.0),),
    tool_rounds=((1, 0.6), (2, 0.4)), tools_per_round=((1, 1.0),),
    system_prompt_tokens=2800, user_message_tokens=60, max_tokens=1024,
    retrieval_source="dbt-model-docs", retrieval_probability=0.5,
)
AGENTS = (SUPPORT_TRIAGE, RESEARCH_ASSISTANT, CODE_REVIEWER, SQL_ANALYST)
RETRY_LOOP_AGENT = SQL_ANALYST
UNPRICED_AGENT = CODE_REVIEWER
RETRY_LOOP_STEPS = (10, 20)
# Answers as JSON ({"summary", "sql", "row_count"}, gen_ai.output.type json): the checks' target.
JSON_ANSWER_AGENT = SQL_ANALYST
JSON_ANSWER_FIELDS = ("summary", "sql", "row_count")
# Calls this tool now and then, though its tools do not include it: the tool-choice check's target.
WRONG_TOOL_AGENT = SUPPORT_TRIAGE
WRONG_TOOL = WEB_SEARCH
# The model whose answers degrade under the quality_regression scenario.
REGRESSING_MODEL = GPT_4_1
_TEXT_ANSWERS = {
    SUPPORT_TRIAGE.name: ("Your order has shipped and should arrive within two business days.",
                          "I reset the sign-in link; check your inbox for a message from us.",
                          "I opened a ticket for the refund; our billing team answers within a day."),
    RESEARCH_ASSISTANT.name: ("Three sources agree: partial indexes cut the index size by 80% for this query.",
                              "The recommended timeout pattern is asyncio.timeout() around the awaited call."),
    CODE_REVIEWER.name: ("Two issues: the retry loop has no backoff, and the SQL string is built by "
                         "concatenation. Suggested fixes inline.",
                         "Looks good. One nit: the new helper lacks a docstring."),
}
FAILED_QUERY_RESULT_TOKENS = 40


# --- Planning a run ---------------------------------------------------------------------------

@dataclass
class _Step:
    """One span to emit: its own time, and its children, which run one after another inside it."""

    name: str
    kind: SpanKind
    attributes: dict[str, AttributeValue]
    own_s: float
    children: list[_Step] = field(default_factory=list)
    error_type: str = ""
    # (name, attributes) of span events recorded as the step ends, e.g. evaluation results.
    events: list[tuple[str, dict[str, AttributeValue]]] = field(default_factory=list)

    def duration_ns(self) -> int:
        return round(self.own_s * 1e9) + sum(child.duration_ns() for child in self.children)

    def count(self, operation: str) -> int:
        own = 1 if self.attributes.get(semconv.OPERATION_NAME) == operation else 0
        return own + sum(child.count(operation) for child in self.children)

    def errors(self) -> int:
        return (1 if self.error_type else 0) + sum(child.errors() for child in self.children)

    def walk(self) -> Iterator[_Step]:
        """This step and every step beneath it, in the order they run."""
        yield self
        for child in self.children:
            yield from child.walk()


@dataclass
class _Conversation:
    """What the model has seen so far in one run (real-size tokens), for prompt growth and caching."""

    agent: AgentProfile
    context_tokens: float
    active: frozenset[str]
    cached_tokens: dict[str, float] = field(default_factory=dict)


class _Planner:
    """Plans agent runs as step trees; owns the random draws and the rare-event counters."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._model_errors = _Rare(BASELINE_MODEL_ERROR_EVERY, rng)
        self._tool_errors = _Rare(BASELINE_TOOL_ERROR_EVERY, rng)
        self._empty_searches = _Rare(BASELINE_EMPTY_SEARCH_EVERY, rng)
        self._malformed_json = _Rare(BASELINE_MALFORMED_JSON_EVERY, rng)
        self._wrong_tools = _Rare(BASELINE_WRONG_TOOL_EVERY, rng)
        self._run_failures = _Rare(BASELINE_RUN_FAILURE_EVERY, rng)

    def plan(self, agent: AgentProfile, tier: str, active: frozenset[str]) -> _Step:
        """The step tree of one run of `agent` for a user of `tier`, under the active scenarios."""
        rng = self._rng
        model = ACME_REASONER_1 if UNPRICED_MODEL in active and agent is UNPRICED_AGENT else _pick(rng, agent.models)
        user_tokens = _lognormal(rng, agent.user_message_tokens, 0.6, 10, 20000)
        if TIER_SPIKE in active and tier == TIER_FREE:
            # A pasted document, carried in the context of every call of the run.
            user_tokens += _lognormal(rng, 60000, 0.3, 30000, 120000)
        run = _Conversation(agent, agent.system_prompt_tokens + user_tokens, active)
        truncating = TRUNCATION in active and agent.long_context
        steps: list[_Step] = []
        if rng.random() < agent.memory_probability:
            steps.append(self._memory(agent))
        if agent.retrieval_source and rng.random() < agent.retrieval_probability:
            steps.append(self._retrieval(run, user_tokens))
        if truncating:
            # Whole documents pulled into the prompt: the answer no longer fits in max_tokens.
            run.context_tokens += _lognormal(rng, 9000, 0.4, 4000, 20000)

        looping = RETRY_LOOP in active and agent is RETRY_LOOP_AGENT
        if looping:
            for attempt in range(rng.randint(*RETRY_LOOP_STEPS)):
                steps += self._chat(run, model, final=False, slowdown=1 + 0.25 * attempt, tools=(RUN_SQL,))
                steps.append(self._tool(run, RUN_SQL, slowdown=1 + 0.1 * attempt, failed_query=True))
        else:
            for _ in range(_pick(rng, agent.tool_rounds)):
                tools = tuple(self._choose_tool(agent) for _ in range(_pick(rng, agent.tools_per_round)))
                steps += self._chat(run, model, final=False, tools=tools)
                steps += [self._tool(run, tool) for tool in tools]
        steps += self._chat(run, model, final=True, truncate=truncating)
        failed = looping or self._run_failures()
        attributes: dict[str, AttributeValue] = {
            semconv.OPERATION_NAME: semconv.OP_INVOKE_AGENT, semconv.AGENT_NAME: agent.name,
            semconv.PROVIDER_NAME: model.provider}
        if failed:
            attributes[semconv.ERROR_TYPE] = RUN_FAILURE_ERROR_TYPE
        return _Step(
            f"{semconv.OP_INVOKE_AGENT} {agent.name}", SpanKind.INTERNAL, attributes,
            own_s=_lognormal(rng, 0.08, 0.5, 0.01, 1.0), children=steps,
            error_type=RUN_FAILURE_ERROR_TYPE if failed else "",
        )

    def _memory(self, agent: AgentProfile) -> _Step:
        return _Step(semconv.OP_SEARCH_MEMORY, SpanKind.CLIENT,
                     {semconv.OPERATION_NAME: semconv.OP_SEARCH_MEMORY, semconv.AGENT_NAME: agent.name},
                     own_s=_lognormal(self._rng, 0.05, 0.5, 0.01, 0.8))

    def _retrieval(self, run: _Conversation, query_tokens: float) -> _Step:
        rng = self._rng
        model = TEXT_EMBEDDING_3_SMALL
        embed_tokens = _scaled(min(query_tokens, 8000))
        embeddings = _Step(
            f"{semconv.OP_EMBEDDINGS} {model.name}", SpanKind.CLIENT,
            {semconv.OPERATION_NAME: semconv.OP_EMBEDDINGS, semconv.PROVIDER_NAME: model.provider,
             semconv.REQUEST_MODEL: model.name, semconv.RESPONSE_MODEL: model.response_name,
             semconv.INPUT_TOKENS: embed_tokens},
            own_s=_lognormal(rng, 0.12, 0.4, 0.03, 2.0),
        )
        run.context_tokens += _lognormal(rng, 1800, 0.4, 600, 6000)
        source = run.agent.retrieval_source
        return _Step(f"{semconv.OP_RETRIEVAL} {source}", SpanKind.CLIENT,
                     {semconv.OPERATION_NAME: semconv.OP_RETRIEVAL, semconv.DATA_SOURCE_ID: source,
                      semconv.AGENT_NAME: run.agent.name},
                     own_s=_lognormal(rng, 0.09, 0.5, 0.01, 1.5), children=[embeddings])

    def _choose_tool(self, agent: AgentProfile) -> Tool:
        if agent is WRONG_TOOL_AGENT and self._wrong_tools():
            return WRONG_TOOL
        return _pick(self._rng, agent.tools)

    def _chat(self, run: _Conversation, model: Model, *, final: bool, truncate: bool = False,
              slowdown: float = 1.0, tools: tuple[Tool, ...] = ()) -> list[_Step]:
        """A model call as the agent sees it: failed attempts first (retried or failed over)."""
        steps: list[_Step] = []
        if PROVIDER_OUTAGE in run.active and model.provider == OUTAGE_PROVIDER:
            steps.append(self._failed_chat(run, model, _pick(self._rng, OUTAGE_ERROR_TYPES)))
            model = FALLBACK_MODEL
        elif self._model_errors():
            steps.append(self._failed_chat(run, model, _pick(self._rng, BASELINE_MODEL_ERROR_TYPES)))
        steps.append(self._successful_chat(run, model, final=final, truncate=truncate, slowdown=slowdown,
                                           tools=tools))
        return steps

    def _chat_attributes(self, run: _Conversation, model: Model, stream: bool) -> dict[str, AttributeValue]:
        return {
            semconv.OPERATION_NAME: semconv.OP_CHAT, semconv.PROVIDER_NAME: model.provider,
            semconv.REQUEST_MODEL: model.name, semconv.AGENT_NAME: run.agent.name,
            semconv.REQUEST_MAX_TOKENS: _scaled(run.agent.max_tokens), semconv.REQUEST_STREAM: stream,
        }

    def _failed_chat(self, run: _Conversation, model: Model, error_type: str) -> _Step:
        rng = self._rng
        # Rate limits answer at once; connection errors and timeouts wait for the client's timeout.
        latency = _lognormal(rng, 0.15, 0.5, 0.03, 1.0) if error_type == "RateLimitError" \
            else _lognormal(rng, 4.0, 0.5, 1.0, 30.0)
        return _Step(f"{semconv.OP_CHAT} {model.name}", SpanKind.CLIENT,
                     {**self._chat_attributes(run, model, run.agent.stream_all), semconv.ERROR_TYPE: error_type},
                     own_s=latency, error_type=error_type)

    def _successful_chat(self, run: _Conversation, model: Model, *, final: bool, truncate: bool,
                         slowdown: float, tools: tuple[Tool, ...]) -> _Step:
        rng = self._rng
        agent = run.agent
        prompt = run.context_tokens
        if truncate:
            output = float(agent.max_tokens)
        elif final:
            output = _lognormal(rng, 380, 0.6, 50, agent.max_tokens * 0.9)
        else:
            output = _lognormal(rng, 70, 0.5, 20, 300)
        finish = FINISH_LENGTH if truncate else FINISH_STOP if final else FINISH_TOOL_CALLS
        cache_read, cache_write = self._cache(run, model, prompt)
        stream = agent.stream_all or (final and agent.stream_final)
        first_token_s = model.first_token_s * _lognormal(rng, 1.0, 0.35, 0.4, 4.0) + prompt * 1.5e-5
        duration = (first_token_s + output / model.output_tokens_per_s * _lognormal(rng, 1.0, 0.25, 0.6, 2.0))
        input_tokens = _scaled(prompt)
        read = min(round(cache_read * DEMO_TOKEN_SCALE), input_tokens)
        write = min(round(cache_write * DEMO_TOKEN_SCALE), input_tokens - read)
        attributes = {
            **self._chat_attributes(run, model, stream),
            semconv.RESPONSE_MODEL: model.response_name,
            semconv.INPUT_TOKENS: input_tokens,
            semconv.OUTPUT_TOKENS: _scaled(output),
            semconv.FINISH_REASONS: (finish,),
        }
        if read:
            attributes[semconv.CACHE_READ_TOKENS] = read
        if write:
            attributes[semconv.CACHE_WRITE_TOKENS] = write
        if stream:
            attributes[semconv.TIME_TO_FIRST_CHUNK] = round(first_token_s * slowdown, 4)
        regressing = QUALITY_REGRESSION in run.active and model is REGRESSING_MODEL
        events: list[tuple[str, dict[str, AttributeValue]]] = []
        if final:
            json_answer = agent is JSON_ANSWER_AGENT
            text = self._json_answer(regressing) if json_answer else rng.choice(_TEXT_ANSWERS[agent.name])
            if truncate:
                text = text[: len(text) // 2]
            if json_answer:
                attributes[semconv.OUTPUT_TYPE] = semconv.OUTPUT_TYPE_JSON
            parts: list[dict[str, Any]] = [{semconv.OUTPUT_PART_TYPE: semconv.OUTPUT_PART_TEXT_TYPE,
                                            semconv.OUTPUT_PART_CONTENT: text}]
            if rng.random() < JUDGE_SAMPLE_SHARE:
                events.append(self._judgement(regressing))
        else:
            parts = [{semconv.OUTPUT_PART_TYPE: semconv.OUTPUT_PART_TOOL_CALL_TYPE,
                      semconv.OUTPUT_PART_TOOL_CALL_ID: f"call_{rng.getrandbits(96):024x}",
                      semconv.OUTPUT_PART_TOOL_NAME: tool.name, semconv.OUTPUT_PART_TOOL_ARGUMENTS: {}}
                     for tool in tools]
        attributes[semconv.OUTPUT_MESSAGES] = json.dumps([{
            semconv.OUTPUT_MESSAGE_ROLE: semconv.ROLE_ASSISTANT, semconv.OUTPUT_MESSAGE_PARTS: parts,
            semconv.OUTPUT_MESSAGE_FINISH_REASON: _MESSAGE_FINISH_REASON[finish]}])
        run.context_tokens += output
        return _Step(f"{semconv.OP_CHAT} {model.name}", SpanKind.CLIENT, attributes, own_s=duration * slowdown,
                     events=events)

    def _json_answer(self, regressing: bool) -> str:
        """A JSON answer of the JSON agent: well-formed, or broken the way models break it."""
        rng = self._rng
        answer = {"summary": rng.choice(("Revenue grew 12% quarter over quarter, led by EMEA.",
                                         "Active accounts are flat; churn is concentrated in the free plan.")),
                  "sql": rng.choice(_SQL_QUERIES), "row_count": rng.randint(3, 12)}
        if regressing and rng.random() < 0.4:
            return f"```json\n{json.dumps(answer, indent=2)}\n```"  # fenced: not JSON any more
        if regressing and rng.random() < 0.35:
            del answer["sql"]
        text = json.dumps(answer)
        return text[: len(text) * 2 // 3] if self._malformed_json() else text

    def _judgement(self, regressing: bool) -> tuple[str, dict[str, AttributeValue]]:
        """An LLM judge's evaluation result of a final answer, as the GenAI semconv event."""
        score = round(min(1.0, max(0.0, self._rng.gauss(0.45 if regressing else 0.86, 0.12 if regressing else 0.07))),
                      3)
        return semconv.EVALUATION_RESULT_EVENT, {
            semconv.EVALUATION_NAME: JUDGE_EVALUATION,
            semconv.EVALUATION_SCORE_VALUE_ALIASES[0]: score,
            semconv.EVALUATION_SCORE_LABEL: JUDGE_LABEL_PASS if score >= JUDGE_PASS_SCORE else JUDGE_LABEL_FAIL,
        }

    def _cache(self, run: _Conversation, model: Model, prompt: float) -> tuple[float, float]:
        """Prompt-cache (read, write) tokens as each provider bills them, in real sizes.

        OpenAI caches prompts of 1024+ tokens by itself in 128-token steps; Anthropic writes and
        reads where the agent framework put its cache breakpoints (system prompt, then each turn).
        The system prompt may still be cached from another user's run.
        """
        rng = self._rng
        cached = run.cached_tokens.get(model.name)
        run.cached_tokens[model.name] = prompt
        if model.provider == GPT_4O_MINI.provider:
            if cached is None:
                cached = run.agent.system_prompt_tokens if rng.random() < 0.6 else 0.0
            return (128 * math.floor(min(cached, prompt) / 128) if prompt >= 1024 else 0.0), 0.0
        if model.provider == CLAUDE_SONNET_4_5.provider:
            if cached is None:
                system = float(run.agent.system_prompt_tokens)
                return (system, 0.0) if rng.random() < 0.65 else (0.0, system)
            return cached, prompt - cached
        return 0.0, 0.0

    def _tool(self, run: _Conversation, tool: Tool, *, slowdown: float = 1.0, failed_query: bool = False) -> _Step:
        rng = self._rng
        arguments, result = tool.call(rng)
        error_type = ""
        result_tokens = tool.result_tokens
        if failed_query:
            # The query is wrong, not the database: the tool works and says so, and the agent retries.
            result = {"error": rng.choice(_SQL_ERRORS)}
            result_tokens = FAILED_QUERY_RESULT_TOKENS
        elif self._tool_errors():
            error_type = "TimeoutError"
        elif (tool is OUTAGE_TOOL and TOOL_OUTAGE in run.active) or (tool.can_be_empty and self._empty_searches()):
            result = []
        attributes: dict[str, AttributeValue] = {
            semconv.OPERATION_NAME: semconv.OP_EXECUTE_TOOL, semconv.TOOL_NAME: tool.name,
            semconv.TOOL_TYPE: "function", semconv.TOOL_CALL_ID: f"call_{rng.getrandbits(96):024x}",
            semconv.TOOL_CALL_ARGUMENTS: json.dumps(arguments), semconv.AGENT_NAME: run.agent.name,
        }
        if error_type:
            attributes[semconv.ERROR_TYPE] = error_type
            latency = tool.timeout_s
            run.context_tokens += 40
        else:
            attributes[semconv.TOOL_CALL_RESULT] = json.dumps(result)
            latency = _lognormal(rng, tool.latency_s, 0.5, tool.latency_s / 5, tool.timeout_s)
            run.context_tokens += _lognormal(rng, result_tokens, 0.4, 20, 8000) if result else 20
        return _Step(f"{semconv.OP_EXECUTE_TOOL} {tool.name}", SpanKind.INTERNAL, attributes,
                     own_s=latency * slowdown, error_type=error_type)


# --- Emitting spans ---------------------------------------------------------------------------

class BaggageSpanProcessor(SpanProcessor):
    """Copies every Baggage entry of the parent context onto each span as it starts.

    Baggage carries who and what a run serves (user tier, feature) from the entry point through
    every service; copying it in a span processor puts it on every child span, and so on every
    metric built from one, without each instrumentation having to set it.
    """

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        for key, value in baggage.get_all(parent_context).items():
            span.set_attribute(key, str(value))


def _emit(tracer: trace.Tracer, step: _Step, start_ns: int, parent: Context) -> trace.Span:
    """Start and end the step's span and its children's at their planned times."""
    span = tracer.start_span(step.name, context=parent, kind=step.kind, attributes=step.attributes,
                             start_time=start_ns)
    own_ns = round(step.own_s * 1e9)
    # Half the step's own time before its first child and half after its last, so children
    # start after it and end before it.
    cursor = start_ns + own_ns // 2
    inner = trace.set_span_in_context(span, parent)
    for child in step.children:
        _emit(tracer, child, cursor, inner)
        cursor += child.duration_ns()
    end_ns = cursor + own_ns - own_ns // 2
    for name, attributes in step.events:
        span.add_event(name, attributes, timestamp=end_ns)
    if step.error_type:
        span.set_status(Status(StatusCode.ERROR, step.error_type))
    span.end(end_time=end_ns)
    return span


class DemoWorkload:
    """Production-like agent traffic through a TracerProvider, with fault scenarios on demand.

    Spans go through `tracer_provider`'s span processors, each agent's under its own service
    (service.name), so one provider with one exporter (or the in-process metrics processor)
    receives every service. `rate` is agent runs per second of the background thread; `run_once`
    makes one run synchronously (tests call it with a fixed `seed`). Scenarios active are those
    of `switch` plus those `schedule` has on since `start()`.
    """

    def __init__(
        self,
        tracer_provider: TracerProvider,
        switch: ScenarioSwitch,
        *,
        rate: float = DEFAULT_RATE,
        seed: int | None = None,
        logger_provider: LoggerProvider | None = None,
        schedule: ScenarioSchedule | None = None,
        service_name: str | None = None,
    ) -> None:
        if not (rate > 0 and math.isfinite(rate)):
            raise ValueError(f"rate must be a positive number of runs per second, got {rate!r}")
        self.rate = rate
        self.switch = switch
        self.schedule = schedule
        self._rng = random.Random(seed)
        self._pacing = random.Random(None if seed is None else seed + 1)
        self._planner = _Planner(self._rng)
        # The SDK tracer exposes the provider's span processors; each service's provider feeds
        # them after copying baggage, and never shuts them down (their owner does).
        shared = tracer_provider.get_tracer(__name__).span_processor
        self._tracers: dict[str, trace.Tracer] = {}
        for agent in AGENTS:
            service = service_name or agent.service
            if service in self._tracers:
                continue
            processors = SynchronousMultiSpanProcessor()
            processors.add_span_processor(BaggageSpanProcessor())
            processors.add_span_processor(shared)
            provider = TracerProvider(
                resource=tracer_provider.resource.merge(Resource({semconv.SERVICE_NAME: service})),
                shutdown_on_exit=False, active_span_processor=processors,
                id_generator=tracer_provider.id_generator, sampler=tracer_provider.sampler,
            )
            self._tracers[service] = provider.get_tracer(__name__)
        self._service_of = {agent.name: service_name or agent.service for agent in AGENTS}
        self._logger = logger_provider.get_logger(__name__) if logger_provider is not None else None
        self._run_lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._started_at = time.monotonic()

    def active_scenarios(self) -> tuple[str, ...]:
        """Scenarios in effect now: switched on by hand or by the schedule, in catalogue order."""
        active = set(self.switch.active())
        if self.schedule is not None:
            active |= self.schedule.active_at(time.monotonic() - self._started_at)
        return tuple(name for name in self.switch.known() if name in active)

    def run_once(self) -> None:
        """Generate one agent run (one trace) now, ending at the current time."""
        self._run(frozenset(self.active_scenarios()))

    def _run(self, active: frozenset[str]) -> None:
        with self._run_lock:
            rng = self._rng
            agent = _pick(rng, [(agent, agent.weight) for agent in AGENTS])
            tier = _pick(rng, agent.tiers)
            feature = _pick(rng, agent.features)
            root = self._planner.plan(agent, tier, active)
        context = baggage.set_baggage(semconv.USER_TIER, tier, context=Context())
        context = baggage.set_baggage(semconv.APP_FEATURE, feature, context=context)
        end_ns = time.time_ns()
        span = _emit(self._tracers[self._service_of[agent.name]], root, end_ns - root.duration_ns(), context)
        if self._logger is not None:
            self._log_run(agent, tier, feature, root, trace.set_span_in_context(span, context), end_ns)

    def _log_run(self, agent: AgentProfile, tier: str, feature: str, root: _Step, context: Context,
                 end_ns: int) -> None:
        """A structured decision log of the run, carrying its trace id (Loki links it to Tempo)."""
        errors = root.errors()
        steps = list(root.walk())
        models = sorted({str(step.attributes[semconv.REQUEST_MODEL]) for step in steps
                         if semconv.REQUEST_MODEL in step.attributes})
        tools = [str(step.attributes[semconv.TOOL_NAME]) for step in steps if semconv.TOOL_NAME in step.attributes]
        finishes = [step.attributes.get(semconv.FINISH_REASONS) for step in steps]
        outcome = "truncated" if (FINISH_LENGTH,) in finishes else "answered"
        self._logger.emit(LogRecord(
            timestamp=end_ns, context=context,
            severity_number=SeverityNumber.WARN if errors else SeverityNumber.INFO,
            severity_text="WARN" if errors else "INFO",
            body=f"{agent.name} run {outcome}: {root.count(semconv.OP_CHAT)} model calls "
                 f"({', '.join(models)}), {len(tools)} tool calls ({', '.join(tools) or 'none'}), "
                 f"{errors} failed steps",
            attributes={semconv.AGENT_NAME: agent.name, semconv.USER_TIER: tier, semconv.APP_FEATURE: feature,
                        semconv.REQUEST_MODEL: tuple(models), semconv.TOOL_NAME: tuple(tools)},
        ))

    def start(self) -> None:
        """Run agents in a background thread at `rate` runs per second until `stop()`."""
        if self._thread is not None:
            return
        self._stopping.clear()
        self._started_at = time.monotonic()
        self._thread = threading.Thread(target=self._loop, name="genai-demo-workload", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the background thread; the tracer provider's owner flushes and shuts it down."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def _loop(self) -> None:
        next_run = time.monotonic()
        shown: tuple[str, ...] | None = None
        while not self._stopping.is_set():
            active = self.active_scenarios()
            if active != shown:
                LOGGER.info("demo scenarios active: %s", ", ".join(active) or "none (healthy baseline)")
                shown = active
            try:
                self._run(frozenset(active))
            except Exception:  # one bad run must not end the demo
                LOGGER.exception("demo agent run failed")
            # Jittered arrivals around the mean rate; after a stall, carry on rather than burst.
            next_run = max(next_run + self._pacing.uniform(0.5, 1.5) / self.rate, time.monotonic())
            self._stopping.wait(next_run - time.monotonic())


class InProcessDemo:
    """The demo feeding an exporter pipeline in-process (`serve --demo`); `stop()` ends both."""

    def __init__(self, workload: DemoWorkload, tracer_provider: TracerProvider) -> None:
        self.workload = workload
        self.tracer_provider = tracer_provider

    def stop(self) -> None:
        """Stop generating runs, then aggregate every span still queued."""
        self.workload.stop()
        self.tracer_provider.shutdown()


def start_in_process_demo(pipeline: Any, switch: ScenarioSwitch, *, rate: float = DEFAULT_RATE,
                          schedule: str | ScenarioSchedule | None = None, seed: int | None = None) -> InProcessDemo:
    """Start the demo workload feeding `pipeline` (a genai_exporter Pipeline) directly, no network.

    Raises ValueError (before starting anything) for a bad rate or schedule.
    """
    from genai_exporter.inprocess import GenAIMetricsSpanProcessor

    if isinstance(schedule, str):
        schedule = ScenarioSchedule.parse(schedule, switch.known())
    tracer_provider = TracerProvider(shutdown_on_exit=False)
    workload = DemoWorkload(tracer_provider, switch, rate=rate, seed=seed, schedule=schedule)
    tracer_provider.add_span_processor(GenAIMetricsSpanProcessor(pipeline=pipeline))
    workload.start()
    return InProcessDemo(workload, tracer_provider)
