"""Alerting and recording rules of genai-exporter, built from the metric catalogue.

One source of truth: every metric and label name comes from `genai_exporter.catalog` (and the
default dimension labels from `genai_exporter.config`), so a renamed metric cannot leave a rule
silently querying nothing. `python -m alerts.rules` writes `alerts/genai.rules.yml`, the committed
file Prometheus loads and promtool tests (`alerts/tests/`); a test fails when it is stale.
`render_rules(time_scale)` renders the same rules with every `for:` and range window multiplied by
`time_scale`, so an end-to-end test with a live Prometheus can run them in seconds instead of hours.
Traffic floors are per-second rates of the unscaled windows, so the same traffic passes them at
any time scale.

Recording rules are named `level:metric:operations` (Prometheus naming practice): the level lists
the labels the series keeps, the metric is the catalogue metric without `_total` (or, for a
filtered count, what it counts: `genai_agent_runs`, `genai_operation_errors`), the operations say
how it was computed and over which window, newest first. Each group records first and alerts
after: rules of a group run in order at the same timestamp, so an alert always reads the
recordings of its own evaluation, never those of the previous one.

Budgets are not rules: the exporter exposes them as gauges from its config and the budget alerts
join usage against them, so one rule file serves every deployment.
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from genai_exporter import catalog, config, semconv

# --- Names Prometheus itself defines -----------------------------------------------------------

JOB = "job"
INSTANCE = "instance"
BUCKET_BOUND = "le"
QUANTILE = "quantile"
UP = "up"
# Scrape job of the exporter (deploy/prometheus/prometheus.yml); `up` is only meaningful per job.
EXPORTER_JOB = "genai-exporter"

# The default dimension labels of the exporter config (user_tier, feature). Budgets name some of
# them; a deployment with other dimensions adds its own budget rules (see the runbook).
DIMENSIONS = tuple(dimension.label for dimension in config.default_dimensions())
# Every set of dimensions a budget can apply to: a budget applies to exactly the labels it names,
# so {user_tier="free"} and {user_tier="free", feature="search"} are two budgets, joined apart.
BUDGET_SCOPES = tuple(
    scope for size in range(1, len(DIMENSIONS) + 1) for scope in itertools.combinations(DIMENSIONS, size))

# --- Alert vocabulary --------------------------------------------------------------------------

SEVERITY = "severity"
CRITICAL = "critical"  # pages someone now
WARNING = "warning"  # a ticket: look at it during working hours
INFO = "info"  # context for other alerts, routed nowhere noisy
SEVERITIES = (CRITICAL, WARNING, INFO)
# Static labels that tell apart the rules of one alert (promtool refuses two rules with the same
# name and labels): the windows of a burn-rate alert, as kubernetes-mixin names them; the labels a
# budget applies to; the layer a latency threshold belongs to.
LONG_WINDOW = "long"
SHORT_WINDOW = "short"
BUDGET_BY = "budget_by"

RUNBOOK_PATH = "alerts/runbook.md"
# Grafana dashboard uids (fixed by the dashboards). dashboard_url is relative to the Grafana base
# URL, which the Alertmanager templates prefix, so the rule file carries no deployment address.
COST_DASHBOARD = "genai-cost"
RELIABILITY_DASHBOARD = "genai-reliability"
EXPORTER_DASHBOARD = "genai-exporter-health"
# Labels the dashboards have a template variable for: a dashboard link sets those the alert has.
DOMAIN_DASHBOARD_FILTERS = (catalog.SERVICE, catalog.PROVIDER, catalog.MODEL, *DIMENSIONS)
EXPORTER_DASHBOARD_FILTERS = (JOB, INSTANCE)

RULE_FILE = Path(__file__).resolve().parent / "genai.rules.yml"


# --- Durations ----------------------------------------------------------------------------------

_DURATION_UNITS = (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1))


def parse_duration(text: str) -> int:
    """Milliseconds of a single-unit Prometheus duration such as `5m`; the rules only use those."""
    for unit, milliseconds in sorted(_DURATION_UNITS, key=lambda item: -len(item[0])):
        number = text.removesuffix(unit)
        if number != text and number.isdigit():
            return int(number) * milliseconds
    raise ValueError(f"not a single-unit Prometheus duration: {text!r}")


def format_duration(milliseconds: int) -> str:
    """The Prometheus spelling of a duration, largest units first (`14m24s`), for scaled windows."""
    if milliseconds <= 0:
        raise ValueError(f"a rule duration must be positive, got {milliseconds} ms")
    parts = []
    for unit, size in _DURATION_UNITS:
        count, milliseconds = divmod(milliseconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


@dataclass(frozen=True)
class _Scale:
    """Turns a window of the committed rules into the window of a time-scaled rendering."""

    time_scale: float

    def __post_init__(self) -> None:
        if not self.time_scale > 0:
            raise ValueError(f"time_scale must be positive, got {self.time_scale!r}")

    def __call__(self, window: str) -> str:
        return format_duration(round(parse_duration(window) * self.time_scale))


# --- Thresholds (the runbook explains each; change them here and regenerate) ------------------


@dataclass(frozen=True)
class MinimumRate:
    """A traffic floor of `count` events per `window`, written as a per-second rate.

    Below it a ratio is a handful of events and flaps. What makes a ratio trustworthy is how many
    events its window holds, so a time-scaled rendering keeps the count and shrinks the window: the
    floor of a 5m window scaled to 15s is still 20 events, now per 15s.
    """

    count: int
    window: str

    def promql(self, scale: _Scale) -> str:
        """The floor as PromQL (`20 / 300`), readable as "20 per 5 minutes"."""
        return f"{self.count} / {round(parse_duration(self.window) * scale.time_scale) / 1000:g}"


@dataclass(frozen=True)
class BurnRateWindow:
    """One alert of a multiwindow, multi-burn-rate pair (Google SRE workbook, chapter 5).

    It fires when both the long and the short window spend the budget more than `factor` times as
    fast as it lasts: the long window makes it significant, the short one lets it resolve soon
    after the problem stops.
    """

    long: str
    short: str
    factor: float
    severity: str
    for_: str


# A ratio needs 20 calls in 5 minutes before it may alert.
MIN_CALLS = MinimumRate(20, "5m")
# Retry-loop suspicion compares means of runs: 10 runs in 30 minutes.
MIN_AGENT_RUNS_30M = MinimumRate(10, "30m")
# A burn-rate alert needs this many runs per short window on average (over its long window): the
# fast pair then serves agents with a run a minute, the slow pairs low-traffic agents too.
MIN_AGENT_RUNS_PER_SHORT_WINDOW = 5
SECONDS_PER_DAY = 86400
SECONDS_PER_HOUR = 3600
TOOL_ERROR_RATIO = 0.10
MODEL_ERROR_RATIO = 0.10
EMPTY_RESPONSE_RATIO = 0.10
TRUNCATION_RATIO = 0.10
# A spike is this many times its own 1-day baseline: a chronically bad tool or model stops paging
# once the baseline has caught up with it.
SPIKE_OVER_BASELINE = 3
RETRY_LOOP_OVER_BASELINE = 3
# Output checks: a failure share that is a tenth and 3 times its own day (like the spikes above).
OUTPUT_CHECK_FAILURE_RATIO = 0.10
# Evaluation scores: the last hour's mean below this share of the last 7 days' mean is quality drift.
EVALUATION_SCORE_DROP = 0.8
MIN_EVALUATIONS = MinimumRate(20, "1h")
REJECTED_SPAN_RATIO = 0.01
FAILED_REQUEST_RATIO = 0.05
# Share of agent runs that may fail over 30 days (a 99% run-success SLO).
AGENT_RUN_FAILURE_BUDGET = 0.01
SLO_PERIOD_DAYS = 30
# Page when 2% (1h) or 5% (6h) of a 30-day failure budget is gone; ticket at 10% (1d, 3d).
AGENT_RUN_BURN_WINDOWS = (
    BurnRateWindow("1h", "5m", 14.4, CRITICAL, "2m"),
    BurnRateWindow("6h", "30m", 6, CRITICAL, "15m"),
    BurnRateWindow("1d", "2h", 3, WARNING, "1h"),
    BurnRateWindow("3d", "6h", 1, WARNING, "3h"),
)
# Daily cost budgets. The page needs the last hour to spend at twice the budget's pace (the budget
# would be gone in 12 hours: a runaway, not a busy afternoon) while the last 5 minutes still do so
# for 15 minutes, so a one-minute blip, which inflates the 1h projection for an hour, never pages.
# The ticket catches a steady overspend: six hours (and the last 30 minutes) above the budget.
COST_BURN_WINDOWS = (
    BurnRateWindow("1h", "5m", 2, CRITICAL, "15m"),
    BurnRateWindow("6h", "30m", 1, WARNING, "1h"),
)
# p95 latency above which an operation is slow, per layer: agent runs take minutes, lookups seconds.
LATENCY_P95_THRESHOLD_SECONDS = {
    catalog.LAYER_MODEL: 30,
    catalog.LAYER_TOOL: 30,
    catalog.LAYER_AGENT: 300,
    catalog.LAYER_RETRIEVAL: 10,
    catalog.LAYER_MEMORY: 10,
    catalog.LAYER_OTHER: 60,
}
QUANTILES = ("0.5", "0.95", "0.99")
LATENCY_QUANTILE = "0.95"
# Windows of the recorded agent-run rates: every window of the burn-rate pairs and the retry check.
AGENT_RUN_WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
COST_WINDOWS = ("30m", "1h", "6h")


# --- PromQL building blocks ---------------------------------------------------------------------

def _eq(label: str, value: str) -> str:
    return f'{label}="{value}"'


def _ne(label: str, value: str) -> str:
    return f'{label}!="{value}"'


def _select(metric: str, *matchers: str) -> str:
    return f"{metric}{{{', '.join(matchers)}}}" if matchers else metric


def _labels(labels: Sequence[str]) -> str:
    return ", ".join(labels)


def _sum_by(labels: Sequence[str], inner: str) -> str:
    return f"sum by ({_labels(labels)}) ({inner})"


def _rate_by(labels: Sequence[str], selector: str, window: str) -> str:
    return _sum_by(labels, f"rate({selector}[{window}])")


def _ratio(level: Sequence[str], numerator: str, denominator: str, window: str) -> str:
    return f"{_rate_by(level, numerator, window)}\n/\n{_rate_by(level, denominator, window)}"


def _guard(level: Sequence[str], volume: str, minimum: MinimumRate, scale: _Scale) -> str:
    """Minimum-traffic guard: `and on (level)` the traffic is at least `minimum` per second."""
    return f"and on ({_labels(level)})\n{volume} >= {minimum.promql(scale)}"


def record_name(level: Sequence[str], metric: str, operations: str) -> str:
    """A `level:metric:operations` name; the level lists the labels the recorded series keeps."""
    return f"{'_'.join(level)}:{metric}:{operations}"


def _count(spec: catalog.MetricSpec) -> str:
    return f"{spec.name}_count"


def _sum(spec: catalog.MetricSpec) -> str:
    return f"{spec.name}_sum"


def _bucket(spec: catalog.MetricSpec) -> str:
    return f"{spec.name}_bucket"


# --- Levels ----------------------------------------------------------------------------------

S = catalog.SERVICE
MODEL_LEVEL = (S, catalog.LAYER, catalog.PROVIDER, catalog.MODEL)
TOOL_LEVEL = (S, catalog.LAYER, catalog.TOOL)
OPERATION_LEVEL = (S, catalog.LAYER, catalog.OPERATION)
AGENT_LEVEL = (S, catalog.AGENT)
CHECK_LEVEL = (S, catalog.CHECK, catalog.MODEL)
EVALUATION_LEVEL = (S, catalog.EVALUATION, catalog.MODEL)
RESPONSE_LEVEL = (S, catalog.PROVIDER, catalog.MODEL)
PRICE_LEVEL = (S, catalog.PROVIDER, catalog.MODEL, catalog.TOKEN_TYPE)
DIMENSION_LEVEL = (S, *DIMENSIONS)
INSTANCE_LEVEL = (JOB, INSTANCE)

# --- Recorded series (stable names: the dashboards read them too) ---------------------------------

_OPERATION_ERRORS = "genai_operation_errors"
_AGENT_RUNS = "genai_agent_runs"
_AGENT_RUN_FAILURES = "genai_agent_run_failures"
_TRUNCATED_RESPONSES = f"{catalog.FINISH_REASONS.family_name}_{catalog.FINISH_REASON_TRUNCATED}"
_OUTPUT_CHECK_FAILURES = f"{catalog.OUTPUT_CHECKS.family_name}_{catalog.RESULT_FAIL}"
_EVALUATIONS_SCORED = f"{catalog.EVALUATION_SCORE.family_name}_count"

TOKENS_RATE5M = record_name(PRICE_LEVEL, catalog.TOKENS.family_name, "rate5m")
TOKENS_BY_DIMENSIONS_RATE5M = record_name(DIMENSION_LEVEL, catalog.TOKENS.family_name, "rate5m")
COST_RATE5M = record_name(PRICE_LEVEL, catalog.COST.family_name, "rate5m")
COST_BY_DIMENSIONS_RATE5M = record_name(DIMENSION_LEVEL, catalog.COST.family_name, "rate5m")
COST_BY_DIMENSIONS_RATE = {
    window: record_name(DIMENSIONS, catalog.COST.family_name, f"rate{window}") for window in COST_WINDOWS}
UNPRICED_TOKENS_RATE1H = record_name(RESPONSE_LEVEL, catalog.UNPRICED_TOKENS.family_name, "rate1h")

OPERATIONS_RATE5M = record_name((*OPERATION_LEVEL, catalog.STATUS), _count(catalog.OPERATION_DURATION), "rate5m")
OPERATION_ERRORS_RATIO5M = record_name(OPERATION_LEVEL, _OPERATION_ERRORS, "ratio_rate5m")
MODEL_CALLS_RATE5M = record_name((*MODEL_LEVEL, catalog.STATUS), _count(catalog.OPERATION_DURATION), "rate5m")
MODEL_ERRORS_RATIO5M = record_name(MODEL_LEVEL, _OPERATION_ERRORS, "ratio_rate5m")
TOOL_CALLS_RATE5M = record_name((*TOOL_LEVEL, catalog.STATUS), _count(catalog.OPERATION_DURATION), "rate5m")
TOOL_ERRORS_RATIO5M = record_name(TOOL_LEVEL, _OPERATION_ERRORS, "ratio_rate5m")
OPERATION_DURATION_BUCKETS_RATE5M = record_name((*OPERATION_LEVEL, BUCKET_BOUND),
                                                _bucket(catalog.OPERATION_DURATION), "rate5m")
OPERATION_DURATION_QUANTILES = record_name((*OPERATION_LEVEL, QUANTILE), catalog.OPERATION_DURATION.name,
                                           "histogram_quantile_rate5m")
TIME_TO_FIRST_TOKEN_QUANTILES = record_name((*RESPONSE_LEVEL, QUANTILE), catalog.TIME_TO_FIRST_TOKEN.name,
                                            "histogram_quantile_rate5m")
TOOL_EMPTY_RESPONSES_RATIO = {
    window: record_name(TOOL_LEVEL, catalog.EMPTY_RESPONSES.family_name, f"ratio_rate{window}")
    for window in ("5m", "1d")
}
MODEL_EMPTY_RESPONSES_RATIO = {
    window: record_name(MODEL_LEVEL, catalog.EMPTY_RESPONSES.family_name, f"ratio_rate{window}")
    for window in ("5m", "1d")
}
RESPONSES_RATE5M = record_name(RESPONSE_LEVEL, catalog.FINISH_REASONS.family_name, "rate5m")
TRUNCATED_RESPONSES_RATIO = {
    window: record_name(RESPONSE_LEVEL, _TRUNCATED_RESPONSES, f"ratio_rate{window}") for window in ("5m", "1d")
}

OUTPUT_CHECKS_RATE5M = record_name(CHECK_LEVEL, catalog.OUTPUT_CHECKS.family_name, "rate5m")
OUTPUT_CHECK_FAILURES_RATIO = {
    window: record_name(CHECK_LEVEL, _OUTPUT_CHECK_FAILURES, f"ratio_rate{window}") for window in ("5m", "1d")
}
EVALUATION_SCORE_MEAN = {
    window: record_name(EVALUATION_LEVEL, catalog.EVALUATION_SCORE.family_name, f"mean{window}")
    for window in ("1h", "7d")
}
EVALUATIONS_SCORED_RATE1H = record_name(EVALUATION_LEVEL, _EVALUATIONS_SCORED, "rate1h")

AGENT_RUNS_RATE = {window: record_name(AGENT_LEVEL, _AGENT_RUNS, f"rate{window}") for window in AGENT_RUN_WINDOWS}
AGENT_RUN_FAILURES_RATIO = {
    window: record_name(AGENT_LEVEL, _AGENT_RUN_FAILURES, f"ratio_rate{window}") for window in AGENT_RUN_WINDOWS
}
AGENT_RUN_MODEL_CALLS_MEAN = {
    window: record_name(AGENT_LEVEL, catalog.AGENT_RUN_MODEL_CALLS.name, f"mean{window}")
    for window in ("30m", "1d")
}

SPANS_RECEIVED_RATE5M = record_name(INSTANCE_LEVEL, catalog.SPANS_RECEIVED.family_name, "rate5m")
SPANS_IGNORED_RATE5M = record_name(INSTANCE_LEVEL, catalog.SPANS_IGNORED.family_name, "rate5m")
SPANS_REJECTED_RATE5M = record_name((*INSTANCE_LEVEL, catalog.REASON), catalog.SPANS_REJECTED.family_name,
                                    "rate5m")
OTLP_REQUESTS_RATE5M = record_name((*INSTANCE_LEVEL, catalog.CODE), catalog.REQUESTS.family_name, "rate5m")
LABEL_OVERFLOW_RATE5M = record_name((*INSTANCE_LEVEL, catalog.LABEL), catalog.LABEL_OVERFLOW.family_name,
                                    "rate5m")

# --- Alert names -----------------------------------------------------------------------------

TOKEN_BUDGET_EXCEEDED = "GenAITokenBudgetExceeded"
COST_BUDGET_BURN = "GenAICostBudgetBurn"
UNPRICED_MODEL_TOKENS = "GenAIUnpricedModelTokens"
MODEL_ERROR_RATE_HIGH = "GenAIModelErrorRateHigh"
TOOL_ERROR_RATE_HIGH = "GenAIToolErrorRateHigh"
OPERATION_LATENCY_HIGH = "GenAIOperationLatencyHigh"
TOOL_EMPTY_RESPONSES_SPIKE = "GenAIToolEmptyResponsesSpike"
MODEL_EMPTY_RESPONSES_SPIKE = "GenAIModelEmptyResponsesSpike"
TRUNCATION_SPIKE = "GenAITruncationSpike"
AGENT_RUN_ERROR_BUDGET_BURN = "GenAIAgentRunErrorBudgetBurn"
AGENT_RETRY_LOOP_SUSPECTED = "GenAIAgentRetryLoopSuspected"
OUTPUT_CHECK_FAILURE_SPIKE = "GenAIOutputCheckFailureSpike"
EVALUATION_SCORE_DROPPED = "GenAIEvaluationScoreDropped"
EXPORTER_DOWN = "GenAIExporterDown"
EXPORTER_NO_SPANS = "GenAIExporterNoSpans"
EXPORTER_REJECTING_SPANS = "GenAIExporterRejectingSpans"
EXPORTER_REQUEST_ERRORS = "GenAIExporterRequestErrors"
EXPORTER_LABEL_OVERFLOW = "GenAIExporterLabelOverflow"
# Alerts about missing data: Alertmanager inhibits them while the exporter itself is down.
NO_DATA_ALERTS = (EXPORTER_NO_SPANS,)
# Alerts about a state rather than a quantity: their value (0) says nothing, their labels do.
STATE_ALERTS = (EXPORTER_DOWN, EXPORTER_NO_SPANS)


# --- Rules -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class RecordingRule:
    """A recorded series: `record` is its name, `labels` are constant labels it adds."""

    record: str
    expr: str
    labels: Mapping[str, str] = field(default_factory=dict)

    def to_yaml(self) -> dict[str, Any]:
        """The rule as Prometheus' rule-file format spells it."""
        rule: dict[str, Any] = {"record": self.record, "expr": self.expr}
        if self.labels:
            rule["labels"] = dict(self.labels)
        return rule


