"""GenAI reliability dashboard: where failures concentrate (model, tool, agent or retrieval),
which tools and models fail or come back empty, truncation, latency and retry loops."""

from __future__ import annotations

from dashboards import lib, queries
from dashboards.lib import Column, Section
from genai_exporter import catalog

UID = "genai-reliability"

PER_TOOL = (catalog.SERVICE, catalog.TOOL)
PER_MODEL = (catalog.SERVICE, catalog.PROVIDER, catalog.MODEL)
TOOL_LEGEND = "{{service}} {{tool}}"
MODEL_LEGEND = "{{service}} {{provider}} {{model}}"
QUANTILES = (0.5, 0.95, 0.99)


def _percentile(quantile: float) -> str:
    return f"p{round(quantile * 100)}"


def _sections(scope: queries.Scope) -> list[Section]:
    tool_layer = queries.equals(catalog.LAYER, catalog.LAYER_TOOL)
    model_layer = queries.equals(catalog.LAYER, catalog.LAYER_MODEL)
    failing_tool = lib.data_link("Failed or empty calls of this tool in Tempo", lib.tempo_search_url(
        queries.traceql(queries.service_is(lib.series_label(catalog.SERVICE)),
                        queries.tool_is(lib.series_label(catalog.TOOL)), queries.tool_failed())))
    failing_tool_row = lib.data_link("Failed or empty calls of this tool in Tempo", lib.tempo_search_url(
        queries.traceql(queries.service_is(lib.row_field(catalog.SERVICE)),
                        queries.tool_is(lib.row_field(catalog.TOOL)), queries.tool_failed())))
    failing_model = lib.data_link("Failed or empty calls of this model in Tempo", lib.tempo_search_url(
        queries.traceql(queries.service_is(lib.series_label(catalog.SERVICE)),
                        queries.model_is(lib.series_label(catalog.MODEL)), queries.model_failed())))

    layers = Section("Where failures concentrate", [
        lib.stat(
            "Failure share by layer",
            question="Is it the model, the tools, the agent or retrieval that fails?",
            details="Each layer's share of all failures in the dashboard's range. A failure is an "
                    "operation that ended in an error or completed with an empty response (no "
                    "output tokens, empty output or an empty tool result).",
            unit=lib.RATIO,
            targets=lib.targets((scope.failure_share((catalog.LAYER,)), "{{layer}}"), instant=True),
            width=8,
            height=lib.TIMESERIES_HEIGHT,
            text_mode="value_and_name",
        ),
        lib.timeseries(
            "Failures by layer",
            question="When did failures happen, and in which layer?",
            details="Errors plus empty responses per second, stacked by layer (model, tool, agent, "
                    "retrieval, memory, other).",
            unit=lib.FAILURES_PER_SECOND,
            targets=lib.targets((scope.failures((catalog.LAYER,)), "{{layer}}")),
            width=8,
            stacked=True,
        ),
        lib.timeseries(
            "Error ratio by layer",
            question="What fraction of each layer's operations ends in an error?",
            details="Operations with status error divided by all operations, per layer.",
            unit=lib.RATIO,
            targets=lib.targets((scope.error_ratio((catalog.LAYER,)), "{{layer}}")),
            width=8,
        ),
        lib.timeseries(
            "Errors by type",
            question="Which errors are we getting?",
            details="Errors per second by layer and error.type (exception class or HTTP status "
                    "the instrumentation recorded).",
            unit=lib.ERRORS_PER_SECOND,
            targets=lib.targets((scope.errors_by_type(), "{{layer}} {{error_type}}")),
            stacked=True,
        ),
        lib.timeseries(
            "Output check failure ratio",
            question="Are the answers still well-formed: valid JSON, required fields, the right tool?",
            details="Deterministic output checks that failed divided by all judged outputs, per check "
                    "and model. A jump is often the first sign of a model changed underneath or a "
                    "prompt edit that regressed; outputs that were not captured are not judged.",
            unit=lib.RATIO,
            targets=lib.targets((scope.check_fail_ratio(), "{{check}} {{model}}")),
            width=8,
        ),
        lib.timeseries(
            "Evaluation score (mean)",
            question="Do the evaluators (an LLM judge) still rate the answers as highly?",
            details="Mean score of each evaluation per model (the score histogram's sum over its "
                    "count). A drop below its usual level after a model or prompt change is quality "
                    "drift that no error shows.",
            unit=lib.NONE,
            targets=lib.targets((scope.mean_evaluation_score(), "{{evaluation}} {{model}}")),
            width=8,
        ),
        lib.timeseries(
            "Evaluation results by label",
            question="How many answers did the evaluators pass or fail?",
            details="Evaluation results per second by evaluation and the label the evaluator gave "
                    "(for example relevant or irrelevant), stacked.",
            unit=lib.RESULTS_PER_SECOND,
            targets=lib.targets((scope.evaluations_by_label(), "{{evaluation}} {{label}}")),
            width=8,
            stacked=True,
        ),
        lib.timeseries(
            "Empty-response ratio by layer",
            question="What fraction of each layer's successful-looking operations returned nothing?",
            details="Completed, non-error operations that returned nothing, divided by all "
                    "operations, per layer. Spans whose content was not captured do not count as "
                    "empty, so this is a lower bound.",
            unit=lib.RATIO,
            targets=lib.targets((scope.empty_ratio((catalog.LAYER,)), "{{layer}}")),
        ),
    ])
    tools = Section("Tools", [
        lib.timeseries(
            "Tool error ratio",
            question="Which tools fail?",
            details="Tool calls that ended in an error divided by all calls, per service and tool. "
                    "Click a series to search Tempo for that tool's failed or empty calls.",
            unit=lib.RATIO,
            targets=lib.targets((scope.error_ratio(PER_TOOL, tool_layer), TOOL_LEGEND)),
            links=[failing_tool],
        ),
        lib.timeseries(
            "Tool empty-result ratio",
            question="Which tools return empty results?",
            details="Tool calls that completed without error but returned an empty result, divided "
                    "by all calls, per service and tool. Click a series to search Tempo for them.",
            unit=lib.RATIO,
            targets=lib.targets((scope.empty_ratio(PER_TOOL, tool_layer), TOOL_LEGEND)),
            links=[failing_tool],
        ),
        lib.table(
            "Most failing tools",
            question="Which tools failed most often in the selected time range?",
            details=f"The {queries.TOP_N} tools with the most failures (errors plus empty results) "
                    "in the dashboard's range, with the fraction of their calls that failed. Click "
                    "a tool to search Tempo for its failed or empty calls.",
            targets=lib.targets((scope.most_failing_tools(), ""), (scope.most_failing_tools_ratio(), ""),
                                instant=True, table=True),
            columns=[Column("Failures", lib.CALLS), Column("Failure ratio", lib.RATIO)],
            field_links={catalog.TOOL: [failing_tool_row]},
        ),
        lib.table(
            "Slowest tools",
            question="Which tools are slowest?",
            details=f"The {queries.TOP_N} tools with the highest p95 duration over the dashboard's "
                    "range. Click a tool to search Tempo for its failed or empty calls.",
            targets=lib.targets((scope.slowest_tools(), ""), instant=True, table=True),
            columns=[Column("p95 duration", lib.SECONDS)],
            field_links={catalog.TOOL: [failing_tool_row]},
        ),
        lib.timeseries(
            "Tool latency p95",
            question="How long do tool calls take?",
            details="p95 duration of tool calls per service and tool. Exemplars (dots) open the "
                    "trace of a slow call in Tempo; click a series to search its failed calls.",
            unit=lib.SECONDS,
            targets=lib.targets((scope.histogram_quantile(catalog.OPERATION_DURATION, 0.95, PER_TOOL,
                                                          tool_layer), TOOL_LEGEND)),
            width=lib.GRID_WIDTH,
            links=[failing_tool],
        ),
    ])
    models = Section("Models", [
        lib.timeseries(
            "Model error ratio",
            question="Which models fail?",
            details="Model calls that ended in an error (rate limits, timeouts, provider errors) "
                    "divided by all calls, per service and model. Click a series to search Tempo "
                    "for that model's failed or empty calls.",
            unit=lib.RATIO,
            targets=lib.targets((scope.error_ratio(PER_MODEL, model_layer), MODEL_LEGEND)),
            links=[failing_model],
        ),
        lib.timeseries(
            "Model empty-response ratio",
            question="Which models return empty responses?",
            details="Model calls that completed without error but produced no output, divided by "
                    "all calls, per service and model. Click a series to search Tempo for them.",
            unit=lib.RATIO,
            targets=lib.targets((scope.empty_ratio(PER_MODEL, model_layer), MODEL_LEGEND)),
            links=[failing_model],
        ),
        lib.timeseries(
            "Finish reasons",
            question="Why do model responses end?",
            details="Model responses per second by finish reason, stacked. "
                    f'"{catalog.FINISH_REASON_TRUNCATED}" is truncation at the token limit; '
                    "content_filter is a blocked response.",
            unit=lib.RESPONSES_PER_SECOND,
            targets=lib.targets((scope.finish_reasons(), "{{finish_reason}}")),
            width=8,
            stacked=True,
        ),
        lib.timeseries(
            "Truncation ratio by model",
            question="Which models cut their responses off at the token limit?",
            details=f'Responses with finish reason "{catalog.FINISH_REASON_TRUNCATED}" divided by '
                    "all responses, per model. Raise max_tokens or shorten the task when it climbs.",
            unit=lib.RATIO,
            targets=lib.targets((scope.truncation_ratio(), "{{provider}} {{model}}")),
            width=8,
        ),
        lib.timeseries(
            "Time to first token",
            question="How long do users wait for the first streamed token?",
            details="p50 and p95 time from request to the first streamed chunk, per model. Only "
                    "streaming calls whose instrumentation records it are counted.",
            unit=lib.SECONDS,
            targets=lib.targets(*(
                (scope.histogram_quantile(catalog.TIME_TO_FIRST_TOKEN, quantile,
                                          (catalog.PROVIDER, catalog.MODEL)),
                 f"{{{{model}}}} {_percentile(quantile)}")
                for quantile in (0.5, 0.95)
            )),
            width=8,
        ),
        lib.timeseries(
            "Model latency p95",
            question="How long do model calls take?",
            details="p95 duration of model calls per service and model. Exemplars (dots) open the "
                    "trace of a slow call in Tempo; click a series to search its failed calls.",
            unit=lib.SECONDS,
            targets=lib.targets((scope.histogram_quantile(catalog.OPERATION_DURATION, 0.95, PER_MODEL,
                                                          model_layer), MODEL_LEGEND)),
            width=lib.GRID_WIDTH,
            links=[failing_model],
        ),
    ])
    latency = Section("Latency and agent runs", [
        lib.timeseries(
            "Latency by operation",
            question="How long does each kind of operation take?",
            details="p50, p95 and p99 duration per operation (chat, execute_tool, invoke_agent, "
                    "retrieval, ...). Exemplars (dots) open the trace of that operation in Tempo.",
            unit=lib.SECONDS,
            targets=lib.targets(*(
                (scope.histogram_quantile(catalog.OPERATION_DURATION, quantile, (catalog.OPERATION,)),
                 f"{{{{operation}}}} {_percentile(quantile)}")
                for quantile in QUANTILES
            )),
            width=lib.GRID_WIDTH,
        ),
        lib.timeseries(
            "Model calls per agent run",
            question="Are agents stuck in retry loops?",
            details="p50 and p95 number of model calls in one agent run, per agent. A p95 that "
                    "jumps while p50 stays is the signature of runs looping on a failing step.",
            unit=lib.CALLS,
            targets=lib.targets(*(
                (scope.histogram_quantile(catalog.AGENT_RUN_MODEL_CALLS, quantile, (catalog.AGENT,)),
                 f"{{{{agent}}}} {_percentile(quantile)}")
                for quantile in (0.5, 0.95)
            )),
        ),
        lib.timeseries(
            "Tool calls per agent run",
            question="How many tool calls does an agent run make?",
            details="p50 and p95 number of tool calls in one agent run, per agent. Read it with "
                    "Model calls per agent run: many tool calls per model call is a tool retry loop.",
            unit=lib.CALLS,
            targets=lib.targets(*(
                (scope.histogram_quantile(catalog.AGENT_RUN_TOOL_CALLS, quantile, (catalog.AGENT,)),
                 f"{{{{agent}}}} {_percentile(quantile)}")
                for quantile in (0.5, 0.95)
            )),
        ),
    ])
    logs = Section("Logs", [
        lib.logs(
            "Logs of the selected services",
            question="What did the services log around a failure?",
            details=f"Log lines from Loki with {queries.LOKI_SERVICE_LABEL} matching $service (the "
                    "label Loki gives the service.name of OTLP logs). Open a line's details to jump "
                    "to its trace in Tempo through the trace_id derived field.",
            expr=queries.service_logs(),
        ),
    ])
    return [layers, tools, models, latency, logs]


def build(scope: queries.Scope) -> lib.PortableDashboard:
    """The reliability dashboard for a deployment's dimension labels."""
    return lib.genai_dashboard(
        uid=UID,
        title="GenAI reliability",
        description="Failures of GenAI agents by layer (model, tool, agent, retrieval), failing "
                    "and empty tools and models, truncation, latency and retry loops, with links "
                    "to the traces in Tempo and the logs in Loki.",
        sections=_sections(scope),
        variables=lib.domain_variables(scope),
    )


dashboard = build(queries.DEFAULT_SCOPE)
