"""Specification of Grafana's provisioning in deploy/grafana/: the dashboard provider loads the
generated dashboards where docker-compose mounts them, and the Prometheus, Tempo and Loki datasources
link to each other (exemplars -> Tempo, spans -> logs and metrics, log lines -> Tempo) under the uids
the dashboards and links expect."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from dashboards import build, provisioning, queries
from deploy.kubernetes import generate
from genai_exporter import catalog, semconv
from genai_exporter.expose import EXEMPLAR_TRACE_ID
from tests import grafana
from tests.grafana import ROOT

PROVISIONING = ROOT / "deploy" / "grafana" / "provisioning"
PROVIDER_FILE = PROVISIONING / "dashboards" / "genai.yml"
COMPOSE_FILE = ROOT / "docker-compose.yml"
PROMETHEUS_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
# A span of the demo agent's trace, as Grafana fills `$__tags` from its attributes.
SPAN_TAGS = 'service="support-bot", operation="execute_tool", tool="search_docs"'


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _datasources() -> dict[str, dict[str, Any]]:
    """The provisioned datasources by type, as Grafana reads the file (`$$` is a literal `$`)."""
    text = build.DATASOURCES_PATH.read_text(encoding="utf-8").replace("$$", "$")
    return {source["type"]: source for source in yaml.safe_load(text)["datasources"]}


def _grafana_mounts() -> dict[str, str]:
    """Host path (relative to the repository) -> container path of the grafana service's bind mounts."""
    mounts = {}
    for volume in _yaml(COMPOSE_FILE)["services"]["grafana"]["volumes"]:
        source, target, *_ = volume.split(":")
        mounts[source.removeprefix("./")] = target
    return mounts


# --- Dashboard provider -----------------------------------------------------------------------------------


def test_dashboard_provider_reads_the_directory_compose_mounts_the_generated_dashboards_at() -> None:
    (provider,) = _yaml(PROVIDER_FILE)["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == _grafana_mounts()[str(build.GENERATED_DIR.relative_to(ROOT))]


def test_compose_mounts_the_provider_where_grafana_looks_for_dashboard_providers() -> None:
    assert _grafana_mounts()[str(PROVIDER_FILE.parent.relative_to(ROOT))] == "/etc/grafana/provisioning/dashboards"


def test_provisioned_dashboards_cannot_be_changed_or_deleted_from_the_ui() -> None:
    # The JSON files are generated from dashboards/*.py: a UI edit would be lost at the next rebuild.
    (provider,) = _yaml(PROVIDER_FILE)["providers"]
    assert (provider["allowUiUpdates"], provider["disableDeletion"]) == (False, True)


def test_dashboards_land_in_the_same_folder_under_compose_and_kubernetes() -> None:
    (provider,) = _yaml(PROVIDER_FILE)["providers"]
    assert provider["folder"] == generate.DASHBOARD_FOLDER_ANNOTATION["grafana_folder"]


# --- Datasources ----------------------------------------------------------------------------------------


def test_one_datasource_per_type_with_the_uids_the_links_between_them_use() -> None:
    # One per type: a dashboard provisioned without import resolves ${datasource}, ${tempo} and ${loki}
    # to the only datasource of their type.
    text = build.DATASOURCES_PATH.read_text(encoding="utf-8")
    assert sorted(source["type"] for source in yaml.safe_load(text)["datasources"]) == ["loki", "prometheus", "tempo"]
    assert {kind: source["uid"] for kind, source in _datasources().items()} == {
        "prometheus": provisioning.PROMETHEUS_UID, "tempo": provisioning.TEMPO_UID, "loki": provisioning.LOKI_UID}


def test_prometheus_exemplars_open_their_trace_in_tempo_by_trace_id() -> None:
    destinations = _datasources()["prometheus"]["jsonData"]["exemplarTraceIdDestinations"]
    assert [(d["name"], d["datasourceUid"]) for d in destinations] == [(EXEMPLAR_TRACE_ID, provisioning.TEMPO_UID)]
    assert EXEMPLAR_TRACE_ID == "trace_id"


def test_prometheus_datasource_knows_the_scrape_interval_that_rate_interval_derives_from() -> None:
    config = _yaml(PROMETHEUS_CONFIG)
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == "genai-exporter"]
    scrape_interval = job.get("scrape_interval", config["global"]["scrape_interval"])
    assert _datasources()["prometheus"]["jsonData"]["timeInterval"] == scrape_interval