@dataclass(frozen=True)
class AlertRule:
    """An alert with the annotations every genai-exporter alert carries."""

    alert: str
    expr: str
    for_: str
    severity: str
    summary: str
    description: str
    dashboard_url: str
    labels: Mapping[str, str] = field(default_factory=dict)

    def to_yaml(self) -> dict[str, Any]:
        """The rule as Prometheus' rule-file format spells it, runbook link derived from the name."""
        return {
            "alert": self.alert,
            "expr": self.expr,
            "for": self.for_,
            "labels": {SEVERITY: self.severity, **self.labels},
            "annotations": {
                "summary": self.summary,
                "description": self.description,
                "runbook_url": runbook_url(self.alert),
                "dashboard_url": self.dashboard_url,
            },
        }


@dataclass(frozen=True)
class RuleGroup:
    """A Prometheus rule group: its rules run in order, recordings before the alerts that read them."""

    name: str
    rules: tuple[RecordingRule | AlertRule, ...]


def runbook_url(alert: str) -> str:
    """Link to the alert's runbook section; the anchor is the one GitHub derives from the heading."""
    return f"{RUNBOOK_PATH}#{alert.lower()}"


def dashboard_url(uid: str, labels: Sequence[str]) -> str:
    """A Grafana path opening dashboard `uid` filtered to the alert's values of `labels`.

    Only labels the dashboard has a variable for make sense; a label the alert lacks is left out.
    """
    variables = "".join(
        "{{ with $labels." + label + " }}&var-" + label + "={{ . | urlquery }}{{ end }}" for label in labels)
    return f"/d/{uid}?orgId=1{variables}"


