"""Specification of the Grafana dashboards: generated files fresh and deterministic, every panel
described and in a unit, portable on import, every query valid PromQL (real promtool) that reads only
what the exporter, Prometheus or the rule file exposes, every variable defined, and links to Tempo and
Loki wired to the datasource variables."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import yaml
from prometheus_client.process_collector import ProcessCollector

from alerts import rules
from dashboards import build, cost, exporter_health, lib, queries, reliability
from genai_exporter import catalog
from tests import grafana
from tests.grafana import ROOT

DOCUMENTS = grafana.documents()
IDS = [document["uid"] for document in DOCUMENTS]
SCOPE = queries.DEFAULT_SCOPE
DATASOURCE_INPUTS = {lib.PROMETHEUS_INPUT: "prometheus", lib.TEMPO_INPUT: "tempo", lib.LOKI_INPUT: "loki"}
METRIC_PANEL_TYPES = frozenset({"timeseries", "stat", "table"})


def _all_targets() -> list[tuple[dict[str, Any], dict[str, Any], dict[str, Any]]]:
    return [(document, panel, target) for document in DOCUMENTS
            for panel, target in grafana.prometheus_targets(document)]


def _links(panel: dict[str, Any]) -> list[dict[str, Any]]:
    """Data links of a panel: field defaults (time series) and per-column overrides (tables)."""
    field_config = panel.get("fieldConfig", {})
    found = list(field_config.get("defaults", {}).get("links", []))
    for override in field_config.get("overrides", []):
        found += [link for prop in override["properties"] if prop["id"] == "links" for link in prop["value"]]
    return found


def _recorded_labels(known: dict[str, frozenset[str]]) -> dict[str, frozenset[str]]:
    """Labels a recorded series can carry: those of the series its expression reads, plus its own."""
    recorded: dict[str, frozenset[str]] = {}
    for group in rules.build_groups():
        for rule in group.rules:
            if isinstance(rule, rules.RecordingRule):
                read = {name for selector in grafana.selectors(rule.expr) for name in selector.names}
                labels = set(rule.labels).union(*(known.get(name, recorded.get(name, ())) for name in read))
                recorded[rule.record] = recorded.get(rule.record, frozenset()) | labels
    return recorded


def _labels_by_series() -> dict[str, frozenset[str]]:
    """Every series a dashboard may read, with the labels it carries in Prometheus: the catalogue's
    (with the default dimensions), Prometheus' own scrape series, the exporter's process metrics and
    the recording rules of alerts/rules.py."""
    known: dict[str, frozenset[str]] = {}
    for spec in catalog.ALL_METRICS:
        for name in catalog.series_names(spec):
            bucket = {queries.BUCKET_LABEL} if name.endswith(queries.BUCKET) else set()
            known[name] = SCOPE.labels_of(spec) | queries.SCRAPE_LABELS | bucket
    for name in queries.PROMETHEUS_SERIES | queries.PROCESS_SERIES:
        known[name] = queries.SCRAPE_LABELS
    return {**known, **_recorded_labels(known)}


LABELS_BY_SERIES = _labels_by_series()


# --- Generated files -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(build.generated_files()), ids=lambda path: str(path.relative_to(ROOT)))
def test_checked_in_file_is_what_the_sources_generate(path: Path) -> None:
    expected = build.generated_files()[path]
    assert path.is_file(), f"{path.relative_to(ROOT)} is missing: run `make dashboards`"
    assert path.read_text(encoding="utf-8") == expected, f"{path.relative_to(ROOT)} is stale: run `make dashboards`"


def test_generated_dashboards_do_not_depend_on_the_hash_seed(tmp_path: Path) -> None:
    config = tmp_path / "exporter.yml"
    config.write_text("dimensions:\n  - {label: user_tier, attributes: [user.tier]}\n"
                      "  - {label: feature, attributes: [app.feature]}\n", encoding="utf-8")
    outputs = []
    for seed in ("1", "4242"):
        out = tmp_path / f"seed-{seed}"
        subprocess.run([sys.executable, "-m", "dashboards.build", "--config", str(config), "--out", str(out)],
                       cwd=ROOT, env={**os.environ, "PYTHONHASHSEED": seed}, check=True, timeout=120)
        outputs.append({path.name: path.read_text(encoding="utf-8") for path in sorted(out.iterdir())})
    assert outputs[0] == outputs[1]
    assert sorted(outputs[0]) == ["genai-cost.json", "genai-exporter-health.json", "genai-reliability.json"]


def test_dashboards_built_for_another_config_filter_on_its_dimension_labels(tmp_path: Path) -> None:
    config = tmp_path / "exporter.yml"
    config.write_text("dimensions:\n  - {label: team, attributes: [app.team]}\n", encoding="utf-8")
    assert build.main(["--config", str(config), "--out", str(tmp_path / "out")]) == 0
    text = (tmp_path / "out" / "genai-cost.json").read_text(encoding="utf-8")
    document = json.loads(text)
    assert [v["name"] for v in document["templating"]["list"]] == [
        "datasource", "tempo", "loki", "service", "provider", "model", "team"]
    assert "Spend by team" in [panel["title"] for panel in grafana.panels(document)]
    assert "user_tier" not in text


def test_check_mode_names_the_stale_file_and_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "exporter.yml"
    config.write_text("dimensions: []\n", encoding="utf-8")
    out = tmp_path / "out"
    args = ["--config", str(config), "--out", str(out)]
    assert build.main(args) == 0
    assert build.main([*args, "--check"]) == 0
    (out / "genai-reliability.json").write_text("{}\n", encoding="utf-8")
    capsys.readouterr()
    assert build.main([*args, "--check"]) == 1
    assert capsys.readouterr().err == f"stale: {out / 'genai-reliability.json'}\n"


def test_docs_list_every_panel_with_the_question_it_answers_and_its_queries() -> None:
    docs = (ROOT / "docs" / "dashboards.md").read_text(encoding="utf-8")
    for document in DOCUMENTS:
        for panel in grafana.panels(document):
            row = f"| {panel['title']} | {lib.question_of(panel['description'])} | "
            assert row in docs, panel["title"]
            for target in panel["targets"]:
                assert " ".join(target["expr"].split()).replace("|", "\\|") in docs


def test_readme_links_the_panel_table() -> None:
    assert "[docs/dashboards.md](docs/dashboards.md)" in (ROOT / "README.md").read_text(encoding="utf-8")


# --- The dashboard model ----------------------------------------------------------------------------


def test_dashboards_have_the_fixed_uids_the_alerts_link_to() -> None:
    assert IDS == [cost.UID, reliability.UID, exporter_health.UID]
    assert set(IDS) == {rules.COST_DASHBOARD, rules.RELIABILITY_DASHBOARD, rules.EXPORTER_DASHBOARD}


def test_every_alert_dashboard_link_opens_one_of_the_dashboards() -> None:
    linked = {re.match(r"/d/([\w-]+)\?", rule.dashboard_url).group(1)
              for group in rules.build_groups() for rule in group.rules if isinstance(rule, rules.AlertRule)}
    assert linked and linked <= set(IDS)


@pytest.mark.parametrize("document", DOCUMENTS, ids=IDS)
def test_every_panel_opens_its_description_with_the_question_it_answers(document: dict[str, Any]) -> None:
    for panel in grafana.panels(document):
        question, _, details = panel["description"].partition("\n\n")
        assert question.endswith("?") and "\n" not in question, panel["title"]
        assert len(details) > 40, panel["title"]


@pytest.mark.parametrize("document", DOCUMENTS, ids=IDS)
def test_every_metric_panel_shows_its_values_in_a_unit(document: dict[str, Any]) -> None:
    for panel in grafana.panels(document):
        if panel["type"] == "table":
            units = {override["matcher"]["options"]: prop["value"] for override in panel["fieldConfig"]["overrides"]
                     for prop in override["properties"] if prop["id"] == "unit"}
            renamed = panel["transformations"][-1]["options"]["renameByName"].values()
            assert set(renamed) == set(units) and all(units.values()), panel["title"]
        elif panel["type"] in METRIC_PANEL_TYPES:
            assert panel["fieldConfig"]["defaults"]["unit"], panel["title"]
        else:
            # A log panel shows lines, not values: it has no unit to give.
            assert (panel["type"], panel["datasource"]["type"]) == ("logs", "loki"), panel["title"]


@pytest.mark.parametrize("document", DOCUMENTS, ids=IDS)
def test_panels_have_unique_ids_and_do_not_overlap_on_the_grid(document: dict[str, Any]) -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in document["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= lib.GRID_WIDTH, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]
    ids = [panel["id"] for panel in document["panels"]]
    assert ids == list(range(1, len(ids) + 1))


@pytest.mark.parametrize("document", DOCUMENTS, ids=IDS)
def test_import_asks_for_a_prometheus_a_tempo_and_a_loki_datasource(document: dict[str, Any]) -> None:
    assert {(i["name"], i["type"], i["pluginId"]) for i in document["__inputs"]} == {
        (name, "datasource", plugin) for name, plugin in DATASOURCE_INPUTS.items()}


@pytest.mark.parametrize("document", DOCUMENTS, ids=IDS)
def test_requires_lists_grafana_the_datasources_and_every_panel_type_used(document: dict[str, Any]) -> None:
    required = {(r["type"], r["id"]) for r in document["__requires"]}
    used_panels = {("panel", panel["type"]) for panel in grafana.panels(document)}
    assert required == {("grafana", "grafana"), *(("datasource", p) for p in DATASOURCE_INPUTS.values()),
                        *used_panels}


@pytest.mark.parametrize("document", DOCUMENTS, ids=IDS)
def test_datasource_variables_start_on_the_datasource_picked_at_import(document: dict[str, Any]) -> None:
    variables = grafana.variables(document)
    for name, plugin, input_name in ((lib.PROMETHEUS_VARIABLE, "prometheus", lib.PROMETHEUS_INPUT),
                                     (lib.TEMPO_VARIABLE, "tempo", lib.TEMPO_INPUT),
                                     (lib.LOKI_VARIABLE, "loki", lib.LOKI_INPUT)):
        variable = variables[name]
        assert (variable["type"], variable["query"], variable["current"]["value"]) == (
            "datasource", plugin, f"${{{input_name}}}")


@pytest.mark.parametrize("document", DOCUMENTS, ids=IDS)
def test_every_query_goes_to_the_datasource_variable_of_its_type(document: dict[str, Any]) -> None:
    expected = {"prometheus": f"${{{lib.PROMETHEUS_VARIABLE}}}", "loki": f"${{{lib.LOKI_VARIABLE}}}"}
    for panel in grafana.panels(document):
        for source in (panel["datasource"], *(target["datasource"] for target in panel["targets"])):
            assert source["uid"] == expected[source["type"]], panel["title"]
    for variable in grafana.variables(document).values():
        if variable["type"] == "query":
            assert variable["datasource"] == {"type": "prometheus", "uid": expected["prometheus"]}


@pytest.mark.parametrize("document", DOCUMENTS, ids=IDS)
def test_every_variable_a_dashboard_uses_is_defined_by_it(document: dict[str, Any]) -> None:
    texts = [json.dumps(panel) for panel in document["panels"]]
    texts += [variable["query"] for variable in document["templating"]["list"]]
    used = set().union(*(grafana.used_variables(unquote(text)) for text in texts))
    builtins = {name for name in used if name in grafana.QUERY_BUILTINS or grafana.LINK_BUILTIN.fullmatch(name)}
    assert used - builtins <= set(grafana.variables(document))


@pytest.mark.parametrize("document", DOCUMENTS, ids=IDS)
def test_filter_variables_are_multi_value_and_only_used_in_regex_matchers(document: dict[str, Any]) -> None:
    filters = [v for v in document["templating"]["list"] if v["type"] == "query"]
    assert [v["name"] for v in filters][:len(SCOPE.filter_labels)] == list(SCOPE.filter_labels)
    exprs = [target["expr"] for panel in grafana.panels(document) for target in panel["targets"]]
    exprs += [variable["query"] for variable in filters]
    for variable in filters:
        assert (variable["multi"], variable["includeAll"]) == (True, True), variable["name"]
        uses = {match.groups() for expr in exprs
                for match in re.finditer(rf'(\w+)(=~|!~|!=|=)"\${variable["name"]}"', expr)}
        assert uses, f"${variable['name']} filters nothing"
        # The same $service filters the Loki panel, on the label Loki gives service.name.
        labels = {variable["name"], queries.LOKI_SERVICE_LABEL} if variable["name"] == catalog.SERVICE else {
            variable["name"]}
        assert {operator for _, operator in uses} == {"=~"}, variable["name"]
        assert {label for label, _ in uses} <= labels, variable["name"]


@pytest.mark.parametrize("document", DOCUMENTS, ids=IDS)
def test_each_filter_lists_only_values_left_by_the_filters_before_it(document: dict[str, Any]) -> None:
    seen: list[str] = []
    for variable in document["templating"]["list"]:
        if variable["type"] == "query":
            assert grafana.used_variables(variable["query"]) <= set(seen), variable["name"]
            seen.append(variable["name"])


def test_service_filter_all_matches_only_named_services_as_loki_requires() -> None:
    # Loki refuses a stream selector that matches the empty string, and every span has a service.
    for document in DOCUMENTS:
        assert grafana.variables(document)[catalog.SERVICE]["allValue"] == ".+"


def test_label_filters_other_than_service_match_series_without_the_label_when_all() -> None:
    # A tool call has no model: with All selected, model=~"$model" must still match it.
    for document in DOCUMENTS:
        for label in (catalog.PROVIDER, catalog.MODEL, *SCOPE.dimensions):
            assert re.fullmatch(grafana.variables(document)[label]["allValue"], "")


# --- Queries ------------------------------------------------------------------------------------------


def test_every_query_is_valid_promql_according_to_promtool(tmp_path: Path) -> None:
    groups = []
    for document in DOCUMENTS:
        values = grafana.selected_values(document)
        # Record names say where a query comes from, so promtool's errors name the panel.
        prefix = document["uid"].replace("-", "_")
        recorded = [{"record": f"{prefix}:panel_{panel['id']}:{target['refId']}",
                     "expr": grafana.interpolate(target["expr"], values)}
                    for panel, target in grafana.prometheus_targets(document)]
        recorded += [{"record": f"{prefix}:variable:{name}", "expr": grafana.interpolate(
            grafana.variable_selector(variable)[0], values)}
            for name, variable in grafana.variables(document).items() if variable["type"] == "query"]
        groups.append({"name": document["uid"], "rules": recorded})
    (tmp_path / "dashboards.rules.yml").write_text(yaml.safe_dump({"groups": groups}), encoding="utf-8")
    result = grafana.promtool("check", "rules", "dashboards.rules.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {sum(len(group['rules']) for group in groups)} rules found" in result.stdout


def test_every_query_reads_only_series_the_exporter_prometheus_or_the_rules_expose() -> None:
    exprs = [target["expr"] for _, _, target in _all_targets()]
    exprs += [grafana.variable_selector(v)[0] for d in DOCUMENTS for v in d["templating"]["list"]
              if v["type"] == "query"]
    read = {name for expr in exprs for selector in grafana.selectors(expr) for name in selector.names}
    allowed = (catalog.all_series_names() | set(rules.RECORDING_RULES) | queries.PROMETHEUS_SERIES
               | queries.PROCESS_SERIES)
    assert read - allowed == set()
    assert read & catalog.all_series_names()


def test_process_series_the_health_dashboard_reads_are_exposed_by_the_process_collector() -> None:
    exposed = {sample.name for family in ProcessCollector(registry=None).collect() for sample in family.samples}
    assert exposed >= queries.PROCESS_SERIES


@pytest.mark.parametrize("document", DOCUMENTS, ids=IDS)
def test_every_label_a_query_matches_or_groups_by_is_a_label_of_the_series_it_reads(
        document: dict[str, Any]) -> None:
    for panel, target in grafana.prometheus_targets(document):
        expr = target["expr"]
        read = grafana.selectors(expr)
        readable: set[str] = set()
        for selector in read:
            carried = frozenset.intersection(*(LABELS_BY_SERIES[name] for name in selector.names))
            assert {label for label, _, _ in selector.matchers} <= carried, f"{panel['title']}: {expr}"
            readable |= carried
        assert grafana.grouping_labels(expr) <= readable, f"{panel['title']}: {expr}"
        shown = grafana.result_labels(expr) or readable
        assert grafana.legend_labels(target["legendFormat"]) <= shown, f"{panel['title']}: {target['legendFormat']}"


@pytest.mark.parametrize("document", DOCUMENTS, ids=IDS)
def test_every_filter_variable_lists_the_label_from_a_series_that_carries_it(document: dict[str, Any]) -> None:
    for name, variable in grafana.variables(document).items():
        if variable["type"] == "query":
            selector, label = grafana.variable_selector(variable)
            (read,) = grafana.selectors(selector)
            assert label == name
            assert all(label in LABELS_BY_SERIES[series] for series in read.names)


def test_every_range_window_is_the_rate_interval_or_the_dashboard_range() -> None:
    windows = {window for _, _, target in _all_targets() for window in re.findall(r"\[([^\]]+)\]", target["expr"])}
    assert windows == {"$__rate_interval", "$__range"}


def test_time_series_follow_the_zoom_and_totals_cover_the_range() -> None:
    for _, panel, target in _all_targets():
        windows = set(re.findall(r"\[([^\]]+)\]", target["expr"]))
        if target["instant"]:
            assert windows <= {"$__range"}, panel["title"]
        else:
            assert windows <= {"$__rate_interval"}, panel["title"]


def test_every_histogram_quantile_aggregates_bucket_rates_by_le() -> None:
    for _, panel, target in _all_targets():
        expr = target["expr"]
        calls = expr.count("histogram_quantile(")
        well_formed = re.findall(r"histogram_quantile\(0\.\d+, sum by \(([^)]*)\) \(rate\(\w+_bucket\{", expr)
        assert len(well_formed) == calls, f"{panel['title']}: {expr}"
        assert all("le" in [label.strip() for label in labels.split(",")] for labels in well_formed)


def test_latency_and_cost_time_series_ask_prometheus_for_exemplars_once() -> None:
    exemplar_series = re.compile(rf"\b({catalog.COST.name}|{catalog.OPERATION_DURATION.name}_bucket)\b")
    asking: dict[str, list[bool]] = {}
    for _, panel, target in _all_targets():
        if panel["type"] == "timeseries" and exemplar_series.search(target["expr"]):
            asking.setdefault(panel["title"], []).append(target["exemplar"])
    assert {"Spend by model", "Latency by operation", "Tool latency p95", "Model latency p95"} <= set(asking)
    assert asking["Latency by operation"] == [True, False, False]
    assert all(flags.count(True) == 1 for flags in asking.values())


def test_stats_and_tables_never_ask_for_exemplars_they_cannot_draw() -> None:
    assert {target["exemplar"] for _, panel, target in _all_targets() if panel["type"] != "timeseries"} == {False}


def test_no_query_filters_on_an_emitters_sdk_label() -> None:
    # Dashboards that filter on telemetry_sdk_name stay empty for every other instrumentation.
    labels = {label for _, _, target in _all_targets() for selector in grafana.selectors(target["expr"])
              for label, _, _ in selector.matchers}
    assert not {label for label in labels if "sdk" in label or "telemetry" in label}


# --- What the key queries compute (evaluated by promtool on realistic series) ---------------------------

EXPORTER = 'job="genai-exporter", instance="genai-exporter:9464"'


def _evaluate(tmp_path: Path, uid: str, title: str, ref_id: str, series: list[dict[str, str]],
              expected: list[dict[str, Any]], precision: str) -> subprocess.CompletedProcess[str]:
    """Evaluate a shipped panel query with All selected, at the end of one hour of `series`, over a
    1 h dashboard range and a 5 m rate interval; rounded to `precision` to compare exact values."""
    document = grafana.document_with_uid(uid)
    (target,) = [t for t in grafana.panel_titled(document, title)["targets"] if t["refId"] == ref_id]
    expr = grafana.interpolate(target["expr"], grafana.all_values(document, __range="1h", __rate_interval="5m"))
    return grafana.promtool_evaluates(tmp_path, series, f"round({expr}, {precision})", "1h", expected)


def _domain(metric: str, **labels: str) -> str:
    defaults = {"service": "support-bot", "user_tier": "pro", "feature": "search"}
    return f"{metric}{{{', '.join(f'{k}={json.dumps(v)}' for k, v in {**defaults, **labels}.items())}, {EXPORTER}}}"


def test_projected_spend_is_30_days_at_the_average_rate_of_the_range(tmp_path: Path) -> None:
    chat = dict(provider="openai", model="gpt-4o", operation="chat")
    series = [
        # $225 an hour of output and $112.50 an hour of input: $337.50/h, $243,000 in 30 days.
        {"series": _domain(catalog.COST.name, **chat, token_type="output"), "values": "0+3.75x60"},
        {"series": _domain(catalog.COST.name, **chat, token_type="input"), "values": "0+1.875x60"},
    ]
    result = _evaluate(tmp_path, cost.UID, "Projected 30-day spend", "A", series,
                       [{"labels": "{}", "value": 243000}], "1")
    assert result.returncode == 0, result.stdout + result.stderr


def test_cache_savings_add_up_what_the_exporter_priced_per_call(tmp_path: Path) -> None:
    sonnet = dict(provider="anthropic", model="claude-sonnet-4-5", operation="chat")
    gpt = dict(provider="openai", model="gpt-4o", operation="chat")
    series = [
        # Sonnet saved $0.054 a minute ($3.24 in the hour), gpt-4o $0.01 a minute ($0.60).
        {"series": _domain(catalog.CACHE_SAVINGS.name, **sonnet), "values": "0+0.054x60"},
        {"series": _domain(catalog.CACHE_SAVINGS.name, **gpt), "values": "0+0.01x60"},
    ]
    result = _evaluate(tmp_path, cost.UID, "Cache savings over the range", "A", series,
                       [{"labels": "{}", "value": 3.84}], "0.001")
    assert result.returncode == 0, result.stdout + result.stderr


def test_output_check_failure_ratio_is_per_check_and_model(tmp_path: Path) -> None:
    judged = dict(check="valid_json", agent="sql-analyst", tool="", model="gpt-4.1")
    series = [
        # 30 valid and 10 invalid JSON answers a minute: a quarter fail.
        {"series": _domain(catalog.OUTPUT_CHECKS.name, **judged, result="pass"), "values": "0+30x60"},
        {"series": _domain(catalog.OUTPUT_CHECKS.name, **judged, result="fail"), "values": "0+10x60"},
    ]
    result = _evaluate(tmp_path, reliability.UID, "Output check failure ratio", "A", series,
                       [{"labels": '{check="valid_json", model="gpt-4.1"}', "value": 0.25}], "0.001")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mean_evaluation_score_is_the_sum_over_the_count(tmp_path: Path) -> None:
    judged = dict(evaluation="answer_relevance", agent="sql-analyst", model="gpt-4.1")
    series = [
        # 20 judgements a minute scoring 17 in all: a mean of 0.85.
        {"series": _domain(f"{catalog.EVALUATION_SCORE.name}_sum", **judged), "values": "0+17x60"},
        {"series": _domain(f"{catalog.EVALUATION_SCORE.name}_count", **judged), "values": "0+20x60"},
    ]
    result = _evaluate(tmp_path, reliability.UID, "Evaluation score (mean)", "A", series,
                       [{"labels": '{evaluation="answer_relevance", model="gpt-4.1"}', "value": 0.85}], "0.001")
    assert result.returncode == 0, result.stdout + result.stderr


def test_failure_share_counts_errors_and_empty_responses_of_each_layer(tmp_path: Path) -> None:
    count = f"{catalog.OPERATION_DURATION.name}_count"
    tool = dict(layer="tool", operation="execute_tool", tool="search_docs", agent="support", provider="", model="")
    model = dict(layer="model", operation="chat", provider="openai", model="gpt-4o", agent="support", tool="")
    retrieval = dict(layer="retrieval", operation="retrieval", provider="", model="", agent="support", tool="")
    series = [
        # In the hour: tool 120 errors + 60 empty results, model 60 errors, retrieval 60 empty results.
        {"series": _domain(count, **tool, status="ok", error_type=""), "values": "0+20x60"},
        {"series": _domain(count, **tool, status="error", error_type="TimeoutError"), "values": "0+2x60"},
        {"series": _domain(catalog.EMPTY_RESPONSES.name, **tool), "values": "0+1x60"},
        {"series": _domain(count, **model, status="error", error_type="429"), "values": "0+1x60"},
        {"series": _domain(count, **retrieval, status="ok", error_type=""), "values": "0+10x60"},
        {"series": _domain(catalog.EMPTY_RESPONSES.name, **retrieval), "values": "0+1x60"},
    ]
    result = _evaluate(tmp_path, reliability.UID, "Failure share by layer", "A", series, [
        {"labels": '{layer="tool"}', "value": 0.6},
        {"labels": '{layer="model"}', "value": 0.2},
        {"labels": '{layer="retrieval"}', "value": 0.2},
    ], "0.0001")
    assert result.returncode == 0, result.stdout + result.stderr


def test_most_failing_tools_lists_only_tools_that_failed_with_their_failure_ratio(tmp_path: Path) -> None:
    count = f"{catalog.OPERATION_DURATION.name}_count"
    common = dict(layer="tool", operation="execute_tool", agent="support", provider="", model="")
    series = [
        # search_docs: 50 calls a minute, 5 empty results and 5 errors among them; get_weather: no failure.
        {"series": _domain(count, **common, tool="search_docs", status="ok", error_type=""), "values": "0+45x60"},
        {"series": _domain(count, **common, tool="search_docs", status="error", error_type="HTTPError"),
         "values": "0+5x60"},
        {"series": _domain(catalog.EMPTY_RESPONSES.name, **common, tool="search_docs"), "values": "0+5x60"},
        {"series": _domain(count, **common, tool="get_weather", status="ok", error_type=""), "values": "0+30x60"},
        {"series": _domain(catalog.EMPTY_RESPONSES.name, **common, tool="get_weather"), "values": "0+0x60"},
    ]
    failures = _evaluate(tmp_path, reliability.UID, "Most failing tools", "A", series,
                         [{"labels": '{service="support-bot", tool="search_docs"}', "value": 600}], "1")
    assert failures.returncode == 0, failures.stdout + failures.stderr
    ratio = _evaluate(tmp_path, reliability.UID, "Most failing tools", "B", series,
                      [{"labels": '{service="support-bot", tool="search_docs"}', "value": 0.2}], "0.0001")
    assert ratio.returncode == 0, ratio.stdout + ratio.stderr


def test_token_budget_utilisation_compares_usage_with_the_budget_on_the_same_labels(tmp_path: Path) -> None:
    budget = catalog.BUDGET_TOKENS_PER_SECOND.name
    chat = dict(provider="openai", model="gpt-4o-mini", operation="chat", token_type="input", user_tier="free")
    series = [
        # The free tier uses 1,500 tokens/s: 1,200 for search, 300 for summarise.
        {"series": _domain(catalog.TOKENS.name, **chat, feature="search"), "values": "0+72000x60"},
        {"series": _domain(catalog.TOKENS.name, **chat, feature="summarise"), "values": "0+18000x60"},
        # Budgets: 1,000 tokens/s for the free tier, 2,400 tokens/s for free users of search.
        {"series": f'{budget}{{user_tier="free", {EXPORTER}}}', "values": "1000x60"},
        {"series": f'{budget}{{user_tier="free", feature="search", {EXPORTER}}}', "values": "2400x60"},
    ]
    by_tier = _evaluate(tmp_path, cost.UID, "Token budget utilisation", "A", series,
                        [{"labels": '{user_tier="free"}', "value": 1.5}], "0.0001")
    assert by_tier.returncode == 0, by_tier.stdout + by_tier.stderr
    by_tier_and_feature = _evaluate(tmp_path, cost.UID, "Token budget utilisation", "C", series,
                                    [{"labels": '{feature="search", user_tier="free"}', "value": 0.5}], "0.0001")
    assert by_tier_and_feature.returncode == 0, by_tier_and_feature.stdout + by_tier_and_feature.stderr


# --- Links to Tempo and Loki ------------------------------------------------------------------------------


def _explore_pane(url: str) -> dict[str, Any]:
    parts = urlsplit(url)
    assert parts.path == "/explore" and parse_qs(parts.query)["schemaVersion"] == ["1"]
    (pane,) = json.loads(parse_qs(parts.query)["panes"][0]).values()
    return pane


def _linked_panels() -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [(panel, link) for document in DOCUMENTS for panel in grafana.panels(document) for link in _links(panel)]


def test_tool_and_model_panels_link_to_tempo() -> None:
    linked = {panel["title"] for panel, _ in _linked_panels()}
    assert {"Tool error ratio", "Tool empty-result ratio", "Most failing tools", "Slowest tools", "Tool latency p95",
            "Model error ratio", "Model empty-response ratio", "Model latency p95", "Spend by model"} <= linked


def test_every_link_runs_a_traceql_search_on_the_tempo_variable_over_the_panel_range() -> None:
    for panel, link in _linked_panels():
        pane = _explore_pane(link["url"])
        (query,) = pane["queries"]
        assert pane["datasource"] == f"${{{lib.TEMPO_VARIABLE}}}", panel["title"]
        assert query["datasource"] == {"type": "tempo", "uid": f"${{{lib.TEMPO_VARIABLE}}}"}
        assert (query["queryType"], pane["range"]) == ("traceql", {"from": "${__from}", "to": "${__to}"})
        assert link["targetBlank"] is True


def test_tool_links_search_for_failed_or_empty_calls_of_the_clicked_tool() -> None:
    for panel, link in _linked_panels():
        traceql = _explore_pane(link["url"])["queries"][0]["query"]
        if "tool" in panel["title"].lower():
            field = "__data.fields" if panel["type"] == "table" else "__field.labels"
            assert f'span.gen_ai.tool.name = "${{{field}.tool}}"' in traceql, panel["title"]
            assert f'resource.service.name = "${{{field}.service}}"' in traceql, panel["title"]
            assert "status = error" in traceql and f"=~ `{queries.EMPTY_RESULT_PATTERN}`" in traceql


@pytest.mark.parametrize(("span_model", "found"), [
    ("gpt-4o-mini", True), ("gpt-4o-mini-2024-07-18", True), ("openai/gpt-4o-mini", True), ("GPT-4o-mini", True),
    ("gpt-4o", False), ("claude-sonnet-4-5", False),
])
def test_model_links_find_the_spans_of_every_variant_counted_under_the_model(span_model: str, found: bool) -> None:
    # The exporter counts dated and provider-prefixed variants under the price entry's name.
    document = grafana.document_with_uid(reliability.UID)
    (link,) = _links(grafana.panel_titled(document, "Model error ratio"))
    traceql = _explore_pane(link["url"])["queries"][0]["query"]
    patterns = re.findall(r'span\.gen_ai\.response\.model =~ "([^"]*)"', traceql)
    assert len(patterns) == 1
    pattern = patterns[0].replace("${__field.labels.model}", "gpt-4o-mini")
    assert bool(re.fullmatch(pattern, span_model)) is found


def test_link_placeholders_name_labels_the_clicked_series_or_row_has() -> None:
    for panel, link in _linked_panels():
        placeholders = set(re.findall(r"\$\{__(?:field\.labels|data\.fields)\.(\w+)\}", unquote(link["url"])))
        assert placeholders, panel["title"]
        for target in panel["targets"]:
            assert placeholders <= grafana.result_labels(target["expr"]), panel["title"]


@pytest.mark.parametrize(("result", "empty"), [
    ("", True), ("  ", True), ("[]", True), ("[ ]", True), ("{}", True), ("null", True), ('""', True),
    ('[{"title": "Refund policy"}]', False), ("No results found", False), ("0", False), ("nullable", False),
])
def test_tempo_search_for_empty_tool_results_matches_what_the_exporter_counts_as_empty(result: str,
                                                                                       empty: bool) -> None:
    # Go's RE2 and Python's re agree on this pattern: anchors, \s, escaped brackets, an alternation.
    assert bool(re.search(queries.EMPTY_RESULT_PATTERN, result)) is empty


def test_logs_panel_shows_loki_lines_of_the_selected_services() -> None:
    document = grafana.document_with_uid(reliability.UID)
    (logs,) = [panel for panel in grafana.panels(document) if panel["type"] == "logs"]
    assert logs["datasource"] == {"type": "loki", "uid": f"${{{lib.LOKI_VARIABLE}}}"}
    assert [target["expr"] for target in logs["targets"]] == [f'{{{queries.LOKI_SERVICE_LABEL}=~"$service"}}']
    assert logs["options"]["enableLogDetails"] is True
