"""Specification of the exposition writer: the same bytes as prometheus_client's encoders, faster.

The exporter's /metrics writes the collector's state directly instead of building prometheus_client
families; whatever the state, the body must be exactly what prometheus_client's encoders write
for `GenAICollector.collect()`, in every format a scraper can negotiate.
"""

from __future__ import annotations

import math
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.exposition import choose_encoder

from genai_exporter import catalog
from genai_exporter.aggregate import Aggregator, HistogramState
from genai_exporter.config import Budget, CardinalityLimits
from genai_exporter.expose import GenAICollector, metrics_renderer

# Also run from the Python sources, not only compiled (scripts/test.sh).
pytestmark = pytest.mark.data_path

DIMENSIONS = ("user_tier", "feature")
TEXT = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"
ACCEPT_HEADERS = (
    None,
    TEXT,
    "text/plain; version=1.0.0; escaping=allow-utf-8",
    OPENMETRICS,
    "application/openmetrics-text; version=1.0.0; escaping=allow-utf-8",
    "application/openmetrics-text; version=1.0.0; escaping=dots",
    "application/openmetrics-text; version=1.0.0; escaping=values",
)
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


def reference(collector: GenAICollector, accept: str | None, others: CollectorRegistry | None = None
              ) -> tuple[bytes, str]:
    """What prometheus_client's own encoder answers for the collector's families (then the others')."""
    registry = CollectorRegistry()
    registry.register(collector)
    if others is not None:
        for family in others.collect():
            registry.register(_Fixed(family))
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type


class _Fixed:
    def __init__(self, family) -> None:
        self._family = family

    def collect(self):
        return [self._family]


def aggregator() -> Aggregator:
    return Aggregator(DIMENSIONS, [100, 100], CardinalityLimits())


def collector_of(agg: Aggregator, budgets: tuple[Budget, ...] = ()) -> GenAICollector:
    return GenAICollector(agg, threading.Lock(), budgets, build=("0.1.0", "3.11.7", "compiled"))


label_values = st.text(alphabet=st.sampled_from('ab\\"\n é{}=,%s_-'), max_size=6)
numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, 1.0, 999_999.0, 1_000_000.0, 1234567.0, 1e21, 0.00018, 5e-324]),
)
exemplars = st.tuples(st.just(bytes.fromhex(TRACE_ID)), st.binary(min_size=1, max_size=8),
                      numbers, st.floats(min_value=0, max_value=2e9, allow_nan=False))


@st.composite
def aggregator_states(draw) -> Aggregator:
    """An aggregator with arbitrary series: label values to escape, any float, counts past 1e6."""
    agg = aggregator()
    domain = st.tuples(*[label_values] * 5, *[label_values] * len(DIMENSIONS))
    for labels in draw(st.lists(domain, max_size=4)):
        agg.tokens.series_of(labels).value = draw(numbers)
        cost = agg.cost.series_of(labels)
        cost.value = draw(numbers)
        if draw(st.booleans()):
            cost.exemplar = draw(exemplars)
    bucket_count = len(catalog.DURATION_BUCKETS_SECONDS) + 1
    duration_labels = st.tuples(*[label_values] * 9, *[label_values] * len(DIMENSIONS))
    for labels in draw(st.lists(duration_labels, max_size=3)):
        counts = draw(st.lists(st.integers(0, 3_000_000), min_size=bucket_count, max_size=bucket_count))
        state = HistogramState(counts, draw(numbers), sum(counts))
        for index in draw(st.sets(st.integers(0, bucket_count - 1), max_size=3)):
            state.exemplars[index] = draw(exemplars)
        agg.duration.series[labels] = state
    agg.spans_received = draw(st.integers(0, 10**12))
    agg.requests.update(draw(st.dictionaries(st.sampled_from(["200", "400", "503"]), st.integers(0, 10**7))))
    return agg


@settings(max_examples=60, deadline=None)
@given(aggregator_states(), st.sampled_from(ACCEPT_HEADERS))
def test_body_is_what_prometheus_client_writes_for_the_collector(agg, accept):
    collector = collector_of(agg, (Budget(catalog.BUDGET_COST_USD_PER_DAY.name, (("feature", 'se"arch'),), 200.0),))
    assert metrics_renderer(collector)(accept) == reference(collector, accept)


def test_other_collectors_follow_ours_in_the_same_format():
    others = CollectorRegistry()
    Counter("process_restarts", "Restarts of the process.", registry=others).inc(2)
    collector = collector_of(aggregator())
    assert [metrics_renderer(collector, others)(accept) for accept in (TEXT, OPENMETRICS)] == [
        reference(collector, accept, others) for accept in (TEXT, OPENMETRICS)]


def test_openmetrics_body_ends_with_a_single_eof_line():
    body, _ = metrics_renderer(collector_of(aggregator()))(OPENMETRICS)
    assert (body.endswith(b"\n# EOF\n"), body.count(b"# EOF")) == (True, 1)


def test_label_values_are_escaped_as_the_text_format_requires():
    agg = aggregator()
    agg.unpriced_tokens.series_of(("svc", "acme", 'model "x"\\\nv2', "free", "search")).value = 3.0
    body, _ = metrics_renderer(collector_of(agg))(TEXT)
    assert ('genai_unpriced_tokens_total{feature="search",model="model \\"x\\"\\\\\\nv2",provider="acme",'
            'service="svc",user_tier="free"} 3.0') in body.decode().splitlines()


def test_infinite_and_nan_values_are_written_as_go_does():
    agg = aggregator()
    labels = ("svc", "openai", "gpt-4o-mini", "chat", "input", "free", "search")
    agg.tokens.series_of(labels).value = math.inf
    agg.cost.series_of(labels).value = math.nan
    lines = metrics_renderer(collector_of(agg))(TEXT)[0].decode().splitlines()
    assert [line.rsplit(" ", 1)[1] for line in lines
            if line.startswith(("genai_tokens_total{", "genai_cost_usd_total{"))] == ["+Inf", "NaN"]


def test_histogram_bucket_exemplar_sits_on_the_bucket_it_fell_into():
    agg = aggregator()
    counts = [0] * (len(catalog.DURATION_BUCKETS_SECONDS) + 1)
    counts[6] = 1
    exemplar = (bytes.fromhex(TRACE_ID), bytes.fromhex("00f067aa0ba902b7"), 0.5, 1760000000.5)
    state = HistogramState(counts, 0.5, 1, {6: exemplar})
    agg.duration.series[("svc", "model", "chat", "openai", "gpt-4o-mini", "", "", "ok", "", "free", "")] = state
    lines = metrics_renderer(collector_of(agg))(OPENMETRICS)[0].decode().splitlines()
    assert [line for line in lines if "# {" in line] == [
        'genai_operation_duration_seconds_bucket{agent="",error_type="",feature="",layer="model",le="0.64",'
        'model="gpt-4o-mini",operation="chat",provider="openai",service="svc",status="ok",tool="",'
        'user_tier="free"} 1.0 # {span_id="00f067aa0ba902b7",trace_id="4bf92f3577b34da6a3ce929d0e0e4736"} '
        '0.5 1760000000.5']