def _domain_dashboard(uid: str, alert_labels: Sequence[str]) -> str:
    return dashboard_url(uid, [label for label in DOMAIN_DASHBOARD_FILTERS if label in alert_labels])


def _exporter_dashboard() -> str:
    return dashboard_url(EXPORTER_DASHBOARD, EXPORTER_DASHBOARD_FILTERS)


def _label(name: str) -> str:
    return "{{ $labels." + name + " }}"


def _query(query_format: str, labels: Sequence[str], formatter: str) -> str:
    """Template text showing the value of a query built from the alert's labels (a budget, a baseline)."""
    arguments = " ".join(f"$labels.{label}" for label in labels)
    return ("{{ with printf " + f'"{query_format}" {arguments}' + " | query }}{{ . | first | value | "
            + formatter + " }}{{ end }}")


def _query_selector(metric: str, labels: Sequence[str], fixed: Sequence[str] = ()) -> str:
    """A printf format selecting `metric` by the alert's values of `labels` (and `fixed` matchers)."""
    return _select(metric, *(f"{label}=%q" for label in labels), *fixed).replace('"', '\\"')


_PERCENT = "humanizePercentage"
_HUMAN = "humanize"
_DOLLARS = 'printf "%.2f"'
_VALUE_PERCENT = "{{ $value | humanizePercentage }}"
_VALUE_HUMAN = "{{ $value | humanize }}"
_VALUE_DOLLARS = "${{ $value | " + _DOLLARS + " }}"
# Scores are small numbers where humanize would write 0.45 as 450m.
_SCORE = 'printf "%.2f"'
_VALUE_SCORE = "{{ $value | " + _SCORE + " }}"


