"""The metric catalogue: the one place that names every metric and label the bundle exposes.

The exporter builds its series from these specs; the dashboards, alert rules, docs and tests
import them. Nothing else spells a metric or label name. Changing a name here is a breaking
change for every user's dashboards and alerts.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class MetricKind(Enum):
    """Prometheus metric type of a catalogue entry."""

    COUNTER = "counter"
    GAUGE = "gauge"
    HISTOGRAM = "histogram"
    INFO = "info"


# --- Label names -----------------------------------------------------------------------------

SERVICE = "service"
PROVIDER = "provider"
MODEL = "model"
OPERATION = "operation"
TOKEN_TYPE = "token_type"
LAYER = "layer"
AGENT = "agent"
TOOL = "tool"
STATUS = "status"
ERROR_TYPE = "error_type"
FINISH_REASON = "finish_reason"
REASON = "reason"
LABEL = "label"
CODE = "code"
CHECK = "check"
RESULT = "result"
EVALUATION = "evaluation"
VERSION = "version"
PYTHON_VERSION = "python_version"
# Whether the data path runs compiled: genai_exporter.extensions.BUILD_COMPILED, BUILD_PYTHON or BUILD_MIXED.
DATA_PATH = "data_path"

# --- Closed label value sets ------------------------------------------------------------------

TOKEN_TYPE_INPUT = "input"
TOKEN_TYPE_CACHE_READ = "cache_read"
TOKEN_TYPE_CACHE_WRITE = "cache_write"
TOKEN_TYPE_OUTPUT = "output"
# The four billed token types partition the tokens of a call: sum() over them is the total.
TOKEN_TYPES = (TOKEN_TYPE_INPUT, TOKEN_TYPE_CACHE_READ, TOKEN_TYPE_CACHE_WRITE, TOKEN_TYPE_OUTPUT)

LAYER_MODEL = "model"
LAYER_TOOL = "tool"
LAYER_AGENT = "agent"
LAYER_RETRIEVAL = "retrieval"
LAYER_MEMORY = "memory"
LAYER_OTHER = "other"
LAYERS = (LAYER_MODEL, LAYER_TOOL, LAYER_AGENT, LAYER_RETRIEVAL, LAYER_MEMORY, LAYER_OTHER)

STATUS_OK = "ok"
STATUS_ERROR = "error"
STATUSES = (STATUS_OK, STATUS_ERROR)

FINISH_REASON_TRUNCATED = "length"

# Outcome of a deterministic output check (the `result` label of genai_output_checks_total).
RESULT_PASS = "pass"
RESULT_FAIL = "fail"
RESULTS = (RESULT_PASS, RESULT_FAIL)

# Why a span was rejected (the `reason` label of genai_exporter_spans_rejected_total).
REJECT_INVALID_TOKENS = "invalid_tokens"
REJECT_INVALID_DURATION = "invalid_duration"
REJECT_INVALID_SPAN = "invalid_span"
REJECT_REASONS = (REJECT_INVALID_TOKENS, REJECT_INVALID_DURATION, REJECT_INVALID_SPAN)

# Value that replaces a label value once its label has reached its distinct-value cap.
OVERFLOW_VALUE = "__overflow__"
# Value of a label the span did not carry (Prometheus treats "" as absent, so we spell it).
UNKNOWN_VALUE = ""


# --- Buckets ----------------------------------------------------------------------------------

# gen_ai.client.operation.duration buckets from the OTel GenAI semantic conventions, extended by
# the same doubling to 655.36 s: agent runs (invoke_agent) take minutes, and the semconv
# invoke_agent buckets reach 409.6 s. Without the tail, p95 of an agent run is unreadable.
DURATION_BUCKETS_SECONDS = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
    163.84, 327.68, 655.36,
)
# gen_ai.client.operation.time_to_first_chunk uses the operation.duration buckets in semconv.
TIME_TO_FIRST_TOKEN_BUCKETS_SECONDS = DURATION_BUCKETS_SECONDS[:14]
# gen_ai.invoke_agent.inference_calls / tool_calls buckets from the GenAI semconv.
AGENT_RUN_CALLS_BUCKETS = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0)
# Cost of one agent run in USD: from a cheap single call (0.0001) to a runaway run (50).
# Evaluation scores: judges score on 0..1 (most) or 1..5 / 0..10 scales; 0.1 steps where most land.
EVALUATION_SCORE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 2.0, 3.0, 4.0, 5.0, 10.0)
AGENT_RUN_COST_BUCKETS_USD = (
    0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 50.0,
)


@dataclass(frozen=True)
class MetricSpec:
    """One metric family: its exposed name, type, help text and label names.

    `name` is the name users query: counters end in `_total`; histograms are the base name of the
    `_bucket`, `_sum` and `_count` series. Domain metrics (`domain=True`) carry the `service`
    label first and the configured dimension labels last, around their own `labels`.
    """

    name: str
    kind: MetricKind
    help: str
    labels: tuple[str, ...]
    domain: bool
    unit: str = ""
    buckets: tuple[float, ...] = ()
    exemplars: bool = False

    @property
    def family_name(self) -> str:
        """Name of the family as prometheus_client wants it (counters without `_total`)."""
        if self.kind is MetricKind.COUNTER and self.name.endswith("_total"):
            return self.name[: -len("_total")]
        if self.kind is MetricKind.INFO and self.name.endswith("_info"):
            return self.name[: -len("_info")]
        return self.name


TOKENS = MetricSpec(
    name="genai_tokens_total",
    kind=MetricKind.COUNTER,
    help="Billed tokens of GenAI model calls; token_type partitions them (input is uncached input, "
    "output includes reasoning), so sum() over token_type is the total.",
    labels=(PROVIDER, MODEL, OPERATION, TOKEN_TYPE),
    domain=True,
)
COST = MetricSpec(
    name="genai_cost_usd_total",
    kind=MetricKind.COUNTER,
    help="Cost in USD of GenAI model calls, priced from the price table per token type.",
    labels=(PROVIDER, MODEL, OPERATION, TOKEN_TYPE),
    domain=True,
    unit="usd",
    exemplars=True,
)
CACHE_SAVINGS = MetricSpec(
    name="genai_cache_savings_usd_total",
    kind=MetricKind.COUNTER,
    help="USD the prompt cache saved: what cache-read tokens would have cost more at the uncached "
    "input rate of their call (long-context tier included).",
    labels=(PROVIDER, MODEL, OPERATION),
    domain=True,
    unit="usd",
)
UNPRICED_TOKENS = MetricSpec(
    name="genai_unpriced_tokens_total",
    kind=MetricKind.COUNTER,
    help="Tokens of model calls whose model has no price: cost tracking has a hole for them.",
    labels=(PROVIDER, MODEL),
    domain=True,
)
OPERATION_DURATION = MetricSpec(
    name="genai_operation_duration_seconds",
    kind=MetricKind.HISTOGRAM,
    help="Duration of GenAI operations (model, tool, agent, retrieval, memory) from their spans.",
    labels=(LAYER, OPERATION, PROVIDER, MODEL, AGENT, TOOL, STATUS, ERROR_TYPE),
    domain=True,
    unit="seconds",
    buckets=DURATION_BUCKETS_SECONDS,
    exemplars=True,
)
EMPTY_RESPONSES = MetricSpec(
    name="genai_empty_responses_total",
    kind=MetricKind.COUNTER,
    help="Completed, non-error operations that returned nothing (0 output tokens, empty output "
    "messages, or an empty tool result). Content that was not captured does not count.",
    labels=(LAYER, OPERATION, PROVIDER, MODEL, AGENT, TOOL),
    domain=True,
)
FINISH_REASONS = MetricSpec(
    name="genai_finish_reasons_total",
    kind=MetricKind.COUNTER,
    help="Finish reasons of model responses; finish_reason=\"length\" is truncation.",
    labels=(PROVIDER, MODEL, FINISH_REASON),
    domain=True,
)
TIME_TO_FIRST_TOKEN = MetricSpec(
    name="genai_time_to_first_token_seconds",
    kind=MetricKind.HISTOGRAM,
    help="Time from request to the first streamed chunk of a model response.",
    labels=(PROVIDER, MODEL),
    domain=True,
    unit="seconds",
    buckets=TIME_TO_FIRST_TOKEN_BUCKETS_SECONDS,
)
AGENT_RUN_COST = MetricSpec(
    name="genai_agent_run_cost_usd",
    kind=MetricKind.HISTOGRAM,
    help="Cost in USD of one agent run (an invoke_agent span and every span beneath it).",
    labels=(AGENT,),
    domain=True,
    unit="usd",
    buckets=AGENT_RUN_COST_BUCKETS_USD,
)
AGENT_RUN_MODEL_CALLS = MetricSpec(
    name="genai_agent_run_model_calls",
    kind=MetricKind.HISTOGRAM,
    help="Model calls made by one agent run; a spike is the signature of a retry loop.",
    labels=(AGENT,),
    domain=True,
    buckets=AGENT_RUN_CALLS_BUCKETS,
)
AGENT_RUN_TOOL_CALLS = MetricSpec(
    name="genai_agent_run_tool_calls",
    kind=MetricKind.HISTOGRAM,
    help="Tool calls made by one agent run.",
    labels=(AGENT,),
    domain=True,
    buckets=AGENT_RUN_CALLS_BUCKETS,
)

OUTPUT_CHECKS = MetricSpec(
    name="genai_output_checks_total",
    kind=MetricKind.COUNTER,
    help="Deterministic checks of captured outputs (valid JSON, required fields, expected tool, not "
    "empty) by result; outputs that were not captured are not checked.",
    labels=(CHECK, RESULT, AGENT, TOOL, MODEL),
    domain=True,
)
EVALUATION_SCORE = MetricSpec(
    name="genai_evaluation_score",
    kind=MetricKind.HISTOGRAM,
    help="Scores that evaluators (e.g. an LLM as judge) gave GenAI operations, from evaluation result events.",
    labels=(EVALUATION, AGENT, MODEL),
    domain=True,
    buckets=EVALUATION_SCORE_BUCKETS,
)
EVALUATIONS = MetricSpec(
    name="genai_evaluations_total",
    kind=MetricKind.COUNTER,
    help="Evaluation results of GenAI operations by the label the evaluator gave (\"\" when it gave none).",
    labels=(EVALUATION, LABEL),
    domain=True,
)

SPANS_RECEIVED = MetricSpec(
    name="genai_exporter_spans_received_total",
    kind=MetricKind.COUNTER,
    help="Spans of accepted requests, counted once processed (GenAI or not, valid or not).",
    labels=(),
    domain=False,
)
SPANS_REJECTED = MetricSpec(
    name="genai_exporter_spans_rejected_total",
    kind=MetricKind.COUNTER,
    help="Spans rejected as invalid (reported to the sender as OTLP partial success).",
    labels=(REASON,),
    domain=False,
)
SPANS_IGNORED = MetricSpec(
    name="genai_exporter_spans_ignored_total",
    kind=MetricKind.COUNTER,
    help="Spans that are not GenAI spans (still used to link agent runs across the trace tree).",
    labels=(),
    domain=False,
)
SPANS_DROPPED = MetricSpec(
    name="genai_exporter_spans_dropped_total",
    kind=MetricKind.COUNTER,
    help="Spans dropped before processing because a queue was full (in-process processor).",
    labels=(),
    domain=False,
)
LABEL_OVERFLOW = MetricSpec(
    name="genai_exporter_label_overflow_total",
    kind=MetricKind.COUNTER,
    help="Observations whose label value was replaced by __overflow__ because the label reached "
    "its distinct-value cap.",
    labels=(LABEL,),
    domain=False,
)
REQUESTS = MetricSpec(
    name="genai_exporter_otlp_requests_total",
    kind=MetricKind.COUNTER,
    help="OTLP/HTTP export requests by HTTP status code.",
    labels=(CODE,),
    domain=False,
)
AGENT_RUNS_EVICTED = MetricSpec(
    name="genai_exporter_agent_run_state_evicted_total",
    kind=MetricKind.COUNTER,
    help="Pending agent-run accumulators dropped to keep memory bounded (their parent span never "
    "arrived in time).",
    labels=(),
    domain=False,
)
BUILD_INFO = MetricSpec(
    name="genai_exporter_build_info",
    kind=MetricKind.GAUGE,
    help="Build information of the running genai-exporter (data_path: compiled, python or mixed); "
    "the value is always 1.",
    labels=(VERSION, PYTHON_VERSION, DATA_PATH),
    domain=False,
)

# Budgets come from the exporter's config; their labels are the dimension labels the budget
# applies to (for example user_tier), so they are not fixed here.
BUDGET_TOKENS_PER_SECOND = MetricSpec(
    name="genai_budget_tokens_per_second",
    kind=MetricKind.GAUGE,
    help="Configured token budget in tokens per second, labelled by the dimensions it applies to.",
    labels=(),
    domain=False,
)
BUDGET_COST_USD_PER_DAY = MetricSpec(
    name="genai_budget_cost_usd_per_day",
    kind=MetricKind.GAUGE,
    help="Configured cost budget in USD per day, labelled by the dimensions it applies to.",
    labels=(),
    domain=False,
)

DOMAIN_METRICS = (
    TOKENS,
    COST,
    CACHE_SAVINGS,
    UNPRICED_TOKENS,
    OPERATION_DURATION,
    EMPTY_RESPONSES,
    FINISH_REASONS,
    TIME_TO_FIRST_TOKEN,
    AGENT_RUN_COST,
    AGENT_RUN_MODEL_CALLS,
    AGENT_RUN_TOOL_CALLS,
    OUTPUT_CHECKS,
    EVALUATION_SCORE,
    EVALUATIONS,
)
SELF_METRICS = (
    SPANS_RECEIVED,
    SPANS_REJECTED,
    SPANS_IGNORED,
    SPANS_DROPPED,
    LABEL_OVERFLOW,
    REQUESTS,
    AGENT_RUNS_EVICTED,
    BUILD_INFO,
)
BUDGET_METRICS = (BUDGET_TOKENS_PER_SECOND, BUDGET_COST_USD_PER_DAY)
ALL_METRICS = DOMAIN_METRICS + SELF_METRICS + BUDGET_METRICS


def series_names(spec: MetricSpec) -> tuple[str, ...]:
    """Every sample name a family produces, so PromQL users can be checked against the catalogue."""
    if spec.kind is MetricKind.HISTOGRAM:
        return (f"{spec.name}_bucket", f"{spec.name}_sum", f"{spec.name}_count")
    return (spec.name,)


def all_series_names() -> frozenset[str]:
    """All sample names the exporter can expose; dashboards and alert lints validate against it."""
    return frozenset(name for spec in ALL_METRICS for name in series_names(spec))
