"""House style of the GenAI dashboards, as grafanalib's weave.py is Weave's.

Every panel gets a unit and a description that opens with the question it answers (the docs
table is generated from that question); Prometheus panels query the `${datasource}` variable;
time series of exemplar-bearing series ask Prometheus for exemplars (Prometheus -> Tempo by
trace_id); Tempo and Loki are reached through their own datasource variables. Dashboards carry
`__inputs` for the three datasources so they import into any Grafana. Where grafanalib 0.7.1 lacks
a field (exemplars, `__requires`, field data links), the classes here add it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import attr
from attr.validators import instance_of
from grafanalib import core as G

from dashboards import queries
from genai_exporter import catalog

# --- Datasources ------------------------------------------------------------------------------

PROMETHEUS_VARIABLE = "datasource"
TEMPO_VARIABLE = "tempo"
LOKI_VARIABLE = "loki"
# Import-time inputs: Grafana's import dialog asks for each and substitutes ${DS_...}.
PROMETHEUS_INPUT = "DS_PROMETHEUS"
TEMPO_INPUT = "DS_TEMPO"
LOKI_INPUT = "DS_LOKI"
PROMETHEUS = {"type": "prometheus", "uid": f"${{{PROMETHEUS_VARIABLE}}}"}
TEMPO = {"type": "tempo", "uid": f"${{{TEMPO_VARIABLE}}}"}
LOKI = {"type": "loki", "uid": f"${{{LOKI_VARIABLE}}}"}
DATASOURCE_VARIABLES = (PROMETHEUS_VARIABLE, TEMPO_VARIABLE, LOKI_VARIABLE)

# Exemplar toggles, TraceQL in Explore panes and Loki structured metadata need Grafana 10.4+.
GRAFANA_MIN_VERSION = "10.4.0"
SCHEMA_VERSION = 39
DASHBOARD_TAG = "genai"
ALL = "$__all"

# --- Units (Grafana unit ids; `suffix:` is Grafana's custom-unit syntax) ------------------------

USD = "currencyUSD"
RATIO = "percentunit"
# CPU seconds per second: 1 (100 %) is one core fully busy.
CORES = "percentunit"
BYTES = "bytes"
SECONDS = "s"
NONE = "none"
REQUESTS_PER_SECOND = "reqps"
SAMPLES = "suffix: samples"
SERIES = "suffix: series"
VALUES = "suffix: values"
TOKENS = "suffix: tokens"
CALLS = "suffix: calls"
TOKENS_PER_SECOND = "suffix: tokens/s"
FAILURES_PER_SECOND = "suffix: failures/s"
ERRORS_PER_SECOND = "suffix: errors/s"
RESPONSES_PER_SECOND = "suffix: responses/s"
RESULTS_PER_SECOND = "suffix: results/s"
SPANS_PER_SECOND = "suffix: spans/s"
OBSERVATIONS_PER_SECOND = "suffix: observations/s"
RUNS_PER_SECOND = "suffix: runs/s"

# --- Layout -----------------------------------------------------------------------------------

GRID_WIDTH = 24
TIMESERIES_HEIGHT = 8
STAT_HEIGHT = 4

# --- Thresholds -------------------------------------------------------------------------------

NEUTRAL = ({"color": "blue", "value": None},)
ANY_IS_BAD = ({"color": "green", "value": None}, {"color": "red", "value": 1})
BUDGET_STEPS = ({"color": "green", "value": None}, {"color": "orange", "value": 0.8},
                {"color": "red", "value": 1})


def describe(question: str, details: str) -> str:
    """A panel description: the question the panel answers, a blank line, then how to read it.

    The question is what people hover for and what the docs table lists, so it is mandatory.
    """
    if not question.endswith("?") or "\n" in question:
        raise ValueError(f"a panel question is one line ending with '?': {question!r}")
    if not details.strip():
        raise ValueError(f"panel {question!r} needs details on how to read it")
    return f"{question}\n\n{details}"


def question_of(description: str) -> str:
    """The question a panel answers, from a description built by describe()."""
    return description.split("\n\n", 1)[0]


# --- Targets ----------------------------------------------------------------------------------


def exemplar_series() -> frozenset[str]:
    """Sample names that carry exemplars: counters with exemplars and histogram buckets."""
    names: set[str] = set()
    for spec in catalog.ALL_METRICS:
        if spec.exemplars:
            histogram = spec.kind is catalog.MetricKind.HISTOGRAM
            names.add(f"{spec.name}{queries.BUCKET}" if histogram else spec.name)
    return frozenset(names)


def uses_exemplar_series(expr: str) -> bool:
    """Whether a query reads a series the exporter attaches exemplars to."""
    return any(re.search(rf"\b{re.escape(name)}\b", expr) for name in exemplar_series())


@attr.s
class PromTarget(G.Target):
    """A Prometheus query as Grafana 10+ stores it, with the exemplar toggle grafanalib lacks."""

    exemplar = attr.ib(default=False, validator=instance_of(bool))

    def to_json_data(self) -> dict[str, Any]:
        return {
            "datasource": PROMETHEUS,
            "editorMode": "code",
            "exemplar": self.exemplar,
            "expr": self.expr,
            "format": self.format,
            "instant": self.instant,
            "legendFormat": self.legendFormat,
            "range": not self.instant,
            "refId": self.refId,
        }


@attr.s
class LokiTarget(G.Target):
    """A LogQL query on the `${loki}` datasource."""

    def to_json_data(self) -> dict[str, Any]:
        return {
            "datasource": LOKI,
            "editorMode": "code",
            "expr": self.expr,
            "queryType": "range",
            "refId": self.refId,
        }


def _ref_id(index: int) -> str:
    return chr(ord("A") + index)


def targets(*queries_and_legends: tuple[str, str], instant: bool = False,
            table: bool = False) -> list[PromTarget]:
    """Prometheus targets from (expr, legend) pairs, refIds A, B, ... in order."""
    return [
        PromTarget(
            expr=expr,
            legendFormat=legend,
            refId=_ref_id(index),
            instant=instant,
            format=G.TABLE_TARGET_FORMAT if table else G.TIME_SERIES_TARGET_FORMAT,
        )
        for index, (expr, legend) in enumerate(queries_and_legends)
    ]


def with_exemplars(prom_targets: Sequence[PromTarget]) -> list[PromTarget]:
    """Ask for exemplars on the first range query that reads exemplar-bearing series: the dots on a
    latency or cost graph are the link from a spike to the trace that caused it. Once per panel,
    because the p50, p95 and p99 of a histogram read the same buckets and would draw every exemplar
    three times. Only time series draw them, so stats and tables never pay for the exemplar query."""
    first = next((target.refId for target in prom_targets
                  if not target.instant and uses_exemplar_series(target.expr)), None)
    return [attr.evolve(target, exemplar=target.refId == first) for target in prom_targets]


# --- Data links -------------------------------------------------------------------------------

# Grafana placeholders stay literal in a link URL: Grafana interpolates and URI-encodes them when
# the link is clicked, so only the text around them is encoded here.
_ENCODED_PLACEHOLDER = re.compile(r"%24%7B([\w.]+)%7D")


def tempo_search_url(traceql: str) -> str:
    """Explore URL that runs a TraceQL search on `${tempo}` over the panel's time range."""
    pane = {
        "datasource": TEMPO["uid"],
        "queries": [{
            "datasource": TEMPO,
            "limit": 20,
            "query": traceql,
            "queryType": "traceql",
            "refId": "A",
            "tableType": "traces",
        }],
        "range": {"from": "${__from}", "to": "${__to}"},
    }
    encoded = quote(json.dumps({"traces": pane}, sort_keys=True, separators=(",", ":")), safe="")
    return "/explore?schemaVersion=1&panes=" + _ENCODED_PLACEHOLDER.sub(r"${\1}", encoded)