def _who(scope: Sequence[str]) -> str:
    """`User tier {{ $labels.user_tier }}, feature {{ $labels.feature }}`: what a budget applies to."""
    text = ", ".join(f"{label.replace('_', ' ')} {_label(label)}" for label in scope)
    return text[0].upper() + text[1:]


def _budget_selector(metric: str, scope: Sequence[str]) -> str:
    """Budgets naming exactly the labels of `scope`: the other dimensions must be absent."""
    return _select(metric, *(_ne(label, "") if label in scope else _eq(label, "") for label in DIMENSIONS))


def _budget_query(metric: str, scope: Sequence[str], formatter: str) -> str:
    absent = [_eq(label, "") for label in DIMENSIONS if label not in scope]
    return _query(f"max({_query_selector(metric, scope, absent)})", scope, formatter)


def _overspends(scope: Sequence[str], cost_rate: str, factor: float, budget: str) -> str:
    """Spend projected to a day from `cost_rate`, above `factor` times the daily budget it joins."""
    times = "" if factor == 1 else f"{factor:g} * "
    return (f"  {_sum_by(scope, cost_rate)} * {SECONDS_PER_DAY}\n"
            f"    > on ({_labels(scope)}) group_left\n  {times}{budget}")


# --- Groups ----------------------------------------------------------------------------------

