"""The alerting and recording rules: generated, valid for promtool, tested, linted, documented.

The behaviour of every rule is specified by the promtool unit tests in alerts/tests/, run here with
the real promtool. This module checks everything around them: the committed file is what
alerts/rules.py generates, every alert and recording rule is covered by those tests (at the `for:`
boundary, and with a quiet case), and the rule file follows the conventions (names, severity,
annotations, links, metrics and labels that exist).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from alerts import promql, rules
from genai_exporter import catalog
from genai_exporter.config import Config, load_config

ROOT = Path(__file__).resolve().parents[1]
RULE_TEST_FILES = sorted((ROOT / "alerts" / "tests").glob("*.test.yml"))
RUNBOOK = ROOT / "alerts" / "runbook.md"
DASHBOARD_DIR = ROOT / "dashboards" / "generated"
EXPORTER_CONFIG = ROOT / "deploy" / "genai-exporter" / "config.yaml"

ANNOTATIONS = {"summary", "description", "runbook_url", "dashboard_url"}
STATIC_ALERT_LABELS = {rules.SEVERITY, rules.LONG_WINDOW, rules.SHORT_WINDOW, rules.BUDGET_BY, catalog.LAYER}
RUNBOOK_PARTS = ("**Meaning.**", "**Impact.**", "**Diagnosis.**", "**Mitigation.**", "**Tuning.**")
RECORD_NAME = re.compile(r"^(?P<level>[a-z][a-z0-9_]*):(?P<metric>genai_[a-z0-9_]+):(?P<operations>[a-z0-9_]+)$")
# Labels Prometheus adds or the rules compute, on top of the catalogue's and the dimensions.
PROMETHEUS_LABELS = {rules.JOB, rules.INSTANCE, rules.BUCKET_BOUND, rules.QUANTILE}
KNOWN_LABELS = (
    {label for spec in catalog.ALL_METRICS for label in spec.labels}
    | {catalog.SERVICE, *rules.DIMENSIONS} | PROMETHEUS_LABELS
)


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


RULE_GROUPS: list[dict[str, Any]] = _yaml(rules.RULE_FILE)["groups"]
ALERT_RULES = [rule for group in RULE_GROUPS for rule in group["rules"] if "alert" in rule]
RECORDING_RULES = [rule for group in RULE_GROUPS for rule in group["rules"] if "record" in rule]
RULE_TESTS: dict[str, dict[str, Any]] = {path.name: _yaml(path) for path in RULE_TEST_FILES}


def _rule_id(rule: dict[str, Any]) -> str:
    if "record" in rule:
        return rule["record"] + "".join(f",{value}" for value in rule.get("labels", {}).values())
    return rule["alert"] + "".join(f",{key}={value}" for key, value in rule["labels"].items())


def _promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is not installed: scripts/bootstrap.sh --with-binaries installs Debian's prometheus")
    return path


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=300, check=False, cwd=ROOT)


# --- Generated, and valid for promtool ----------------------------------------------------------


def test_committed_rule_file_is_what_alerts_rules_generates():
    assert rules.RULE_FILE.read_text(encoding="utf-8") == rules.render_rules(), (
        "alerts/genai.rules.yml is stale: run `make rules` (then `make kubernetes`)")


def test_promtool_check_rules_accepts_the_rule_file():
    result = _run([_promtool(), "check", "rules", str(rules.RULE_FILE)])
    found = re.findall(r"SUCCESS: ([0-9]+) rules found", result.stdout)
    assert (result.returncode, found) == (0, [str(len(ALERT_RULES) + len(RECORDING_RULES))]), (
        result.stdout + result.stderr)


@pytest.mark.parametrize("test_file", RULE_TEST_FILES, ids=lambda path: path.name)
def test_promtool_unit_tests_pass(test_file: Path):
    result = _run([_promtool(), "test", "rules", str(test_file)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_time_scaled_copy_is_valid_for_promtool(tmp_path: Path):
    scaled = tmp_path / "genai.rules.yml"
    rules.main(["--output", str(scaled), "--time-scale", "0.01"])
    result = _run([_promtool(), "check", "rules", str(scaled)])
    assert result.returncode == 0, result.stdout + result.stderr


def _windows(expression: str) -> list[str]:
    return re.findall(r"\[([0-9a-z]+)\]", expression)


def test_time_scaling_multiplies_every_for_and_range_window():
    scaled_groups = yaml.safe_load(rules.render_rules(0.01))["groups"]
    scaled_rules = [rule for group in scaled_groups for rule in group["rules"]]
    original_rules = [rule for group in RULE_GROUPS for rule in group["rules"]]

    def scaled(window: str) -> str:
        return rules.format_duration(round(rules.parse_duration(window) * 0.01))

    assert [(rule.get("for"), _windows(rule["expr"])) for rule in scaled_rules] == [
        (scaled(rule["for"]) if "for" in rule else None, [scaled(window) for window in _windows(rule["expr"])])
        for rule in original_rules]


def test_time_scaling_keeps_traffic_floors_in_events_per_window():
    def floors(text: str) -> list[tuple[str, float]]:
        return [(events, float(seconds)) for events, seconds in re.findall(r">= ([0-9]+) / ([0-9.]+)", text)]

    unscaled = floors(rules.render_rules())
    assert (floors(rules.render_rules(0.01)), unscaled != []) == (
        [(events, seconds * 0.01) for events, seconds in unscaled], True)


# --- Covered by the promtool tests ----------------------------------------------------------------


def _test_groups() -> list[tuple[str, dict[str, Any]]]:
    return [(name, group) for name, document in RULE_TESTS.items() for group in document["tests"]]


def _alert_checks(alertname: str) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(file, test group, alert_rule_test) of every check of `alertname`."""
    return [(name, group, check) for name, group in _test_groups()
            for check in group.get("alert_rule_test", []) if check["alertname"] == alertname]