def data_link(title: str, url: str) -> dict[str, Any]:
    """A field data link that opens in a new tab (the dashboard stays where it was)."""
    return {"targetBlank": True, "title": title, "url": url}


def series_label(label: str) -> str:
    """Placeholder for a label of the clicked series in a time-series data link."""
    return f"${{__field.labels.{label}}}"


def row_field(field: str) -> str:
    """Placeholder for a field of the clicked row in a table data link."""
    return f"${{__data.fields.{field}}}"


# --- Panels -----------------------------------------------------------------------------------


def _grid(width: int, height: int) -> G.GridPos:
    return G.GridPos(h=height, w=width, x=0, y=0)


def _check_unit(title: str, unit: str) -> str:
    if not unit:
        raise ValueError(f"panel {title!r} needs a unit")
    return unit


def timeseries(title: str, *, question: str, details: str, unit: str, targets: list[PromTarget],
               width: int = 12, height: int = TIMESERIES_HEIGHT, stacked: bool = False,
               links: Sequence[Mapping[str, Any]] = (),
               thresholds: Sequence[Mapping[str, Any]] | None = None) -> G.TimeSeries:
    """A time series with a table legend (mean, max, last) and a sorted shared tooltip."""
    extra: dict[str, Any] = {}
    if links:
        extra = {"fieldConfig": {"defaults": {"links": list(links)}}}
    return G.TimeSeries(
        title=title,
        maxDataPoints=None,
        description=describe(question, details),
        dataSource=PROMETHEUS,
        targets=with_exemplars(targets),
        unit=_check_unit(title, unit),
        gridPos=_grid(width, height),
        fillOpacity=25 if stacked else 5,
        stacking={"group": "A", "mode": "normal"} if stacked else {},
        legendDisplayMode="table",
        legendPlacement="bottom",
        legendCalcs=["mean", "max", "lastNotNull"],
        tooltipMode="multi",
        tooltipSort="desc",
        thresholds=list(thresholds or NEUTRAL),
        thresholdsStyleMode="line" if thresholds else "off",
        extraJson=extra or None,
    )


