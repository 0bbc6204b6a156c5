"""PromQL and TraceQL of the dashboards, built from the metric catalogue.

Metric and label names come from `genai_exporter.catalog` and span attribute names from
`genai_exporter.semconv`, so renaming a metric breaks the build (and the tests) instead of
silently emptying a panel. Queries use Grafana's variables: `$__rate_interval` for rates over
time, `$__range` for totals over the dashboard's time range, and one filter variable per filter
label, named after the label (`$service`, `$model`, `$user_tier`, ...).

They read the exporter's series, not the recording rules of `alerts.rules`, although some rules
compute the same thing: a rule fixes its window (5m, where `$__rate_interval` follows the zoom) and
its labels (the dimension filters need labels the rules drop), recorded series carry no exemplars,
and a dashboard imported elsewhere must work without our rule file loaded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import combinations

from genai_exporter import catalog, config, semconv
from genai_exporter.catalog import MetricSpec

RATE_INTERVAL = "$__rate_interval"
RANGE = "$__range"

# Labels and series that Prometheus itself adds: the exporter never sets them, so they are not in
# the catalogue.
BUCKET_LABEL = "le"
JOB_LABEL = "job"
INSTANCE_LABEL = "instance"
METRIC_NAME_LABEL = "__name__"
UP = "up"
SCRAPE_DURATION = "scrape_duration_seconds"
SCRAPE_SAMPLES = "scrape_samples_scraped"
PROMETHEUS_SERIES = frozenset({UP, SCRAPE_DURATION, SCRAPE_SAMPLES})
SCRAPE_LABELS = frozenset({JOB_LABEL, INSTANCE_LABEL})
# Series of prometheus_client's ProcessCollector, which `genai-exporter serve` registers.
PROCESS_RESIDENT_MEMORY = "process_resident_memory_bytes"
PROCESS_CPU_SECONDS = "process_cpu_seconds_total"
PROCESS_SERIES = frozenset({PROCESS_RESIDENT_MEMORY, PROCESS_CPU_SECONDS})

# Suffixes of the sample names of a histogram family (checked against catalog.series_names).
BUCKET = "_bucket"
COUNT = "_count"

# The label Loki gives an OTLP log record's service.name resource attribute.
LOKI_SERVICE_LABEL = "service_name"

SECONDS_PER_HOUR = 3600
SECONDS_PER_DAY = 86400
PROJECTION_DAYS = 30
TOP_N = 10


def matcher(label: str, operator: str, value: str) -> str:
    """One PromQL label matcher, e.g. `status="error"`."""
    return f'{label}{operator}"{value}"'


def equals(label: str, value: str) -> str:
    """An exact-match label matcher."""
    return matcher(label, "=", value)


def selector(name: str, *matchers: str) -> str:
    """`name{matchers}`, or the bare name without matchers."""
    return f"{name}{{{', '.join(matchers)}}}" if matchers else name


def variable_filter(label: str) -> str:
    """Matcher that filters a label by the dashboard variable of the same name (regex: All, multi)."""
    return matcher(label, "=~", f"${label}")


# Labels always empty on a layer's series: a tool call has no provider or model, so the provider
# and model filters would only hide tools once a model is chosen.
LABELS_ABSENT_BY_LAYER = {catalog.LAYER_TOOL: frozenset({catalog.PROVIDER, catalog.MODEL})}


def _series(spec: MetricSpec, suffix: str) -> str:
    name = f"{spec.name}{suffix}"
    if name not in catalog.series_names(spec):
        raise ValueError(f"{spec.name} exposes no series {name}")
    return name


def rate(selector: str, window: str = RATE_INTERVAL) -> str:
    """Per-second rate of a counter selector over `window`."""
    return f"rate({selector}[{window}])"


def increase(selector: str, window: str = RANGE) -> str:
    """Increase of a counter selector over `window` (the dashboard's range by default)."""
    return f"increase({selector}[{window}])"


def aggregate(labels: Sequence[str], expr: str, operator: str = "sum") -> str:
    """`sum by (labels) (expr)`, or `sum(expr)` without labels."""
    if not labels:
        return f"{operator}({expr})"
    return f"{operator} by ({', '.join(labels)}) ({expr})"


@dataclass(frozen=True)
class Scope:
    """What the dashboards of one deployment filter and group by: built-in labels and dimensions.

    The dimensions are the exporter's configured dimension labels (user tier, feature, ...);
    dashboards for another configuration are built from another Scope.
    """

    dimensions: tuple[str, ...]

    @property
    def filter_labels(self) -> tuple[str, ...]:
        """Labels with a dashboard variable that filters every domain panel."""
        return (catalog.SERVICE, catalog.PROVIDER, catalog.MODEL, *self.dimensions)

    def labels_of(self, spec: MetricSpec) -> frozenset[str]:
        """Labels the exporter puts on a family (without the job/instance Prometheus adds)."""
        if spec.domain:
            return frozenset((catalog.SERVICE, *spec.labels, *self.dimensions))
        if spec in catalog.BUDGET_METRICS:
            return frozenset(self.dimensions)
        return frozenset(spec.labels)

    def select(self, spec: MetricSpec, *matchers: str, suffix: str = "",
               only: Sequence[str] | None = None) -> str:
        """Selector of a domain family, filtered by every dashboard variable it has a label for.

        `only` restricts the variable filters (budget panels ignore service, provider and model:
        a budget covers all of a dimension's usage); a layer's absent labels are not filtered.
        """
        labels = self.labels_of(spec)
        for layer, absent in LABELS_ABSENT_BY_LAYER.items():
            if equals(catalog.LAYER, layer) in matchers:
                labels -= absent
        wanted = self.filter_labels if only is None else only
        filters = [variable_filter(label) for label in wanted if label in labels]
        name = _series(spec, suffix) if suffix else spec.name
        return selector(name, *filters, *matchers)

    # --- Cost --------------------------------------------------------------------------------

    def spend_per_hour(self, by: Sequence[str] = ()) -> str:
        """Spend rate in USD per hour."""
        return f"{aggregate(by, rate(self.select(catalog.COST)))} * {SECONDS_PER_HOUR}"

    def spend_over_range(self, by: Sequence[str] = ()) -> str:
        """USD spent over the dashboard's range."""
        return aggregate(by, increase(self.select(catalog.COST)))

    def projected_spend(self) -> str:
        """30 days at the average spend rate of the dashboard's range: a range long enough to
        include the weekly cycle (7d) gives the fairest projection."""
        return (f"{aggregate((), rate(self.select(catalog.COST), RANGE))}"
                f" * {SECONDS_PER_DAY * PROJECTION_DAYS}")

    def top_spenders(self) -> str:
        """The service and dimension combinations that spent most over the range."""
        spend = self.spend_over_range(by=(catalog.SERVICE, *self.dimensions))
        return f"topk({TOP_N}, {spend})"

    def tokens_per_second(self, by: Sequence[str]) -> str:
        """Billed tokens per second."""
        return aggregate(by, rate(self.select(catalog.TOKENS)))

    def tokens_over_range(self) -> str:
        """Billed tokens over the dashboard's range."""
        return aggregate((), increase(self.select(catalog.TOKENS)))

    def cache_savings_per_hour(self, by: Sequence[str] = (catalog.PROVIDER, catalog.MODEL)) -> str:
        """What prompt caching saved, in USD per hour (the exporter prices each call's saving)."""
        return f"{aggregate(by, rate(self.select(catalog.CACHE_SAVINGS)))} * {SECONDS_PER_HOUR}"

    def cache_savings_over_range(self) -> str:
        """What prompt caching saved over the dashboard's range, in USD."""
        return aggregate((), increase(self.select(catalog.CACHE_SAVINGS)))

    def unpriced_tokens_over_range(self) -> str:
        """Tokens of models without a price over the range."""
        return aggregate((), increase(self.select(catalog.UNPRICED_TOKENS)))

    def unpriced_tokens_per_second(self) -> str:
        """Tokens per second of models without a price, per model."""
        return aggregate((catalog.PROVIDER, catalog.MODEL), rate(self.select(catalog.UNPRICED_TOKENS)))

    def budget_label_sets(self) -> list[tuple[str, ...]]:
        """Every combination of dimension labels a budget can be defined on."""
        dims = self.dimensions
        return [combo for size in range(1, len(dims) + 1) for combo in combinations(dims, size)]

    def budget(self, spec: MetricSpec, labels: Sequence[str]) -> str:
        """Budget series defined on exactly `labels`: its other dimension labels are absent, so a
        budget on user_tier alone is not mistaken for one on user_tier and feature."""
        matchers: list[str] = []
        for dimension in self.dimensions:
            if dimension in labels:
                matchers += [matcher(dimension, "!=", ""), variable_filter(dimension)]
            else:
                matchers.append(equals(dimension, ""))
        return aggregate(labels, f"{spec.name}{{{', '.join(matchers)}}}", operator="max")

    def token_budget_utilisation(self, labels: Sequence[str]) -> str:
        """Token rate as a fraction of the tokens-per-second budget on `labels`. Usage is filtered
        only by the budget's own labels: a budget on user_tier covers every feature's tokens."""
        usage = aggregate(labels, rate(self.select(catalog.TOKENS, only=labels)))
        budget = self.budget(catalog.BUDGET_TOKENS_PER_SECOND, labels)
        return f"{usage} / on ({', '.join(labels)}) {budget}"

    def cost_budget_utilisation(self, labels: Sequence[str]) -> str:
        """Spend rate (USD per day) as a fraction of the cost-per-day budget on `labels`, usage
        filtered only by the budget's own labels."""
        usage = aggregate(labels, rate(self.select(catalog.COST, only=labels)))
        budget = self.budget(catalog.BUDGET_COST_USD_PER_DAY, labels)
        return f"{usage} * {SECONDS_PER_DAY} / on ({', '.join(labels)}) {budget}"

    def histogram_quantile(self, spec: MetricSpec, quantile: float, by: Sequence[str],
                           *matchers: str, window: str = RATE_INTERVAL) -> str:
        """The `quantile` of a histogram family per `by` over `window`."""
        buckets = rate(self.select(spec, *matchers, suffix=BUCKET), window)
        return f"histogram_quantile({quantile}, {aggregate((*by, BUCKET_LABEL), buckets)})"

    # --- Reliability -------------------------------------------------------------------------

    def operations(self, by: Sequence[str], *matchers: str,
                   counter: Callable[[str, str], str] = rate, window: str = RATE_INTERVAL) -> str:
        """Operations (spans) per second, or over `window` with counter=increase."""
        spans = self.select(catalog.OPERATION_DURATION, *matchers, suffix=COUNT)
        return aggregate(by, counter(spans, window))

    def error_ratio(self, by: Sequence[str], *matchers: str) -> str:
        """Fraction of operations that ended in an error."""
        errors = self.operations(by, equals(catalog.STATUS, catalog.STATUS_ERROR), *matchers)
        return f"{errors} / {self.operations(by, *matchers)}"

    def empty_responses(self, by: Sequence[str], *matchers: str,
                        counter: Callable[[str, str], str] = rate, window: str = RATE_INTERVAL) -> str:
        """Completed operations that returned nothing, per second or over `window`."""
        return aggregate(by, counter(self.select(catalog.EMPTY_RESPONSES, *matchers), window))

    def empty_ratio(self, by: Sequence[str], *matchers: str) -> str:
        """Fraction of operations that returned nothing."""
        return f"{self.empty_responses(by, *matchers)} / {self.operations(by, *matchers)}"

    def failures(self, by: Sequence[str], *matchers: str,
                 counter: Callable[[str, str], str] = rate, window: str = RATE_INTERVAL) -> str:
        """Errors plus empty responses (disjoint: an empty response is a non-error one). `or`
        keeps the groups that have only one of the two, which `+` alone would drop."""
        errors = self.operations(by, equals(catalog.STATUS, catalog.STATUS_ERROR), *matchers,
                                 counter=counter, window=window)
        empties = self.empty_responses(by, *matchers, counter=counter, window=window)
        return f"(({errors} + {empties}) or {errors} or {empties})"

    def failure_share(self, by: Sequence[str]) -> str:
        """Each group's share of all failures over the range."""
        failures = self.failures(by, counter=increase, window=RANGE)
        return f"{failures} / on () group_left () sum({failures})"

    def errors_by_type(self) -> str:
        """Errors per second by layer and error type."""
        return self.operations((catalog.LAYER, catalog.ERROR_TYPE),
                               equals(catalog.STATUS, catalog.STATUS_ERROR))

    def finish_reasons(self) -> str:
        """Model responses per second by finish reason."""
        return aggregate((catalog.FINISH_REASON,), rate(self.select(catalog.FINISH_REASONS)))

    def truncation_ratio(self) -> str:
        """Fraction of a model's responses cut off at the token limit."""
        per_model = (catalog.PROVIDER, catalog.MODEL)
        truncated = aggregate(per_model, rate(self.select(
            catalog.FINISH_REASONS, equals(catalog.FINISH_REASON, catalog.FINISH_REASON_TRUNCATED))))
        return f"{truncated} / {aggregate(per_model, rate(self.select(catalog.FINISH_REASONS)))}"

    def check_fail_ratio(self) -> str:
        """Fraction of each output check's judgements that failed, per check and model."""
        per_check = (catalog.CHECK, catalog.MODEL)
        failed = aggregate(per_check, rate(self.select(
            catalog.OUTPUT_CHECKS, equals(catalog.RESULT, catalog.RESULT_FAIL))))
        return f"{failed} / {aggregate(per_check, rate(self.select(catalog.OUTPUT_CHECKS)))}"

    def mean_evaluation_score(self) -> str:
        """Mean score of each evaluation per model: the histogram's sum over its count."""
        per_evaluation = (catalog.EVALUATION, catalog.MODEL)
        scores = aggregate(per_evaluation, rate(self.select(catalog.EVALUATION_SCORE, suffix="_sum")))
        judged = aggregate(per_evaluation, rate(self.select(catalog.EVALUATION_SCORE, suffix="_count")))
        return f"{scores} / {judged}"

    def evaluations_by_label(self) -> str:
        """Evaluation results per second by evaluation and the label the evaluator gave."""
        return aggregate((catalog.EVALUATION, catalog.LABEL), rate(self.select(catalog.EVALUATIONS)))

    def slowest_tools(self) -> str:
        """The tools with the highest p95 duration over the range."""
        p95 = self.histogram_quantile(catalog.OPERATION_DURATION, 0.95, (catalog.SERVICE, catalog.TOOL),
                                      equals(catalog.LAYER, catalog.LAYER_TOOL), window=RANGE)
        return f"topk({TOP_N}, {p95})"

    def most_failing_tools(self) -> str:
        """The tools with the most failures over the range; tools that did not fail are not listed."""
        failures = self.failures((catalog.SERVICE, catalog.TOOL), equals(catalog.LAYER, catalog.LAYER_TOOL),
                                 counter=increase, window=RANGE)
        return f"topk({TOP_N}, {failures} > 0)"

    def most_failing_tools_ratio(self) -> str:
        """Failure ratio over the range of the tools in most_failing_tools, and only those."""
        per_tool = (catalog.SERVICE, catalog.TOOL)
        tool = equals(catalog.LAYER, catalog.LAYER_TOOL)
        failures = self.failures(per_tool, tool, counter=increase, window=RANGE)
        calls = self.operations(per_tool, tool, counter=increase, window=RANGE)
        return f"({failures} / {calls}) and on ({', '.join(per_tool)}) {self.most_failing_tools()}"

    # --- Exporter health ---------------------------------------------------------------------

    def scraped(self, name: str, *matchers: str) -> str:
        """Selector of a series of the exporter's scrape job, filtered by $job and $instance."""
        return selector(name, variable_filter(JOB_LABEL), variable_filter(INSTANCE_LABEL), *matchers)

    def process_cpu(self) -> str:
        """CPU the exporter process uses, in cores (1 = one core fully busy), per instance."""
        return aggregate((INSTANCE_LABEL,), rate(self.scraped(PROCESS_CPU_SECONDS)))

    def self_metric_rate(self, spec: MetricSpec, by: Sequence[str] = ()) -> str:
        """Per-second rate of an exporter self-metric."""
        return aggregate(by, rate(self.scraped(spec.name)))

    def rejected_share(self) -> str:
        """Fraction of received spans rejected over the range."""
        rejected = aggregate((), increase(self.scraped(catalog.SPANS_REJECTED.name)))
        return f"{rejected} / {aggregate((), increase(self.scraped(catalog.SPANS_RECEIVED.name)))}"

    def distinct_values(self, spec: MetricSpec, label: str, suffix: str = "") -> str:
        """How many values of `label` the exporter currently exposes (compare with its cap)."""
        name = _series(spec, suffix) if suffix else spec.name
        values = aggregate((label,), self.scraped(name, matcher(label, "!=", "")), operator="count")
        return f"count({values})"

    def series_count(self, by: Sequence[str]) -> str:
        """Series the exporter exposes per `by` (where its scrape cost comes from), over the domain
        families that carry every `by` label, filtered by the variables all those families carry."""
        specs = [spec for spec in catalog.DOMAIN_METRICS if set(by) <= self.labels_of(spec)]
        common = frozenset.intersection(*(self.labels_of(spec) for spec in specs))
        names = sorted(name for spec in specs for name in catalog.series_names(spec))
        filters = [variable_filter(label) for label in self.filter_labels if label in common]
        # Series without a value (a tool call's model) are not some model's series.
        present = [matcher(label, "!=", "") for label in by]
        selector = self.scraped("", matcher(METRIC_NAME_LABEL, "=~", "|".join(names)), *filters, *present)
        return aggregate(by, selector, operator="count")


# --- LogQL -----------------------------------------------------------------------------------


def service_logs() -> str:
    """Log lines of the services chosen in $service (Loki labels OTLP logs with service_name)."""
    return f"{{{matcher(LOKI_SERVICE_LABEL, '=~', f'${catalog.SERVICE}')}}}"


# --- TraceQL (Tempo searches behind the data links) ------------------------------------------


def _quote(value: str) -> str:
    return f'"{value}"'


def _any_attribute(attributes: Sequence[str], comparison: str) -> str:
    """True when any alias of a span attribute satisfies `comparison` (e.g. `= "x"`): the spans
    come from whichever instrumentation the service uses."""
    return "(" + " || ".join(f"span.{attribute} {comparison}" for attribute in attributes) + ")"


def traceql(*conditions: str) -> str:
    """A TraceQL span set of spans matching every condition."""
    return "{ " + " && ".join(conditions) + " }"


def service_is(service: str) -> str:
    """Spans of one service (the exporter's `service` label is the service.name resource)."""
    return f"resource.{semconv.SERVICE_NAME} = {_quote(service)}"


def tool_is(tool: str) -> str:
    """Spans of one tool, under any of its attribute names."""
    return _any_attribute(semconv.TOOL_NAME_ALIASES, f"= {_quote(tool)}")


def model_is(model: str) -> str:
    """Spans of one model, under any of its attribute names. The exporter's model label is the
    canonical name of the model's price entry, which the span's model contains rather than equals
    when it is a dated variant or carries a provider prefix (gpt-4o-mini-2024-07-18,
    openai/gpt-4o-mini): match it anywhere, in any case. A price-table alias spelt differently
    (claude-sonnet-4.5 for claude-sonnet-4-5) is not found."""
    return _any_attribute(semconv.MODEL_ALIASES, f"=~ {_quote('(?i).*' + model + '.*')}")


# Where a tool span carries its result: the semconv attribute, older dialects, and OpenInference's
# output.value (which the exporter reads when no tool result attribute is set).
TOOL_RESULT_ATTRIBUTES = (*semconv.TOOL_CALL_RESULT_ALIASES, semconv.OPENINFERENCE_OUTPUT_VALUE)
# A result the exporter counts as empty: "", whitespace, [], {}, null or "" in JSON. A raw (backtick)
# TraceQL string keeps the backslashes; the anchors make it a whole-value match.
EMPTY_RESULT_PATTERN = r'^\s*(\[\s*\]|\{\s*\}|null|"")?\s*$'


def tool_failed() -> str:
    """Tool spans that ended in error or returned an empty result (as the exporter counts empty)."""
    empty = _any_attribute(TOOL_RESULT_ATTRIBUTES, f"=~ `{EMPTY_RESULT_PATTERN}`")
    return f"(status = error || {empty})"


def model_failed() -> str:
    """Model spans that ended in error or produced no output tokens."""
    return f"(status = error || {_any_attribute(semconv.OUTPUT_TOKENS_ALIASES, '= 0')})"


DEFAULT_SCOPE = Scope(tuple(dimension.label for dimension in config.default_dimensions()))