def _fires(check: dict[str, Any], rule: dict[str, Any]) -> bool:
    return any(rule["labels"].items() <= expected["exp_labels"].items() for expected in check["exp_alerts"])


@pytest.mark.parametrize("test_file", RULE_TEST_FILES, ids=lambda path: path.name)
def test_every_promtool_test_file_reads_the_committed_rule_file(test_file: Path):
    assert RULE_TESTS[test_file.name]["rule_files"] == [f"../{rules.RULE_FILE.name}"]


@pytest.mark.parametrize("alertname", rules.ALERTS)
def test_every_alert_has_a_test_where_it_must_stay_quiet(alertname: str):
    quiet_groups = [group["name"] for _, group, _ in _alert_checks(alertname)
                    if all(not check["exp_alerts"] for check in group["alert_rule_test"]
                           if check["alertname"] == alertname)]
    assert quiet_groups, f"no promtool test group expects {alertname} to stay quiet"


def _evaluation_interval(test_file: str) -> int:
    return rules.parse_duration(RULE_TESTS[test_file].get("evaluation_interval", "1m"))


def _boundary_checks(rule: dict[str, Any]) -> list[str]:
    """Test groups where `rule` fires at some evaluation and is checked absent the evaluation before."""
    found = []
    for name, group in _test_groups():
        checks = [check for check in group.get("alert_rule_test", []) if check["alertname"] == rule["alert"]]
        at = {rules.parse_duration(check["eval_time"]): check for check in checks}
        for time, check in at.items():
            before = at.get(time - _evaluation_interval(name))
            firing = [alert["exp_labels"] for alert in check["exp_alerts"]
                      if rule["labels"].items() <= alert["exp_labels"].items()]
            if before is not None and any(labels not in [alert["exp_labels"] for alert in before["exp_alerts"]]
                                          for labels in firing):
                found.append(f"{name}: {group['name']} @ {check['eval_time']}")
    return found


@pytest.mark.parametrize("rule", ALERT_RULES, ids=_rule_id)
def test_every_alert_rule_fires_at_its_for_boundary_in_a_promtool_test(rule: dict[str, Any]):
    assert _boundary_checks(rule), (
        f"no promtool test expects {_rule_id(rule)} to fire at one evaluation and to be absent at the one before")


@pytest.mark.parametrize("record", rules.RECORDING_RULES)
def test_every_recording_rule_is_checked_by_a_promql_expr_test(record: str):
    checked = {metric for _, group in _test_groups() for check in group.get("promql_expr_test", [])
               for metric in promql.reads(check["expr"]).metrics}
    assert record in checked


# --- Lint --------------------------------------------------------------------------------------


@pytest.mark.parametrize("rule", ALERT_RULES, ids=_rule_id)
def test_alert_name_is_genai_camel_case(rule: dict[str, Any]):
    assert re.fullmatch(r"GenAI(?:[A-Z][a-z0-9]*)+", rule["alert"])


@pytest.mark.parametrize("rule", ALERT_RULES, ids=_rule_id)
def test_alert_has_a_severity_of_the_three_and_only_labels_that_tell_its_rules_apart(rule: dict[str, Any]):
    assert rule["labels"][rules.SEVERITY] in rules.SEVERITIES
    assert set(rule["labels"]) <= STATIC_ALERT_LABELS