def stat(title: str, *, question: str, details: str, unit: str, targets: list[PromTarget],
         width: int = 6, height: int = STAT_HEIGHT,
         thresholds: Sequence[Mapping[str, Any]] = NEUTRAL, no_value: str = "No data",
         text_mode: str = "auto", mappings: Sequence[Mapping[str, Any]] = ()) -> G.Stat:
    """A single value (the last one), with a sparkline when the query is a range query."""
    instant = all(target.instant for target in targets)
    return G.Stat(
        title=title,
        maxDataPoints=None,
        description=describe(question, details),
        dataSource=PROMETHEUS,
        targets=targets,
        format=_check_unit(title, unit),
        gridPos=_grid(width, height),
        reduceCalc="lastNotNull",
        graphMode="none" if instant else "area",
        colorMode="value",
        thresholds=list(thresholds),
        noValue=no_value,
        textMode=text_mode,
        mappings=list(mappings),
    )


@dataclass(frozen=True)
class Column:
    """A value column of a table: its header and unit. Columns follow the targets' order."""

    header: str
    unit: str


def table(title: str, *, question: str, details: str, targets: list[PromTarget],
          columns: Sequence[Column], width: int = 12, height: int = TIMESERIES_HEIGHT,
          field_links: Mapping[str, Sequence[Mapping[str, Any]]] | None = None) -> G.Table:
    """A table of instant queries joined on their labels, sorted by the first value column."""
    if len(columns) != len(targets):
        raise ValueError(f"table {title!r}: one column per target")
    value_fields = (["Value"] if len(targets) == 1
                    else [f"Value #{target.refId}" for target in targets])
    overrides: list[dict[str, Any]] = [
        {"matcher": {"id": "byName", "options": column.header},
         "properties": [{"id": "unit", "value": _check_unit(title, column.unit)}]}
        for column in columns
    ]
    for field, links in sorted((field_links or {}).items()):
        overrides.append({"matcher": {"id": "byName", "options": field},
                          "properties": [{"id": "links", "value": list(links)}]})
    transformations: list[dict[str, Any]] = []
    if len(targets) > 1:
        transformations.append({"id": "merge", "options": {}})
    transformations.append({"id": "organize", "options": {
        "excludeByName": {"Time": True},
        "renameByName": {field: column.header for field, column in zip(value_fields, columns, strict=True)},
    }})
    return G.Table(
        title=title,
        maxDataPoints=None,
        description=describe(question, details),
        dataSource=PROMETHEUS,
        targets=targets,
        unit=columns[0].unit,
        gridPos=_grid(width, height),
        thresholds=list(NEUTRAL),
        overrides=overrides,
        transformations=transformations,
        sortBy=[G.TableSortByField(displayName=columns[0].header, desc=True)],
        filterable=True,
    )


