"""Golden exposition tests: the exact text a scrape returns, in both formats."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from genai_exporter import catalog, semconv
from genai_exporter.aggregate import Aggregator
from genai_exporter.config import Budget, CardinalityLimits, Dimension
from genai_exporter.expose import GenAICollector, metrics_renderer
from genai_exporter.normalize import Normalizer, Observation
from genai_exporter.records import TokenCost
from tests.spanfactory import chat_attributes, span

# Also run from the Python sources, not only compiled (scripts/test.sh).
pytestmark = pytest.mark.data_path

GOLDEN = Path(__file__).parent / "golden"
USER_TIER = semconv.DEFAULT_USER_TIER_ATTRIBUTES[0]
OPENMETRICS_ACCEPT = "application/openmetrics-text; version=1.0.0; charset=utf-8"


@pytest.fixture
def collector() -> GenAICollector:
    """One priced chat call of a free-tier user, 0.5 s long, with a budget for the free tier."""
    dimensions = (Dimension("user_tier", (USER_TIER,), 10),)
    aggregator = Aggregator(["user_tier"], [10], CardinalityLimits())
    attributes = chat_attributes(**{USER_TIER: "free", semconv.FINISH_REASONS_ALIASES[0]: ("stop",)})
    observation = Normalizer(dimensions).normalize(span(attributes, span_id="00f067aa0ba902b7", duration_s=0.5))
    assert isinstance(observation, Observation)
    aggregator.record(observation, "gpt-4o-mini", TokenCost(input=0.00018, output=0.00018))
    budget = Budget(catalog.BUDGET_TOKENS_PER_SECOND.name, (("user_tier", "free"),), 1000.0)
    return GenAICollector(aggregator, threading.Lock(), (budget,), build=("0.1.0", "3.11.7", "compiled"))


def test_prometheus_text_format_matches_golden_file(collector):
    body, content_type = metrics_renderer(collector)("text/plain")
    assert (content_type, body.decode()) == (
        "text/plain; version=0.0.4; charset=utf-8", (GOLDEN / "exposition.txt").read_text())


def test_openmetrics_format_with_exemplars_matches_golden_file(collector):
    body, content_type = metrics_renderer(collector)(OPENMETRICS_ACCEPT)
    assert (content_type, body.decode()) == (
        "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=underscores",
        (GOLDEN / "exposition.om.txt").read_text(),
    )


def test_cost_exemplar_points_at_the_span_that_spent_it(collector):
    body, _ = metrics_renderer(collector)(OPENMETRICS_ACCEPT)
    line = next(line for line in body.decode().splitlines()
                if line.startswith("genai_cost_usd_total") and 'token_type="output"' in line)
    assert line.endswith(
        '0.00018 # {span_id="00f067aa0ba902b7",trace_id="4bf92f3577b34da6a3ce929d0e0e4736"} 0.00018 1760000000.5')


def test_plain_text_format_carries_no_exemplars(collector):
    body, _ = metrics_renderer(collector)(None)
    assert "trace_id" not in body.decode()