@pytest.mark.parametrize("rule", ALERT_RULES, ids=_rule_id)
def test_alert_waits_before_firing(rule: dict[str, Any]):
    assert rules.parse_duration(rule["for"]) > 0


@pytest.mark.parametrize("rule", ALERT_RULES, ids=_rule_id)
def test_alert_has_the_four_annotations(rule: dict[str, Any]):
    assert set(rule["annotations"]) == ANNOTATIONS


@pytest.mark.parametrize("rule", ALERT_RULES, ids=_rule_id)
def test_summary_is_a_static_sentence(rule: dict[str, Any]):
    summary = rule["annotations"]["summary"]
    assert summary[0].isupper() and summary.endswith(".") and "{{" not in summary


@pytest.mark.parametrize("rule", ALERT_RULES, ids=_rule_id)
def test_description_shows_the_alert_labels_and_its_value(rule: dict[str, Any]):
    description = rule["annotations"]["description"]
    assert "{{ $labels." in description
    assert ("$value" in description) is (rule["alert"] not in rules.STATE_ALERTS)


def _runbook_anchors() -> set[str]:
    """Anchors GitHub derives from the runbook's headings: lower case, punctuation dropped, spaces to dashes."""
    headings = re.findall(r"^#+ (.+)$", RUNBOOK.read_text(encoding="utf-8"), flags=re.MULTILINE)
    return {re.sub(r"[^a-z0-9 _-]", "", heading.lower()).replace(" ", "-") for heading in headings}


@pytest.mark.parametrize("rule", ALERT_RULES, ids=_rule_id)
def test_runbook_url_points_at_the_alerts_section_of_the_runbook(rule: dict[str, Any]):
    path, _, anchor = rule["annotations"]["runbook_url"].partition("#")
    assert (ROOT / path) == RUNBOOK
    assert anchor == rule["alert"].lower() and anchor in _runbook_anchors()


def _dashboard_variables() -> dict[str, set[str]]:
    """uid -> template variable names of every generated dashboard."""
    dashboards = [json.loads(path.read_text(encoding="utf-8")) for path in sorted(DASHBOARD_DIR.glob("*.json"))]
    return {dashboard["uid"]: {variable["name"] for variable in dashboard["templating"]["list"]}
            for dashboard in dashboards}


@pytest.mark.parametrize("rule", ALERT_RULES, ids=_rule_id)
def test_dashboard_url_opens_a_generated_dashboard_through_its_variables(rule: dict[str, Any]):
    url = rule["annotations"]["dashboard_url"]
    match = re.fullmatch(r"/d/(?P<uid>[a-z0-9-]+)\?orgId=1(?P<filters>.*)", url)
    assert match, url
    filters = re.findall(r"\{\{ with \$labels\.(\w+) \}\}&var-(\w+)=\{\{ \. \| urlquery \}\}\{\{ end \}\}",
                         match["filters"])
    assert "".join(f"{{{{ with $labels.{label} }}}}&var-{variable}={{{{ . | urlquery }}}}{{{{ end }}}}"
                   for label, variable in filters) == match["filters"]
    assert all(label == variable for label, variable in filters)
    assert {variable for _, variable in filters} <= _dashboard_variables()[match["uid"]]


def _level_labels(level: str) -> list[str]:
    """The label names a record's level spells, read greedily (user_tier is one label, not two)."""
    labels = []
    while level:
        label = max((known for known in KNOWN_LABELS if level == known or level.startswith(known + "_")), key=len,
                    default=None)
        assert label is not None, f"{level!r} does not start with a known label"
        labels.append(label)
        level = level[len(label) + 1:]
    return labels


def _labels_of_recorded(record: str) -> set[str]:
    match = RECORD_NAME.fullmatch(record)
    assert match, record
    return set(_level_labels(match["level"]))


def _kept_labels(rule: dict[str, Any]) -> set[str]:
    """Labels a recording rule's result keeps: its aggregation's, or those of the recorded series it
    transforms; histogram_quantile drops `le`, the rule's constant labels are added."""
    read = promql.reads(rule["expr"])
    if read.grouping_labels:
        kept = set(read.grouping_labels)
    else:
        (source,) = read.metrics
        kept = _labels_of_recorded(source)
    if rule["expr"].startswith("histogram_quantile("):
        kept.discard(rules.BUCKET_BOUND)
    return kept | set(rule.get("labels", {}))