def logs(title: str, *, question: str, details: str, expr: str, width: int = GRID_WIDTH,
         height: int = 10) -> G.Logs:
    """Newest-first log lines from `${loki}` with details (and so the trace_id link) enabled."""
    return G.Logs(
        title=title,
        description=describe(question, details),
        dataSource=LOKI,
        targets=[LokiTarget(expr=expr, refId="A")],
        gridPos=_grid(width, height),
        showTime=True,
        wrapLogMessages=True,
        enableLogDetails=True,
        sortOrder="Descending",
    )


@dataclass(frozen=True)
class Section:
    """A titled row of panels; panels flow left to right and wrap at the grid width."""

    title: str
    panels: Sequence[G.Panel]


def layout(sections: Sequence[Section]) -> list[G.Panel]:
    """Place rows and panels on the grid and number them: fixed ids and positions keep the
    generated JSON stable and links to a panel (viewPanel=<id>) valid across rebuilds."""
    placed: list[G.Panel] = []
    y = 0
    panel_id = 1
    for section in sections:
        placed.append(G.RowPanel(title=section.title, id=panel_id, gridPos=G.GridPos(1, GRID_WIDTH, 0, y)))
        panel_id += 1
        y += 1
        x = 0
        line_height = 0
        for panel in section.panels:
            width, height = panel.gridPos.w, panel.gridPos.h
            if x + width > GRID_WIDTH:
                y += line_height
                x = 0
                line_height = 0
            placed.append(attr.evolve(panel, id=panel_id, gridPos=G.GridPos(height, width, x, y)))
            panel_id += 1
            x += width
            line_height = max(line_height, height)
        y += line_height
    return placed


# --- Variables --------------------------------------------------------------------------------


@attr.s
class Variable(G.Template):
    """A template variable with the `definition` and All-selected `current` Grafana 10+ writes."""

    def to_json_data(self) -> dict[str, Any]:
        data = super().to_json_data()
        if self.type == "query":
            data["definition"] = self.query
        if self.includeAll and self.default == ALL:
            data["current"] = {"selected": True, "text": ["All"], "value": [ALL]}
        return data


def datasource_variable(name: str, label: str, plugin: str, input_name: str) -> Variable:
    """A datasource picker that starts on the datasource chosen at import (or provisioning's)."""
    return Variable(name=name, label=label, query=plugin, type="datasource",
                    default=f"${{{input_name}}}", refresh=G.REFRESH_ON_DASHBOARD_LOAD, regex="")


def query_variable(name: str, label: str, selector: str, *, all_value: str | None) -> Variable:
    """A multi-select filter listing a label's values; All matches `all_value`, or every listed
    value when all_value is None."""
    return Variable(
        name=name,
        label=label,
        query=f"label_values({selector}, {name})",
        dataSource=PROMETHEUS,
        includeAll=True,
        multi=True,
        allValue=all_value,
        default=ALL,
        refresh=G.REFRESH_ON_TIME_RANGE_CHANGE,
        sort=G.SORT_ALPHA_IGNORE_CASE_ASC,
        regex="",
    )


# All of service matches only non-empty values: LogQL refuses a selector that matches the empty
# string, and the same $service filters the Loki panel. Every span has a service.name.
SERVICE_ALL = ".+"
# Other labels are empty on series where they do not apply (a tool call has no model), so All
# must match the empty value too.
LABEL_ALL = ".*"