def _cost_group(scale: _Scale) -> RuleGroup:
    tokens, cost = catalog.TOKENS.name, catalog.COST.name
    token_budget, cost_budget = catalog.BUDGET_TOKENS_PER_SECOND.name, catalog.BUDGET_COST_USD_PER_DAY.name
    five = scale("5m")
    rules: list[RecordingRule | AlertRule] = [
        RecordingRule(TOKENS_RATE5M, _rate_by(PRICE_LEVEL, tokens, five)),
        RecordingRule(TOKENS_BY_DIMENSIONS_RATE5M, _rate_by(DIMENSION_LEVEL, tokens, five)),
        RecordingRule(COST_RATE5M, _rate_by(PRICE_LEVEL, cost, five)),
        RecordingRule(COST_BY_DIMENSIONS_RATE5M, _rate_by(DIMENSION_LEVEL, cost, five)),
        *(RecordingRule(COST_BY_DIMENSIONS_RATE[window], _rate_by(DIMENSIONS, cost, scale(window)))
          for window in COST_WINDOWS),
        RecordingRule(UNPRICED_TOKENS_RATE1H, _rate_by(RESPONSE_LEVEL, catalog.UNPRICED_TOKENS.name, scale("1h"))),
    ]

    # Budgets are scraped from every exporter replica: `max by` folds the copies into one series.
    for scope in BUDGET_SCOPES:
        budget = f"max by ({_labels(scope)}) ({_budget_selector(token_budget, scope)})"
        rules.append(AlertRule(
            alert=TOKEN_BUDGET_EXCEEDED,
            expr=(f"{_sum_by(scope, TOKENS_BY_DIMENSIONS_RATE5M)}\n"
                  f"  > on ({_labels(scope)}) group_left\n{budget}"),
            for_=scale("5m"),
            severity=WARNING,
            labels={BUDGET_BY: ",".join(scope)},
            summary="Token usage is above its budget.",
            description=(
                f"{_who(scope)} used {_VALUE_HUMAN} tokens/s over the last {five}, above its budget of "
                f"{_budget_query(token_budget, scope, _HUMAN)} tokens/s."),
            dashboard_url=_domain_dashboard(COST_DASHBOARD, scope),
        ))

    short_rates = {"5m": COST_BY_DIMENSIONS_RATE5M, **COST_BY_DIMENSIONS_RATE}
    for scope in BUDGET_SCOPES:
        budget = f"max by ({_labels(scope)}) ({_budget_selector(cost_budget, scope)})"
        for window in COST_BURN_WINDOWS:
            pace = "above its budget" if window.factor == 1 else f"more than {window.factor:g} times its budget"
            rules.append(AlertRule(
                alert=COST_BUDGET_BURN,
                expr=(f"(\n{_overspends(scope, COST_BY_DIMENSIONS_RATE[window.long], window.factor, budget)}\n)\n"
                      f"and\n(\n{_overspends(scope, short_rates[window.short], window.factor, budget)}\n)"),
                for_=scale(window.for_),
                severity=window.severity,
                labels={BUDGET_BY: ",".join(scope), LONG_WINDOW: scale(window.long),
                        SHORT_WINDOW: scale(window.short)},
                summary="Spending is on course to overrun its daily cost budget.",
                description=(
                    f"{_who(scope)} is on course to spend {_VALUE_DOLLARS} a day at the pace of the last "
                    f"{scale(window.long)} (the last {scale(window.short)} agrees), {pace} of "
                    f"${_budget_query(cost_budget, scope, _DOLLARS)} a day."),
                dashboard_url=_domain_dashboard(COST_DASHBOARD, scope),
            ))

    rules.append(AlertRule(
        alert=UNPRICED_MODEL_TOKENS,
        expr=f"{UNPRICED_TOKENS_RATE1H} * {SECONDS_PER_HOUR} > 0",
        for_=scale("15m"),
        severity=WARNING,
        summary="A model without a price is in use: its cost is missing from the cost metrics.",
        description=(
            f"Service {_label(S)} used {_VALUE_HUMAN} tokens an hour of model {_label(catalog.MODEL)} "
            f"(provider {_label(catalog.PROVIDER)}) over the last {scale('1h')}, and the price table has no "
            f"price for that model: {cost} leaves them out."),
        dashboard_url=_domain_dashboard(COST_DASHBOARD, RESPONSE_LEVEL),
    ))
    return RuleGroup("genai-cost", tuple(rules))


