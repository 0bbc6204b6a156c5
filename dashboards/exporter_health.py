"""Exporter health dashboard: is genai-exporter up, receiving and accepting spans, within its
label caps, and how much do scraping and running it cost."""

from __future__ import annotations

from dashboards import lib, queries
from dashboards.lib import Section
from genai_exporter import catalog, config
from genai_exporter.extensions import NO_EXTENSIONS_VARIABLE

UID = "genai-exporter-health"

UP_MAPPINGS = [{"type": "value", "options": {"0": {"text": "Down"}, "1": {"text": "Up"}}}]
UP_STEPS = ({"color": "red", "value": None}, {"color": "green", "value": 1})
# A few rejected spans are normal (one broken emitter); a tenth means data is being lost.
REJECTED_STEPS = ({"color": "green", "value": None}, {"color": "orange", "value": 0.01},
                  {"color": "red", "value": 0.1})


def _cardinality_targets(scope: queries.Scope) -> list[lib.PromTarget]:
    duration_labels = (catalog.SERVICE, catalog.PROVIDER, catalog.MODEL, catalog.OPERATION,
                       catalog.AGENT, catalog.TOOL, catalog.ERROR_TYPE, *scope.dimensions)
    pairs = [(scope.distinct_values(catalog.OPERATION_DURATION, label, queries.COUNT), label)
             for label in duration_labels]
    pairs.append((scope.distinct_values(catalog.FINISH_REASONS, catalog.FINISH_REASON),
                  catalog.FINISH_REASON))
    return lib.targets(*pairs)


def _caps() -> str:
    limits = config.CardinalityLimits().max_values
    return ", ".join(f"{label} {cap}" for label, cap in sorted(limits.items()))