def test_tempo_spans_open_the_logs_of_their_service_and_trace_in_loki() -> None:
    to_logs = _datasources()["tempo"]["jsonData"]["tracesToLogsV2"]
    assert to_logs["datasourceUid"] == provisioning.LOKI_UID
    assert to_logs["tags"] == [{"key": semconv.SERVICE_NAME, "value": queries.LOKI_SERVICE_LABEL}]
    # OTLP logs keep trace_id as structured metadata: the query filters on it, not on the line text.
    assert to_logs["customQuery"] is True
    assert to_logs["query"] == '{${__tags}} | trace_id="${__trace.traceId}"'


def test_tempo_spans_open_the_exporters_metrics_of_the_same_service_operation_and_tool() -> None:
    to_metrics = _datasources()["tempo"]["jsonData"]["tracesToMetrics"]
    assert to_metrics["datasourceUid"] == provisioning.PROMETHEUS_UID
    assert {tag["key"]: tag["value"] for tag in to_metrics["tags"]} == {
        semconv.SERVICE_NAME: catalog.SERVICE, semconv.OPERATION_NAME: catalog.OPERATION,
        semconv.PROVIDER_NAME: catalog.PROVIDER, semconv.AGENT_NAME: catalog.AGENT, semconv.TOOL_NAME: catalog.TOOL}
    assert [query["name"] for query in to_metrics["queries"]] == [
        "Latency p95 of this operation", "Error ratio of this operation", "Spend per hour (USD)"]


def test_tempo_span_metric_span_queriesare_valid_promql_with_and_without_span_tags(tmp_path: Path) -> None:
    span_queries = _datasources()["tempo"]["jsonData"]["tracesToMetrics"]["queries"]
    recorded = [{"record": f"span_metrics:query_{index}:{tags_name}",
                 "expr": grafana.interpolate(query["query"], {**grafana.QUERY_BUILTINS, "__tags": tags})}
                for index, query in enumerate(span_queries)
                for tags_name, tags in (("tagged", SPAN_TAGS), ("untagged", ""))]
    (tmp_path / "span.rules.yml").write_text(yaml.safe_dump({"groups": [{"name": "span", "rules": recorded}]}),
                                             encoding="utf-8")
    result = grafana.promtool("check", "rules", "span.rules.yml", cwd=tmp_path)
    assert result.returncode == 0 and f"SUCCESS: {len(recorded)} rules found" in result.stdout, (
        result.stdout + result.stderr)


def test_tempo_span_metric_queries_read_only_catalogue_series() -> None:
    span_queries = _datasources()["tempo"]["jsonData"]["tracesToMetrics"]["queries"]
    read = {name for query in span_queries for selector in grafana.selectors(query["query"].replace("$__tags", ""))
            for name in selector.names}
    assert read == {catalog.COST.name, f"{catalog.OPERATION_DURATION.name}_bucket",
                    f"{catalog.OPERATION_DURATION.name}_count"}


def test_loki_log_lines_open_their_trace_in_tempo() -> None:
    fields = _datasources()["loki"]["jsonData"]["derivedFields"]
    assert {(field["datasourceUid"], field["url"]) for field in fields} == {
        (provisioning.TEMPO_UID, "${__value.raw}")}
    (metadata,) = [field for field in fields if field["matcherType"] == "label"]
    assert metadata["matcherRegex"] == EXEMPLAR_TRACE_ID


def test_loki_finds_the_trace_id_in_a_text_log_line() -> None:
    (in_line,) = [field for field in _datasources()["loki"]["jsonData"]["derivedFields"]
                  if field["matcherType"] == "regex"]
    lines = {
        'level=warn msg="tool returned no results" tool=search_docs trace_id=4bf92f3577b34da6a3ce929d0e0e4736':
            "4bf92f3577b34da6a3ce929d0e0e4736",
        '{"level": "error", "trace_id": "0af7651916cd43dd8448eb211c80319c", "msg": "rate limited"}':
            "0af7651916cd43dd8448eb211c80319c",
    }
    for line, trace_id in lines.items():
        match = re.search(in_line["matcherRegex"], line)
        assert match is not None and match.group(1) == trace_id, line


def test_every_dollar_in_the_datasources_file_is_escaped_from_environment_expansion() -> None:
    # Grafana expands $NAME and ${NAME} in provisioning files from the environment; `$$` is a `$`.
    text = build.DATASOURCES_PATH.read_text(encoding="utf-8")
    assert "$${__tags}" in text
    assert "$" not in text.replace("$$", "")