def _reliability_group(scale: _Scale) -> RuleGroup:
    count = _count(catalog.OPERATION_DURATION)
    layer_model = _eq(catalog.LAYER, catalog.LAYER_MODEL)
    layer_tool = _eq(catalog.LAYER, catalog.LAYER_TOOL)
    status_error = _eq(catalog.STATUS, catalog.STATUS_ERROR)
    status_ok = _eq(catalog.STATUS, catalog.STATUS_OK)
    five = scale("5m")

    def error_ratio(level: Sequence[str], calls: str) -> str:
        return f"{_sum_by(level, _select(calls, status_error))}\n/\n{_sum_by(level, calls)}"

    rules: list[RecordingRule | AlertRule] = [
        RecordingRule(OPERATIONS_RATE5M, _rate_by((*OPERATION_LEVEL, catalog.STATUS), count, five)),
        RecordingRule(OPERATION_ERRORS_RATIO5M, error_ratio(OPERATION_LEVEL, OPERATIONS_RATE5M)),
        RecordingRule(MODEL_CALLS_RATE5M, _rate_by((*MODEL_LEVEL, catalog.STATUS), _select(count, layer_model), five)),
        RecordingRule(MODEL_ERRORS_RATIO5M, error_ratio(MODEL_LEVEL, MODEL_CALLS_RATE5M)),
        RecordingRule(TOOL_CALLS_RATE5M, _rate_by((*TOOL_LEVEL, catalog.STATUS), _select(count, layer_tool), five)),
        RecordingRule(TOOL_ERRORS_RATIO5M, error_ratio(TOOL_LEVEL, TOOL_CALLS_RATE5M)),
        RecordingRule(OPERATION_DURATION_BUCKETS_RATE5M,
                      _rate_by((*OPERATION_LEVEL, BUCKET_BOUND), _bucket(catalog.OPERATION_DURATION), five)),
        *(RecordingRule(OPERATION_DURATION_QUANTILES,
                        f"histogram_quantile({quantile}, {OPERATION_DURATION_BUCKETS_RATE5M})", {QUANTILE: quantile})
          for quantile in QUANTILES),
        *(RecordingRule(TIME_TO_FIRST_TOKEN_QUANTILES,
                        f"histogram_quantile({quantile}, "
                        f"{_rate_by((*RESPONSE_LEVEL, BUCKET_BOUND), _bucket(catalog.TIME_TO_FIRST_TOKEN), five)})",
                        {QUANTILE: quantile})
          for quantile in QUANTILES),
        # Empty responses count only successful calls, so successful calls are the denominator.
        *(RecordingRule(TOOL_EMPTY_RESPONSES_RATIO[window],
                        _ratio(TOOL_LEVEL, _select(catalog.EMPTY_RESPONSES.name, layer_tool),
                               _select(count, layer_tool, status_ok), scale(window)))
          for window in TOOL_EMPTY_RESPONSES_RATIO),
        *(RecordingRule(MODEL_EMPTY_RESPONSES_RATIO[window],
                        _ratio(MODEL_LEVEL, _select(catalog.EMPTY_RESPONSES.name, layer_model),
                               _select(count, layer_model, status_ok), scale(window)))
          for window in MODEL_EMPTY_RESPONSES_RATIO),
        RecordingRule(RESPONSES_RATE5M, _rate_by(RESPONSE_LEVEL, catalog.FINISH_REASONS.name, five)),
        *(RecordingRule(TRUNCATED_RESPONSES_RATIO[window],
                        _ratio(RESPONSE_LEVEL,
                               _select(catalog.FINISH_REASONS.name,
                                       _eq(catalog.FINISH_REASON, catalog.FINISH_REASON_TRUNCATED)),
                               catalog.FINISH_REASONS.name, scale(window)))
          for window in TRUNCATED_RESPONSES_RATIO),
    ]

    rules.append(AlertRule(
        alert=MODEL_ERROR_RATE_HIGH,
        expr=(f"{MODEL_ERRORS_RATIO5M} > {MODEL_ERROR_RATIO}\n"
              + _guard(MODEL_LEVEL, _sum_by(MODEL_LEVEL, MODEL_CALLS_RATE5M), MIN_CALLS, scale)),
        for_=scale("5m"),
        severity=CRITICAL,
        summary="Calls to a model are failing: the provider may be down or rate limiting.",
        description=(
            f"{_VALUE_PERCENT} of the calls of service {_label(S)} to model {_label(catalog.MODEL)} (provider "
            f"{_label(catalog.PROVIDER)}) failed over the last {five}."),
        dashboard_url=_domain_dashboard(RELIABILITY_DASHBOARD, MODEL_LEVEL),
    ))
    rules.append(AlertRule(
        alert=TOOL_ERROR_RATE_HIGH,
        expr=(f"{TOOL_ERRORS_RATIO5M} > {TOOL_ERROR_RATIO}\n"
              + _guard(TOOL_LEVEL, _sum_by(TOOL_LEVEL, TOOL_CALLS_RATE5M), MIN_CALLS, scale)),
        for_=scale("10m"),
        severity=WARNING,
        summary="A tool fails on many of its calls.",
        description=(
            f"{_VALUE_PERCENT} of the calls of service {_label(S)} to tool {_label(catalog.TOOL)} failed over "
            f"the last {five}."),
        dashboard_url=_domain_dashboard(RELIABILITY_DASHBOARD, TOOL_LEVEL),
    ))
    for layer, threshold in LATENCY_P95_THRESHOLD_SECONDS.items():
        p95 = _select(OPERATION_DURATION_QUANTILES, _eq(QUANTILE, LATENCY_QUANTILE), _eq(catalog.LAYER, layer))
        rules.append(AlertRule(
            alert=OPERATION_LATENCY_HIGH,
            expr=(f"{p95} > {threshold}\n"
                  + _guard(OPERATION_LEVEL, _sum_by(OPERATION_LEVEL, OPERATIONS_RATE5M), MIN_CALLS, scale)),
            for_=scale("15m"),
            severity=WARNING,
            labels={catalog.LAYER: layer},
            summary="An operation is slow: its p95 latency is above the threshold of its layer.",
            description=(
                f"p95 latency of {_label(catalog.OPERATION)} ({_label(catalog.LAYER)} layer) in service {_label(S)} "
                f"is {{{{ $value | humanizeDuration }}}} over the last {five}, above {threshold}s."),
            dashboard_url=_domain_dashboard(RELIABILITY_DASHBOARD, OPERATION_LEVEL),
        ))
    rules.append(_spike_alert(
        scale, TOOL_EMPTY_RESPONSES_SPIKE, TOOL_EMPTY_RESPONSES_RATIO, TOOL_LEVEL, EMPTY_RESPONSE_RATIO,
        _sum_by(TOOL_LEVEL, _select(TOOL_CALLS_RATE5M, status_ok)),
        summary="A tool returns empty results far more often than usual.",
        what=f"of the successful calls of service {_label(S)} to tool {_label(catalog.TOOL)} returned an empty result",
    ))
    rules.append(_spike_alert(
        scale, MODEL_EMPTY_RESPONSES_SPIKE, MODEL_EMPTY_RESPONSES_RATIO, MODEL_LEVEL, EMPTY_RESPONSE_RATIO,
        _sum_by(MODEL_LEVEL, _select(MODEL_CALLS_RATE5M, status_ok)),
        summary="A model returns empty responses far more often than usual.",
        what=(f"of the successful calls of service {_label(S)} to model {_label(catalog.MODEL)} (provider "
              f"{_label(catalog.PROVIDER)}) returned an empty response"),
    ))
    rules.append(_spike_alert(
        scale, TRUNCATION_SPIKE, TRUNCATED_RESPONSES_RATIO, RESPONSE_LEVEL, TRUNCATION_RATIO, RESPONSES_RATE5M,
        summary="A model stops at its output token limit far more often than usual.",
        what=(f"of the responses of model {_label(catalog.MODEL)} (provider {_label(catalog.PROVIDER)}) to service "
              f'{_label(S)} were cut off at the token limit (finish_reason "{catalog.FINISH_REASON_TRUNCATED}")'),
    ))
    return RuleGroup("genai-reliability", tuple(rules))


def _spike_alert(scale: _Scale, name: str, ratios: Mapping[str, str], level: Sequence[str], ratio: float,
                 volume: str, *, summary: str, what: str) -> AlertRule:
    """A ratio well above its own 1-day baseline: absolute floor, relative jump and traffic guard."""
    recent, baseline = ratios["5m"], ratios["1d"]
    return AlertRule(
        alert=name,
        expr=(f"{recent} > {ratio}\nand\n{recent} > {SPIKE_OVER_BASELINE} * {baseline}\n"
              + _guard(level, volume, MIN_CALLS, scale)),
        for_=scale("10m"),
        severity=WARNING,
        summary=summary,
        description=(
            f"{_VALUE_PERCENT} {what} over the last {scale('5m')}, more than {SPIKE_OVER_BASELINE} times its "
            f"{scale('1d')} baseline of {_query(_query_selector(baseline, level), level, _PERCENT)}."),
        dashboard_url=_domain_dashboard(RELIABILITY_DASHBOARD, level),
    )


