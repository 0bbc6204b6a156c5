"""Grafana datasource provisioning of the compose stack: Prometheus, Tempo and Loki linked together.

Generated (by dashboards.build) rather than hand-written because it names metrics, labels and
span attributes: the exemplar label, the span-to-metrics queries and the span-to-logs tags come
from the catalogue, the exporter and semconv like the dashboards' queries do.

Links: Prometheus exemplars -> Tempo (by the exemplar's trace_id); Tempo spans -> Loki logs of
the same service and trace, and -> Prometheus metrics of the same service/operation/tool; Loki log
lines -> Tempo through a trace_id derived field. No service map: it needs the service-graph
metrics of Tempo's metrics-generator, which the compose stack does not run.
"""

from __future__ import annotations

from typing import Any

from dashboards import queries
from genai_exporter import catalog, semconv
from genai_exporter.expose import EXEMPLAR_TRACE_ID

# Fixed uids: the datasources reference each other by uid.
PROMETHEUS_UID = "prometheus"
TEMPO_UID = "tempo"
LOKI_UID = "loki"
# URLs are the docker-compose service names and default ports.
PROMETHEUS_URL = "http://prometheus:9090"
TEMPO_URL = "http://tempo:3200"
LOKI_URL = "http://loki:3100"
# Must equal Prometheus' scrape_interval: Grafana derives $__rate_interval from it.
SCRAPE_INTERVAL = "15s"
# How far around a span to look for its logs and metrics (clocks and batching skew).
SPAN_TIME_SHIFT = "5m"

# Span attribute -> metric label, for `$__tags` in the span-to-metrics queries: only attributes
# whose value (in current semconv) the exporter copies into the label as is. Not the model: the exporter labels a
# call with its price entry's canonical name (gpt-4o-mini-2024-07-18 counts as gpt-4o-mini), so
# the span's model would select nothing. A tag the span lacks is left out of the selector.
SPAN_TAGS_TO_METRIC_LABELS = (
    (semconv.SERVICE_NAME, catalog.SERVICE),
    (semconv.OPERATION_NAME, catalog.OPERATION),
    (semconv.PROVIDER_NAME, catalog.PROVIDER),
    (semconv.AGENT_NAME, catalog.AGENT),
    (semconv.TOOL_NAME, catalog.TOOL),
)
SPAN_TAGS = "$__tags"


def span_metric_queries() -> list[dict[str, str]]:
    """Metrics Tempo offers from a span: its operation's latency, error ratio and spend.

    `{$__tags}` becomes the span's mapped labels (possibly none: `name{}` is valid PromQL).
    """
    duration = catalog.OPERATION_DURATION.name
    count = f"{duration}{queries.COUNT}"
    error = queries.equals(catalog.STATUS, catalog.STATUS_ERROR)
    window = queries.RATE_INTERVAL
    return [
        {"name": "Latency p95 of this operation",
         "query": f"histogram_quantile(0.95, sum by ({queries.BUCKET_LABEL}) "
                  f"(rate({duration}{queries.BUCKET}{{{SPAN_TAGS}}}[{window}])))"},
        {"name": "Error ratio of this operation",
         "query": f"sum(rate({count}{{{error}, {SPAN_TAGS}}}[{window}])) "
                  f"/ sum(rate({count}{{{SPAN_TAGS}}}[{window}]))"},
        {"name": "Spend per hour (USD)",
         "query": f"sum(rate({catalog.COST.name}{{{SPAN_TAGS}}}[{window}])) * {queries.SECONDS_PER_HOUR}"},
    ]


def _escape(value: Any) -> Any:
    """Grafana expands $VAR and ${VAR} in provisioning files as environment variables; `$$` is a
    literal `$`. Every Grafana placeholder in these values must survive, so every `$` is escaped."""
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, list):
        return [_escape(item) for item in value]
    if isinstance(value, dict):
        return {key: _escape(item) for key, item in value.items()}
    return value


def datasources_document() -> dict[str, Any]:
    """The provisioning document, with `$` not yet escaped (what Grafana ends up with)."""
    prometheus = {
        "name": "Prometheus",
        "uid": PROMETHEUS_UID,
        "type": "prometheus",
        "access": "proxy",
        "url": PROMETHEUS_URL,
        "isDefault": True,
        "editable": False,
        "jsonData": {
            "httpMethod": "POST",
            "timeInterval": SCRAPE_INTERVAL,
            "exemplarTraceIdDestinations": [
                {"name": EXEMPLAR_TRACE_ID, "datasourceUid": TEMPO_UID, "urlDisplayLabel": "Trace in Tempo"},
            ],
        },
    }
    tempo = {
        "name": "Tempo",
        "uid": TEMPO_UID,
        "type": "tempo",
        "access": "proxy",
        "url": TEMPO_URL,
        "editable": False,
        "jsonData": {
            "tracesToLogsV2": {
                "datasourceUid": LOKI_UID,
                "spanStartTimeShift": f"-{SPAN_TIME_SHIFT}",
                "spanEndTimeShift": SPAN_TIME_SHIFT,
                "tags": [{"key": semconv.SERVICE_NAME, "value": queries.LOKI_SERVICE_LABEL}],
                "filterByTraceID": True,
                "filterBySpanID": False,
                # OTLP logs keep trace_id as structured metadata, not in the line: filter on it.
                "customQuery": True,
                "query": f'{{${{__tags}}}} | {EXEMPLAR_TRACE_ID}="${{__trace.traceId}}"',
            },
            "tracesToMetrics": {
                "datasourceUid": PROMETHEUS_UID,
                "spanStartTimeShift": f"-{SPAN_TIME_SHIFT}",
                "spanEndTimeShift": SPAN_TIME_SHIFT,
                "tags": [{"key": key, "value": label} for key, label in SPAN_TAGS_TO_METRIC_LABELS],
                "queries": span_metric_queries(),
            },
            "nodeGraph": {"enabled": True},
            "search": {"hide": False},
        },
    }
    loki = {
        "name": "Loki",
        "uid": LOKI_UID,
        "type": "loki",
        "access": "proxy",
        "url": LOKI_URL,
        "editable": False,
        "jsonData": {
            "derivedFields": [
                # OTLP-ingested logs: trace_id is structured metadata of the log line.
                {"name": EXEMPLAR_TRACE_ID, "matcherType": "label", "matcherRegex": EXEMPLAR_TRACE_ID,
                 "datasourceUid": TEMPO_UID, "url": "${__value.raw}", "urlDisplayLabel": "Trace in Tempo"},
                # Logs shipped as text: a trace_id=<32 hex> (or "trace_id": "<hex>") in the line.
                {"name": f"{EXEMPLAR_TRACE_ID} in line", "matcherType": "regex",
                 "matcherRegex": rf'{EXEMPLAR_TRACE_ID}"?\s*[=:]\s*"?([0-9a-fA-F]{{32}})',
                 "datasourceUid": TEMPO_UID, "url": "${__value.raw}", "urlDisplayLabel": "Trace in Tempo"},
            ],
        },
    }
    return {"apiVersion": 1, "datasources": [prometheus, tempo, loki]}


def provisioning_document() -> dict[str, Any]:
    """The document as written to disk, with `$` escaped for Grafana's provisioning."""
    return _escape(datasources_document())
