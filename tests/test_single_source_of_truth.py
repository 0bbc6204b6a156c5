"""One source of truth: attribute names only in semconv, metric names only in the catalogue."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from genai_exporter import catalog
from genai_exporter.docs import render_metrics_doc

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "exporter" / "genai_exporter"
METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def _string_literals(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)
    }
    return [node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings]


def _modules_except(*names: str) -> list[Path]:
    return [p for p in sorted(PACKAGE.rglob("*.py")) if p.name not in names]


@pytest.mark.parametrize("path", _modules_except("semconv.py"), ids=lambda p: p.name)
def test_no_module_but_semconv_spells_a_genai_attribute_name(path):
    offending = [s for s in _string_literals(path) if re.search(r"\b(gen_ai|llm|ai|openinference)\.[a-z_]+", s)]
    assert offending == []


@pytest.mark.parametrize("path", _modules_except("catalog.py"), ids=lambda p: p.name)
def test_no_module_but_the_catalogue_spells_a_metric_name(path):
    names = catalog.all_series_names() | {spec.family_name for spec in catalog.ALL_METRICS}
    assert [s for s in _string_literals(path) if s in names] == []


@pytest.mark.parametrize("spec", catalog.ALL_METRICS, ids=lambda s: s.name)
def test_catalogue_names_follow_prometheus_conventions(spec):
    suffix_ok = {
        catalog.MetricKind.COUNTER: spec.name.endswith("_total"),
        catalog.MetricKind.HISTOGRAM: not spec.name.endswith("_total"),
        catalog.MetricKind.GAUGE: not spec.name.endswith("_total"),
        catalog.MetricKind.INFO: spec.name.endswith("_info"),
    }[spec.kind]
    unit_ok = not spec.unit or f"_{spec.unit}" in spec.name
    labels_ok = all(LABEL_NAME.match(label) and not label.startswith("__") for label in spec.labels)
    assert (bool(METRIC_NAME.match(spec.name)), spec.name.startswith("genai_"), suffix_ok, unit_ok, labels_ok) == (
        True, True, True, True, True)


def test_histogram_buckets_are_strictly_increasing():
    for spec in catalog.ALL_METRICS:
        assert list(spec.buckets) == sorted(set(spec.buckets)), spec.name


def test_metrics_doc_is_generated_from_the_catalogue():
    assert (ROOT / "docs" / "metrics.md").read_text(encoding="utf-8") == render_metrics_doc(), (
        "docs/metrics.md is stale: run `make docs`")