def _quality_group(scale: _Scale) -> RuleGroup:
    checks = catalog.OUTPUT_CHECKS.name
    failed = _select(checks, _eq(catalog.RESULT, catalog.RESULT_FAIL))
    score = catalog.EVALUATION_SCORE
    rules: list[RecordingRule | AlertRule] = [
        RecordingRule(OUTPUT_CHECKS_RATE5M, _rate_by(CHECK_LEVEL, checks, scale("5m"))),
        *(RecordingRule(OUTPUT_CHECK_FAILURES_RATIO[window], _ratio(CHECK_LEVEL, failed, checks, scale(window)))
          for window in OUTPUT_CHECK_FAILURES_RATIO),
        *(RecordingRule(EVALUATION_SCORE_MEAN[window], _ratio(EVALUATION_LEVEL, _sum(score), _count(score),
                                                              scale(window)))
          for window in EVALUATION_SCORE_MEAN),
        RecordingRule(EVALUATIONS_SCORED_RATE1H, _rate_by(EVALUATION_LEVEL, _count(score), scale("1h"))),
        _spike_alert(
            scale, OUTPUT_CHECK_FAILURE_SPIKE, OUTPUT_CHECK_FAILURES_RATIO, CHECK_LEVEL, OUTPUT_CHECK_FAILURE_RATIO,
            OUTPUT_CHECKS_RATE5M,
            summary="Outputs fail a deterministic check far more often than usual.",
            what=(f"of the outputs of model {_label(catalog.MODEL)} in service {_label(S)} failed the check "
                  f"{_label(catalog.CHECK)}"),
        ),
    ]
    recent, usual = EVALUATION_SCORE_MEAN["1h"], EVALUATION_SCORE_MEAN["7d"]
    rules.append(AlertRule(
        alert=EVALUATION_SCORE_DROPPED,
        expr=(f"{recent}\n  < {EVALUATION_SCORE_DROP} * {usual}\n"
              + _guard(EVALUATION_LEVEL, EVALUATIONS_SCORED_RATE1H, MIN_EVALUATIONS, scale)),
        for_=scale("30m"),
        severity=WARNING,
        summary="Evaluators score a model's answers well below their usual level.",
        description=(
            f"The mean {_label(catalog.EVALUATION)} score of model {_label(catalog.MODEL)} in service {_label(S)} "
            f"was {_VALUE_SCORE} over the last {scale('1h')}, below {EVALUATION_SCORE_DROP:.0%} of its "
            f"{scale('7d')} mean of {_query(_query_selector(usual, EVALUATION_LEVEL), EVALUATION_LEVEL, _SCORE)}."),
        dashboard_url=_domain_dashboard(RELIABILITY_DASHBOARD, EVALUATION_LEVEL),
    ))
    return RuleGroup("genai-quality", tuple(rules))


def _agents_group(scale: _Scale) -> RuleGroup:
    count = _count(catalog.OPERATION_DURATION)
    runs = _select(count, _eq(catalog.LAYER, catalog.LAYER_AGENT), _eq(catalog.OPERATION, semconv.OP_INVOKE_AGENT))
    failed_runs = _select(count, _eq(catalog.LAYER, catalog.LAYER_AGENT),
                          _eq(catalog.OPERATION, semconv.OP_INVOKE_AGENT), _eq(catalog.STATUS, catalog.STATUS_ERROR))
    model_calls = catalog.AGENT_RUN_MODEL_CALLS
    rules: list[RecordingRule | AlertRule] = [
        *(RecordingRule(AGENT_RUNS_RATE[window], _rate_by(AGENT_LEVEL, runs, scale(window)))
          for window in AGENT_RUN_WINDOWS),
        # A run fails when its invoke_agent span ends in error (semconv sets error.type on it).
        *(RecordingRule(AGENT_RUN_FAILURES_RATIO[window],
                        f"{_rate_by(AGENT_LEVEL, failed_runs, scale(window))}\n/\n{AGENT_RUNS_RATE[window]}")
          for window in AGENT_RUN_WINDOWS),
        *(RecordingRule(AGENT_RUN_MODEL_CALLS_MEAN[window],
                        _ratio(AGENT_LEVEL, _sum(model_calls), _count(model_calls), scale(window)))
          for window in AGENT_RUN_MODEL_CALLS_MEAN),
    ]
    slo = f"{1 - AGENT_RUN_FAILURE_BUDGET:.0%}"
    for window in AGENT_RUN_BURN_WINDOWS:
        threshold = f"({window.factor:g} * {AGENT_RUN_FAILURE_BUDGET:g})"
        minimum = MinimumRate(MIN_AGENT_RUNS_PER_SHORT_WINDOW, window.short)
        pace = "the sustainable rate" if window.factor == 1 else f"{window.factor:g} times the sustainable rate"
        lasts = SLO_PERIOD_DAYS / window.factor
        rules.append(AlertRule(
            alert=AGENT_RUN_ERROR_BUDGET_BURN,
            expr=(f"{AGENT_RUN_FAILURES_RATIO[window.long]} > {threshold}\n"
                  f"and\n{AGENT_RUN_FAILURES_RATIO[window.short]} > {threshold}\n"
                  + _guard(AGENT_LEVEL, AGENT_RUNS_RATE[window.long], minimum, scale)),
            for_=scale(window.for_),
            severity=window.severity,
            labels={LONG_WINDOW: scale(window.long), SHORT_WINDOW: scale(window.short)},
            summary="An agent fails so many runs that it is burning through its failure budget.",
            description=(
                f"{_VALUE_PERCENT} of the runs of agent {_label(catalog.AGENT)} (service {_label(S)}) failed over the "
                f"last {scale(window.long)}, and the last {scale(window.short)} agrees: it spends the failure budget "
                f"of the {slo} run-success SLO at more than {pace}, and the {SLO_PERIOD_DAYS}-day budget is gone "
                f"in under {lasts:.3g} days."),
            dashboard_url=_domain_dashboard(RELIABILITY_DASHBOARD, AGENT_LEVEL),
        ))
    recent, baseline = AGENT_RUN_MODEL_CALLS_MEAN["30m"], AGENT_RUN_MODEL_CALLS_MEAN["1d"]
    rules.append(AlertRule(
        alert=AGENT_RETRY_LOOP_SUSPECTED,
        expr=(f"{recent} > {RETRY_LOOP_OVER_BASELINE} * {baseline}\n"
              + _guard(AGENT_LEVEL, AGENT_RUNS_RATE["30m"], MIN_AGENT_RUNS_30M, scale)),
        for_=scale("15m"),
        severity=WARNING,
        summary="Agent runs make far more model calls than usual: a run may be stuck in a retry loop.",
        description=(
            f"Runs of agent {_label(catalog.AGENT)} (service {_label(S)}) made {_VALUE_HUMAN} model calls each on "
            f"average over the last {scale('30m')}, more than {RETRY_LOOP_OVER_BASELINE} times their {scale('1d')} "
            f"average of {_query(_query_selector(baseline, AGENT_LEVEL), AGENT_LEVEL, _HUMAN)}."),
        dashboard_url=_domain_dashboard(RELIABILITY_DASHBOARD, AGENT_LEVEL),
    ))
    return RuleGroup("genai-agents", tuple(rules))


