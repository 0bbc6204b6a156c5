"""Helpers for the dashboard and provisioning tests: the generated dashboards as Grafana reads them,
Grafana's variable interpolation, the real promtool, and a reader of the PromQL the dashboards write.

The PromQL reader is not a parser: it understands the subset `dashboards.queries` produces (selectors
with double-quoted matchers, `[window]` ranges, `by`/`on` label lists) well enough to list the series
and labels a query reads. Whether the text is valid PromQL is promtool's call, not this module's.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dashboards import build

ROOT = Path(__file__).resolve().parents[1]

# Grafana's own variables in queries, with the values Grafana gives them for the default 6 h range
# and the provisioned 15 s scrape interval ($__rate_interval = max(4 * 15s, $__interval + 15s)).
QUERY_BUILTINS = {"__rate_interval": "1m", "__range": "6h", "__interval": "15s"}
# Grafana's variables in data links: the time range and the clicked series' labels or row's fields.
LINK_BUILTIN = re.compile(r"__from|__to|__field\.labels\.\w+|__data\.fields\.\w+")
# $name, ${name} and ${name:format}.
VARIABLE_USE = re.compile(r"\$\{([\w.]+)(?::\w+)?\}|\$(\w+)")

# Values a user would pick in the filters, two per multi-value variable as Grafana formats them for
# Prometheus: a regex alternation.
REALISTIC_SELECTIONS = {
    "service": ("support-bot", "search-api"),
    "provider": ("openai", "anthropic"),
    "model": ("gpt-4o-mini", "claude-sonnet-4-5"),
    "user_tier": ("free", "pro"),
    "feature": ("search", "summarise"),
    "job": ("genai-exporter",),
    "instance": ("genai-exporter:9464",),
}


def documents() -> list[dict[str, Any]]:
    """The dashboards as the JSON documents Grafana imports, built from the sources."""
    return [build.dashboard_json(dashboard) for dashboard in build.dashboards()]


def panels(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The panels of a dashboard, without its row headers."""
    return [panel for panel in document["panels"] if panel["type"] != "row"]


