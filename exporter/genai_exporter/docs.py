"""Generates docs/metrics.md from the catalogue, so the documented metrics are the exposed ones.

Run `python -m genai_exporter.docs [OUTPUT]`; a test fails when the committed file is stale.
"""

from __future__ import annotations

import sys
from pathlib import Path

from genai_exporter import catalog
from genai_exporter.config import default_dimensions

DEFAULT_OUTPUT = Path("docs/metrics.md")


def _labels(spec: catalog.MetricSpec, dimension_labels: tuple[str, ...]) -> str:
    if spec in catalog.BUDGET_METRICS:
        return "the dimension labels each budget applies to"
    names = [catalog.SERVICE, *spec.labels, *(f"{label}*" for label in dimension_labels)] if spec.domain \
        else list(spec.labels)
    return ", ".join(f"`{name}`" for name in names) or "none"


def _buckets(spec: catalog.MetricSpec) -> str:
    return ", ".join(f"{bound:g}" for bound in spec.buckets) if spec.buckets else ""


def render_metrics_doc() -> str:
    """The metric catalogue as Markdown: name, type, labels, buckets and help of every metric."""
    dimension_labels = tuple(d.label for d in default_dimensions())
    lines = [
        "# Metric catalogue",
        "",
        "Generated from `exporter/genai_exporter/catalog.py` by `python -m genai_exporter.docs`;",
        "do not edit by hand. Labels marked `*` are the configured dimensions (defaults shown:",
        "`user_tier`, `feature`; see the `dimensions:` section of the config). A label the span did not",
        f"carry has the value `\"{catalog.UNKNOWN_VALUE}\"`; a value past its label's cap becomes",
        f"`{catalog.OVERFLOW_VALUE}` (still counted, and counted in `{catalog.LABEL_OVERFLOW.name}`).",
        "",
    ]
    sections = (
        ("Domain metrics", catalog.DOMAIN_METRICS),
        ("Self-metrics", catalog.SELF_METRICS),
        ("Budgets (from the config)", catalog.BUDGET_METRICS),
    )
    for title, specs in sections:
        lines += [f"## {title}", "", "| metric | type | labels | buckets | meaning |", "|---|---|---|---|---|"]
        for spec in specs:
            exemplars = " Exemplars (`trace_id`, `span_id`) in OpenMetrics." if spec.exemplars else ""
            lines.append(f"| `{spec.name}` | {spec.kind.value} | {_labels(spec, dimension_labels)} | "
                         f"{_buckets(spec)} | {spec.help}{exemplars} |")
        lines.append("")
    lines += [
        "## Label values",
        "",
        f"- `{catalog.TOKEN_TYPE}`: {', '.join(f'`{t}`' for t in catalog.TOKEN_TYPES)}; they partition the",
        "  billed tokens (input is uncached input, output includes reasoning): `sum()` over them is the total.",
        f"- `{catalog.LAYER}`: {', '.join(f'`{layer}`' for layer in catalog.LAYERS)}, derived from the operation.",
        f"- `{catalog.STATUS}`: {', '.join(f'`{s}`' for s in catalog.STATUSES)}.",
        f"- `{catalog.REASON}` of rejected spans: {', '.join(f'`{r}`' for r in catalog.REJECT_REASONS)}.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Write the document (default docs/metrics.md)."""
    args = sys.argv[1:] if argv is None else argv
    output = Path(args[0]) if args else DEFAULT_OUTPUT
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(render_metrics_doc(), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