def _exporter_group(scale: _Scale) -> RuleGroup:
    five = scale("5m")
    up = _select(UP, _eq(JOB, EXPORTER_JOB))
    requests_by_instance = _sum_by(INSTANCE_LEVEL, OTLP_REQUESTS_RATE5M)
    failed_requests = f'{catalog.CODE}!~"2.."'
    overflows = f"increase({catalog.LABEL_OVERFLOW.name}[{scale('1h')}])"
    # The 5m rate must stay 0 for `for:`: no span for the window plus the wait.
    no_spans_for = "15m"
    silence = format_duration(parse_duration("5m") + parse_duration(no_spans_for))
    rules: list[RecordingRule | AlertRule] = [
        RecordingRule(SPANS_RECEIVED_RATE5M, _rate_by(INSTANCE_LEVEL, catalog.SPANS_RECEIVED.name, five)),
        RecordingRule(SPANS_IGNORED_RATE5M, _rate_by(INSTANCE_LEVEL, catalog.SPANS_IGNORED.name, five)),
        RecordingRule(SPANS_REJECTED_RATE5M,
                      _rate_by((*INSTANCE_LEVEL, catalog.REASON), catalog.SPANS_REJECTED.name, five)),
        RecordingRule(OTLP_REQUESTS_RATE5M, _rate_by((*INSTANCE_LEVEL, catalog.CODE), catalog.REQUESTS.name, five)),
        RecordingRule(LABEL_OVERFLOW_RATE5M,
                      _rate_by((*INSTANCE_LEVEL, catalog.LABEL), catalog.LABEL_OVERFLOW.name, five)),
        AlertRule(
            alert=EXPORTER_DOWN,
            # absent() also covers a target that vanished from service discovery altogether.
            expr=f"{up} == 0\nor\nabsent({up})",
            for_=scale("5m"),
            severity=CRITICAL,
            summary="Prometheus cannot scrape genai-exporter: GenAI metrics and alerts are blind.",
            description=(
                "{{ if $labels.instance }}The genai-exporter target {{ $labels.instance }} of job "
                "{{ $labels.job }} is down{{ else }}No target of job {{ $labels.job }} is scraped{{ end }}; "
                "every GenAI cost and reliability alert is blind until it is back."),
            dashboard_url=_exporter_dashboard(),
        ),
        AlertRule(
            alert=EXPORTER_NO_SPANS,
            expr=f"{SPANS_RECEIVED_RATE5M} == 0",
            for_=scale(no_spans_for),
            severity=WARNING,
            summary="No spans reach genai-exporter: the agents' telemetry is lost on its way.",
            description=(
                f"genai-exporter {_label(INSTANCE)} (job {_label(JOB)}) has received no span for "
                f"{scale(silence)}: the applications, their OpenTelemetry exporters or the collector in front "
                "stopped sending."),
            dashboard_url=_exporter_dashboard(),
        ),
        AlertRule(
            alert=EXPORTER_REJECTING_SPANS,
            expr=(f"{SPANS_REJECTED_RATE5M}\n  / on ({_labels(INSTANCE_LEVEL)}) group_left\n{SPANS_RECEIVED_RATE5M}\n"
                  f"  > {REJECTED_SPAN_RATIO}\n"
                  + _guard(INSTANCE_LEVEL, SPANS_RECEIVED_RATE5M, MIN_CALLS, scale)),
            for_=scale("15m"),
            severity=WARNING,
            summary="Spans are rejected as invalid: their tokens and costs are not counted.",
            description=(
                f"genai-exporter {_label(INSTANCE)} (job {_label(JOB)}) rejected {_VALUE_PERCENT} of the spans it "
                f"received over the last {five} as {_label(catalog.REASON)}."),
            dashboard_url=_exporter_dashboard(),
        ),
        AlertRule(
            alert=EXPORTER_REQUEST_ERRORS,
            expr=(f"{_sum_by(INSTANCE_LEVEL, _select(OTLP_REQUESTS_RATE5M, failed_requests))}"
                  f"\n/\n{requests_by_instance}\n  > {FAILED_REQUEST_RATIO}\n"
                  + _guard(INSTANCE_LEVEL, requests_by_instance, MIN_CALLS, scale)),
            for_=scale("15m"),
            severity=WARNING,
            summary="OTLP export requests to genai-exporter fail: whole batches of spans are lost.",
            description=(
                f"genai-exporter {_label(INSTANCE)} (job {_label(JOB)}) answered {_VALUE_PERCENT} of the OTLP "
                f"export requests of the last {five} with a non-2xx status."),
            dashboard_url=_exporter_dashboard(),
        ),
        AlertRule(
            alert=EXPORTER_LABEL_OVERFLOW,
            expr=f"{_sum_by((*INSTANCE_LEVEL, catalog.LABEL), overflows)} > 0",
            for_=scale("15m"),
            severity=WARNING,
            summary="A label reached its distinct-value cap: new values are folded into __overflow__.",
            description=(
                f"genai-exporter {_label(INSTANCE)} (job {_label(JOB)}) folded {_VALUE_HUMAN} observations of label "
                f"{_label(catalog.LABEL)} into the value \"{catalog.OVERFLOW_VALUE}\" over the last {scale('1h')}: "
                "per-value detail of that label is lost (totals stay exact)."),
            dashboard_url=_exporter_dashboard(),
        ),
    ]
    return RuleGroup("genai-exporter", tuple(rules))


def build_groups(time_scale: float = 1.0) -> tuple[RuleGroup, ...]:
    """Every rule group, with windows and `for:` durations multiplied by `time_scale`."""
    scale = _Scale(time_scale)
    return (_cost_group(scale), _reliability_group(scale), _quality_group(scale), _agents_group(scale),
            _exporter_group(scale))


class _RuleFileDumper(yaml.SafeDumper):
    """Writes multi-line expressions as literal blocks, so the file reads like hand-written rules."""


def _represent_str(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_RuleFileDumper.add_representer(str, _represent_str)

_HEADER = (
    "# Generated by `python -m alerts.rules` from alerts/rules.py: do not edit by hand.\n"
    "# Alerting and recording rules of genai-exporter; runbook: alerts/runbook.md; tests: alerts/tests/.\n"
)


def render_rules(time_scale: float = 1.0) -> str:
    """The rule file's text: deterministic, so the committed file can be checked for staleness."""
    document = {"groups": [
        {"name": group.name, "rules": [rule.to_yaml() for rule in group.rules]} for group in build_groups(time_scale)
    ]}
    return _HEADER + yaml.dump(document, Dumper=_RuleFileDumper, sort_keys=False, width=10_000,
                               allow_unicode=True)


RECORDING_RULES = tuple(dict.fromkeys(
    rule.record for group in build_groups() for rule in group.rules if isinstance(rule, RecordingRule)))
ALERTS = tuple(dict.fromkeys(
    rule.alert for group in build_groups() for rule in group.rules if isinstance(rule, AlertRule)))


def main(argv: Sequence[str] | None = None) -> None:
    """Regenerate the committed rule file (or a time-scaled copy for end-to-end tests)."""
    parser = argparse.ArgumentParser(prog="python -m alerts.rules", description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=RULE_FILE, help="file to write (default: %(default)s)")
    parser.add_argument("--time-scale", type=float, default=1.0,
                        help="multiply every for: and range window by this factor (default: 1)")
    arguments = parser.parse_args(argv)
    arguments.output.write_text(render_rules(arguments.time_scale), encoding="utf-8")


if __name__ == "__main__":
    main()