def prometheus_targets(document: Mapping[str, Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(panel, target) for every Prometheus query of a dashboard."""
    for panel in panels(document):
        for target in panel.get("targets", []):
            if target["datasource"]["type"] == "prometheus":
                yield panel, target


def variables(document: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The template variables of a dashboard by name."""
    return {variable["name"]: variable for variable in document["templating"]["list"]}


def variable_selector(variable: Mapping[str, Any]) -> tuple[str, str]:
    """(selector, label) of a `label_values(selector, label)` variable query."""
    match = re.fullmatch(r"label_values\((.*), (\w+)\)", variable["query"])
    assert match, variable["query"]
    return match.group(1), match.group(2)


def used_variables(text: str) -> set[str]:
    """Names of the Grafana variables a text refers to."""
    return {braced or bare for braced, bare in VARIABLE_USE.findall(text)}


def interpolate(text: str, values: Mapping[str, str]) -> str:
    """The text with every Grafana variable replaced, as Grafana does before sending a query."""
    return VARIABLE_USE.sub(lambda match: values[match.group(1) or match.group(2)], text)


def selected_values(document: Mapping[str, Any], **builtins: str) -> dict[str, str]:
    """Variable values for a user who picked two values in every filter."""
    values = {**QUERY_BUILTINS, **builtins}
    for name, variable in variables(document).items():
        if variable["type"] == "query":
            values[name] = "(" + "|".join(REALISTIC_SELECTIONS[name]) + ")"
    return values


def all_values(document: Mapping[str, Any], **builtins: str) -> dict[str, str]:
    """Variable values with All selected in every filter (the default)."""
    values = {**QUERY_BUILTINS, **builtins}
    for name, variable in variables(document).items():
        if variable["type"] == "query":
            values[name] = variable["allValue"] or "(" + "|".join(REALISTIC_SELECTIONS[name]) + ")"
    return values


def panel_titled(document: Mapping[str, Any], title: str) -> dict[str, Any]:
    """The one panel of a dashboard with this title."""
    (panel,) = [panel for panel in panels(document) if panel["title"] == title]
    return panel


def document_with_uid(uid: str) -> dict[str, Any]:
    """The dashboard with this uid."""
    (document,) = [document for document in documents() if document["uid"] == uid]
    return document


# --- promtool -------------------------------------------------------------------------------------


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the real promtool (Debian package `prometheus`); a missing promtool fails the test."""
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is not installed: run scripts/bootstrap.sh --with-binaries")
    return subprocess.run([path, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def promtool_evaluates(tmp_path: Path, input_series: list[dict[str, str]], expr: str, eval_time: str,
                       expected: list[dict[str, Any]]) -> subprocess.CompletedProcess[str]:
    """Evaluate `expr` over `input_series` (1 m apart) with `promtool test rules`; returncode 0 when
    the result is exactly `expected` (a list of {labels, value})."""
    (tmp_path / "no.rules.yml").write_text("groups: []\n", encoding="utf-8")
    test = {
        "rule_files": ["no.rules.yml"],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": input_series,
            "promql_expr_test": [{"expr": expr, "eval_time": eval_time, "exp_samples": expected}],
        }],
    }
    (tmp_path / "query.test.yml").write_text(json.dumps(test), encoding="utf-8")
    return promtool("test", "rules", "query.test.yml", cwd=tmp_path)


# --- Reading the PromQL the dashboards write ----------------------------------------------------------

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACED_SELECTOR = re.compile(r"([a-zA-Z_:][\w:]*)?\{([^}]*)\}")
_MATCHER = re.compile(r"\s*([a-zA-Z_]\w*)\s*(=~|!~|!=|=)\s*\"S(\d+)\"\s*")
_RANGE = re.compile(r"\[[^\]]*\]")
_LABEL_LIST = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_BARE_NAME = re.compile(r"(?<![\w:.\"])([a-zA-Z_:][\w:]*)\b(?!\s*\()")
_KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
                       "group_left", "group_right", "inf", "nan"})
METRIC_NAME_LABEL = "__name__"


@dataclass(frozen=True)
class Selector:
    """A vector selector of a query: the series names it can read and its label matchers."""

    names: tuple[str, ...]
    matchers: tuple[tuple[str, str, str], ...]  # (label, operator, value)


def selectors(expr: str) -> list[Selector]:
    """Every vector selector of a query, with `{__name__=~"a|b"}` read as the names a and b."""
    strings: list[str] = []

    def stash(match: re.Match[str]) -> str:
        strings.append(json.loads(match.group(0)))
        return f'"S{len(strings) - 1}"'

    text = _STRING.sub(stash, expr)
    found: list[Selector] = []

    def take(match: re.Match[str]) -> str:
        body = match.group(2)
        parsed = [_MATCHER.fullmatch(part) for part in body.split(",") if part.strip()]  # PromQL allows a, b,
        assert all(parsed), f"unreadable matchers {body!r} in {expr}"
        matchers = tuple((m.group(1), m.group(2), strings[int(m.group(3))]) for m in parsed if m)
        name_matches = [value for label, _, value in matchers if label == METRIC_NAME_LABEL]
        names = (match.group(1),) if match.group(1) else tuple(name_matches[0].split("|")) if name_matches else ()
        found.append(Selector(names=names, matchers=tuple(m for m in matchers if m[0] != METRIC_NAME_LABEL)))
        return " # "

    text = _BRACED_SELECTOR.sub(take, text)
    text = _LABEL_LIST.sub(" ", _RANGE.sub(" ", text))
    found += [Selector(names=(name,), matchers=()) for name in _BARE_NAME.findall(text) if name not in _KEYWORDS]
    return found


def grouping_labels(expr: str) -> set[str]:
    """Labels named in `by`, `without`, `on`, `ignoring`, `group_left` and `group_right` lists."""
    return {label.strip() for labels in _LABEL_LIST.findall(_STRING.sub('""', expr))
            for label in labels.split(",") if label.strip()}


def result_labels(expr: str) -> set[str]:
    """The labels of a query's result series: those of its outermost `by` aggregation (PromQL keeps
    the left-hand side's labels in a binary operation, and the queries aggregate first), without the
    bucket label a histogram_quantile consumes."""
    match = re.search(r"\bby\s*\(([^)]*)\)", _STRING.sub('""', expr))
    if match is None:
        return set()
    return {label.strip() for label in match.group(1).split(",")} - {"le"}


def legend_labels(legend: str) -> set[str]:
    """Labels a legend format shows: `{{provider}} {{model}}` -> provider, model."""
    return set(re.findall(r"\{\{\s*(\w+)\s*\}\}", legend))