@pytest.mark.parametrize("rule", RECORDING_RULES, ids=_rule_id)
def test_recording_rule_is_named_level_metric_operations_after_the_labels_it_keeps(rule: dict[str, Any]):
    match = RECORD_NAME.fullmatch(rule["record"])
    assert match, rule["record"]
    assert _level_labels(match["level"]) == sorted(_kept_labels(rule), key=_level_labels(match["level"]).index)


def _labels_of_catalogued(series: str) -> set[str]:
    """Labels a scraped series of the catalogue carries."""
    for spec in catalog.ALL_METRICS:
        if series in catalog.series_names(spec):
            dimensions = {catalog.SERVICE, *rules.DIMENSIONS} if spec.domain else set()
            if spec in catalog.BUDGET_METRICS:
                dimensions = set(rules.DIMENSIONS)
            bucket = {rules.BUCKET_BOUND} if series.endswith("_bucket") else set()
            return {*spec.labels, *dimensions, *bucket, rules.JOB, rules.INSTANCE}
    raise KeyError(series)


RULES_WITH_GROUP = [(group["name"], index, rule) for group in RULE_GROUPS for index, rule in enumerate(group["rules"])]


@pytest.mark.parametrize(("group", "index", "rule"), RULES_WITH_GROUP,
                         ids=[_rule_id(rule) for _, _, rule in RULES_WITH_GROUP])
def test_every_metric_a_rule_reads_is_catalogued_or_recorded_before_it_in_its_group(group: str, index: int,
                                                                                   rule: dict[str, Any]):
    group_rules = next(g["rules"] for g in RULE_GROUPS if g["name"] == group)
    recorded_before = {earlier["record"] for earlier in group_rules[:index] if "record" in earlier}
    unknown = promql.reads(rule["expr"]).metrics - catalog.all_series_names() - recorded_before - {rules.UP}
    assert unknown == set()


@pytest.mark.parametrize(("group", "index", "rule"), RULES_WITH_GROUP,
                         ids=[_rule_id(rule) for _, _, rule in RULES_WITH_GROUP])
def test_every_label_a_rule_matches_or_groups_by_exists(group: str, index: int, rule: dict[str, Any]):
    read = promql.reads(rule["expr"])
    for selector in read.selectors:
        labels = (_labels_of_catalogued(selector.metric) if selector.metric in catalog.all_series_names()
                  else {rules.JOB, rules.INSTANCE} if selector.metric == rules.UP
                  else _labels_of_recorded(selector.metric))
        assert {matcher.label for matcher in selector.matchers} <= labels, selector
    assert read.grouping_labels <= KNOWN_LABELS


def _reads_a_ratio(expression: str) -> bool:
    recorded_ratio = any(re.search(r":(ratio|mean)", metric) for metric in promql.reads(expression).metrics)
    return recorded_ratio or re.search(r"^\s*/", expression, flags=re.MULTILINE) is not None


@pytest.mark.parametrize("rule", [rule for rule in ALERT_RULES if _reads_a_ratio(rule["expr"])], ids=_rule_id)
def test_every_alert_on_a_ratio_has_a_minimum_traffic_guard(rule: dict[str, Any]):
    assert re.search(r"\nand on \([a-z_, ]+\)\n[^\n]+ >= [0-9]+ / [0-9]+$", rule["expr"]), rule["expr"]


def test_rule_group_names_are_unique():
    names = [group["name"] for group in RULE_GROUPS]
    assert len(names) == len(set(names))


# --- Runbook ----------------------------------------------------------------------------------


def test_runbook_has_a_section_for_every_alert_and_for_nothing_else():
    sections = re.findall(r"^## (\S+)$", RUNBOOK.read_text(encoding="utf-8"), flags=re.MULTILINE)
    assert sections == list(rules.ALERTS)


@pytest.mark.parametrize("alertname", rules.ALERTS)
def test_runbook_section_says_what_it_means_costs_and_how_to_diagnose_fix_and_tune(alertname: str):
    text = RUNBOOK.read_text(encoding="utf-8")
    section = text.split(f"\n## {alertname}\n", 1)[1].split("\n## ", 1)[0]
    assert [part for part in RUNBOOK_PARTS if part in section] == list(RUNBOOK_PARTS)


# --- Budgets ----------------------------------------------------------------------------------


@pytest.mark.parametrize("config", [Config(), load_config(EXPORTER_CONFIG)], ids=["default", "compose"])
def test_every_budget_of_a_shipped_config_is_joined_by_a_budget_rule(config: Config):
    scopes = {frozenset(scope) for scope in rules.BUDGET_SCOPES}
    assert [budget for budget in config.budgets if frozenset(label for label, _ in budget.labels) not in scopes] == []