def _sections(scope: queries.Scope) -> list[Section]:
    status = Section("Status", [
        lib.stat(
            "Exporter up",
            question="Is Prometheus able to scrape the exporter?",
            details="The up series of each exporter instance in the scrape job: Down means no "
                    "metrics, so every GenAI dashboard and alert goes blind.",
            unit=lib.NONE,
            targets=lib.targets((scope.scraped(queries.UP), "{{instance}}")),
            width=6,
            thresholds=UP_STEPS,
            mappings=UP_MAPPINGS,
        ),
        lib.stat(
            "Running version",
            question="Which exporter version is running where?",
            details=f"The version, Python version and data path labels of {catalog.BUILD_INFO.name}, per "
                    "instance. Different versions side by side mean a rollout is in progress; a data path "
                    "other than compiled means the exporter runs its Python sources, which cost more CPU time "
                    f"per span (no C compiler where it was installed, or {NO_EXTENSIONS_VARIABLE} set).",
            unit=lib.NONE,
            targets=lib.targets((scope.scraped(catalog.BUILD_INFO.name),
                                 f"{{{{instance}}}}: {{{{{catalog.VERSION}}}}} "
                                 f"(Python {{{{{catalog.PYTHON_VERSION}}}}}, data path {{{{{catalog.DATA_PATH}}}}})"),
                                instant=True),
            width=12,
            text_mode="name",
        ),
        lib.stat(
            "Rejected spans over the range",
            question="What fraction of the spans we receive do we throw away?",
            details="Spans rejected as invalid divided by all spans received in the dashboard's "
                    "range. Senders learn about each rejection through OTLP partial success; see "
                    "Rejected spans by reason for why.",
            unit=lib.RATIO,
            targets=lib.targets((scope.rejected_share(), "rejected"), instant=True),
            width=6,
            thresholds=REJECTED_STEPS,
            no_value="0",
        ),
    ])
    spans = Section("Spans and requests", [
        lib.timeseries(
            "Spans received, ignored, rejected and dropped",
            question="How many spans is the exporter processing?",
            details="Spans per second: received (all spans of accepted requests), ignored (not "
                    "GenAI spans, still used to link agent runs), rejected (invalid) and dropped "
                    "(the in-process span processor's queue was full: those spans are lost).",
            unit=lib.SPANS_PER_SECOND,
            targets=lib.targets(
                (scope.self_metric_rate(catalog.SPANS_RECEIVED), "received"),
                (scope.self_metric_rate(catalog.SPANS_IGNORED), "ignored"),
                (scope.self_metric_rate(catalog.SPANS_REJECTED), "rejected"),
                (scope.self_metric_rate(catalog.SPANS_DROPPED), "dropped"),
            ),
        ),
        lib.timeseries(
            "Rejected spans by reason",
            question="Why are spans rejected?",
            details="Rejected spans per second by reason: invalid token counts, invalid duration "
                    "or an invalid span. Fix the emitter that sends them; the exporter logs each "
                    "rejection at debug level.",
            unit=lib.SPANS_PER_SECOND,
            targets=lib.targets((scope.self_metric_rate(catalog.SPANS_REJECTED, by=(catalog.REASON,)),
                                 "{{reason}}")),
            stacked=True,
        ),
        lib.timeseries(
            "OTLP requests by status code",
            question="Are senders' export requests succeeding?",
            details="OTLP/HTTP export requests per second by HTTP status code. 4xx is a sender "
                    "problem (bad payload, too large), 5xx or 503 the exporter being overloaded.",
            unit=lib.REQUESTS_PER_SECOND,
            targets=lib.targets((scope.self_metric_rate(catalog.REQUESTS, by=(catalog.CODE,)), "{{code}}")),
            stacked=True,
        ),
        lib.timeseries(
            "Label overflow by label",
            question="Which labels hit their cardinality cap?",
            details="Observations per second whose label value was replaced by "
                    f'"{catalog.OVERFLOW_VALUE}" because the label reached its cap of distinct '
                    f"values (defaults: {_caps()}). Totals stay exact; raise the cap "
                    "(limits.max_values) or fix the emitter that sends unbounded values.",
            unit=lib.OBSERVATIONS_PER_SECOND,
            targets=lib.targets((scope.self_metric_rate(catalog.LABEL_OVERFLOW, by=(catalog.LABEL,)),
                                 "{{label}}")),
        ),
        lib.timeseries(
            "Agent-run state evictions",
            question="Are agent runs lost before their totals are recorded?",
            details="Pending agent-run accumulators dropped per second to bound memory: their "
                    "invoke_agent span did not arrive in time, so those runs are missing from the "
                    "per-run cost and call-count histograms.",
            unit=lib.RUNS_PER_SECOND,
            targets=lib.targets((scope.self_metric_rate(catalog.AGENT_RUNS_EVICTED), "evicted")),
            width=lib.GRID_WIDTH,
        ),
    ])
    scrape = Section("Scrape cost, resources and cardinality", [
        lib.timeseries(
            "Scrape duration",
            question="How long does Prometheus take to scrape the exporter?",
            details="Seconds per scrape, per instance. Close to the scrape timeout means lost "
                    "scrapes: reduce series (label caps, fewer dimensions).",
            unit=lib.SECONDS,
            targets=lib.targets((scope.scraped(queries.SCRAPE_DURATION), "{{instance}}")),
        ),
        lib.timeseries(
            "Samples per scrape",
            question="How many samples does each scrape return?",
            details="Samples in each scrape, per instance: the exporter's share of Prometheus' "
                    "ingestion and memory.",
            unit=lib.SAMPLES,
            targets=lib.targets((scope.scraped(queries.SCRAPE_SAMPLES), "{{instance}}")),
        ),
        lib.timeseries(
            "Exporter memory",
            question="How much memory does the exporter hold?",
            details="Resident memory of the exporter process, per instance. It should stay flat "
                    "whatever label values arrive (every label is capped); steady growth means a "
                    "cap is too high or pending agent runs pile up.",
            unit=lib.BYTES,
            targets=lib.targets((scope.scraped(queries.PROCESS_RESIDENT_MEMORY), "{{instance}}")),
        ),
        lib.timeseries(
            "Exporter CPU",
            question="How busy is the exporter process?",
            details="CPU time per second of the exporter process, per instance: 100 % is one core "
                    "fully busy. Near 100 % the exporter answers OTLP requests with 503 (see OTLP "
                    "requests by status code).",
            unit=lib.CORES,
            targets=lib.targets((scope.process_cpu(), "{{instance}}")),
        ),
        lib.timeseries(
            "Series per service",
            question="Which services contribute most series?",
            details="Series of the domain metrics per service, within the selected services and "
                    "dimension values. A service with far more series than the others usually "
                    "sends an unbounded label value.",
            unit=lib.SERIES,
            targets=lib.targets((scope.series_count((catalog.SERVICE,)), "{{service}}")),
        ),
        lib.timeseries(
            "Series per model",
            question="Which models contribute most series?",
            details="Series of the metrics labelled by model, per provider and model, within the "
                    "selected services, providers, models and dimension values. Many models with "
                    "few series each are dated variants the price table does not fold together.",
            unit=lib.SERIES,
            targets=lib.targets((scope.series_count((catalog.PROVIDER, catalog.MODEL)),
                                 "{{provider}} {{model}}")),
        ),
        lib.timeseries(
            "Distinct label values",
            question="How close is each label to its cardinality cap?",
            details="Distinct non-empty values each label has in the exposed series. Compare with "
                    f"the caps (defaults: {_caps()}); at the cap new values become "
                    f'"{catalog.OVERFLOW_VALUE}".',
            unit=lib.VALUES,
            targets=_cardinality_targets(scope),
            width=lib.GRID_WIDTH,
        ),
    ])
    return [status, spans, scrape]


def build(scope: queries.Scope) -> lib.PortableDashboard:
    """The exporter health dashboard for a deployment's dimension labels."""
    return lib.genai_dashboard(
        uid=UID,
        title="GenAI exporter health",
        description="Health of genai-exporter itself: up, version, spans received, rejected, "
                    "ignored and dropped, OTLP request codes, label overflow, scrape cost, memory, "
                    "CPU and cardinality.",
        sections=_sections(scope),
        variables=[*lib.domain_variables(scope), *lib.scrape_variables()],
    )


dashboard = build(queries.DEFAULT_SCOPE)