def domain_variables(scope: queries.Scope) -> list[Variable]:
    """Datasource pickers plus a filter per filter label; each filter lists the values left by
    the filters before it (provider within the chosen services, model within those providers)."""
    reserved = {*DATASOURCE_VARIABLES, queries.JOB_LABEL, queries.INSTANCE_LABEL}
    clashes = reserved.intersection(scope.dimensions)
    if clashes:
        raise ValueError(f"dimension labels {sorted(clashes)} clash with dashboard variables")
    variables = [
        datasource_variable(PROMETHEUS_VARIABLE, "Prometheus", "prometheus", PROMETHEUS_INPUT),
        datasource_variable(TEMPO_VARIABLE, "Tempo", "tempo", TEMPO_INPUT),
        datasource_variable(LOKI_VARIABLE, "Loki", "loki", LOKI_INPUT),
    ]
    chain: list[str] = []
    for label in scope.filter_labels:
        selector = scope.select(catalog.OPERATION_DURATION, suffix=queries.COUNT,
                                only=chain if label in (catalog.PROVIDER, catalog.MODEL) else chain[:1])
        all_value = SERVICE_ALL if label == catalog.SERVICE else LABEL_ALL
        variables.append(query_variable(label, label.replace("_", " ").capitalize(), selector,
                                        all_value=all_value))
        chain.append(label)
    return variables


def scrape_variables() -> list[Variable]:
    """Job and instance of the exporter's scrape targets, found through its build info."""
    build_info = catalog.BUILD_INFO.name
    return [
        query_variable(queries.JOB_LABEL, "Job", build_info, all_value=None),
        query_variable(queries.INSTANCE_LABEL, "Instance",
                       f"{build_info}{{{queries.variable_filter(queries.JOB_LABEL)}}}", all_value=None),
    ]


# --- Dashboard --------------------------------------------------------------------------------


def inputs() -> list[G.DataSourceInput]:
    """The datasources Grafana's import dialog asks for."""
    return [
        G.DataSourceInput(name=PROMETHEUS_INPUT, label="Prometheus", pluginId="prometheus",
                          pluginName="Prometheus",
                          description="Prometheus that scrapes genai-exporter (with exemplar storage)."),
        G.DataSourceInput(name=TEMPO_INPUT, label="Tempo", pluginId="tempo", pluginName="Tempo",
                          description="Tempo holding the traces the exporter's spans came from."),
        G.DataSourceInput(name=LOKI_INPUT, label="Loki", pluginId="loki", pluginName="Loki",
                          description="Loki holding the services' logs, labelled service_name."),
    ]


PANEL_NAMES = {"timeseries": "Time series", "stat": "Stat", "table": "Table", "logs": "Logs"}


@attr.s
class PortableDashboard(G.Dashboard):
    """A dashboard whose JSON also lists what it needs (`__requires`) for Grafana's import."""

    def to_json_data(self) -> dict[str, Any]:
        data = super().to_json_data()
        panel_types = sorted({panel.to_json_data()["type"] for panel in self._iter_panels()} - {"row"})
        data["__requires"] = [
            {"type": "grafana", "id": "grafana", "name": "Grafana", "version": GRAFANA_MIN_VERSION},
            *({"type": "datasource", "id": source.pluginId, "name": source.pluginName, "version": "1.0.0"}
              for source in self.inputs),
            *({"type": "panel", "id": panel_type, "name": PANEL_NAMES.get(panel_type, panel_type),
               "version": ""} for panel_type in panel_types),
        ]
        return data


def genai_dashboard(*, uid: str, title: str, description: str, sections: Sequence[Section],
                    variables: Sequence[Variable]) -> PortableDashboard:
    """A dashboard in house style: fixed uid, shared tag and links to its sibling dashboards."""
    return PortableDashboard(
        uid=uid,
        title=title,
        description=description,
        tags=[DASHBOARD_TAG],
        inputs=inputs(),
        panels=layout(sections),
        templating=G.Templating(list=list(variables)),
        links=[G.DashboardLink(type="dashboards", tags=[DASHBOARD_TAG], asDropdown=False,
                               includeVars=True, keepTime=True, title="GenAI dashboards")],
        time=G.Time("now-6h", "now"),
        refresh="1m",
        timezone="browser",
        graphTooltip=G.GRAPH_TOOLTIP_MODE_SHARED_CROSSHAIR,
        schemaVersion=SCHEMA_VERSION,
        editable=True,
        version=1,
    )
