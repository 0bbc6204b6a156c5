"""alerts.promql: what a PromQL expression reads, for the rule lint."""

from __future__ import annotations

import pytest

from alerts.promql import Matcher, Selector, reads, tokenize
from genai_exporter import catalog


def test_a_selector_is_read_with_its_metric_and_matchers():
    count = f"{catalog.OPERATION_DURATION.name}_count"
    expression = f'rate({count}{{{catalog.LAYER}="{catalog.LAYER_TOOL}", {catalog.STATUS}!="{catalog.STATUS_OK}"}}[5m])'
    assert reads(expression).selectors == (
        Selector(count, (Matcher(catalog.LAYER, "=", catalog.LAYER_TOOL),
                         Matcher(catalog.STATUS, "!=", catalog.STATUS_OK))),
    )


def test_a_recorded_series_name_with_colons_is_one_metric():
    recorded = "service_agent:agent_runs:rate1h"
    assert reads(f"{recorded} >= 5 / 300").metrics == {recorded}


def test_functions_and_aggregations_are_not_metrics():
    expression = f"histogram_quantile(0.95, sum by (le) (rate({catalog.TIME_TO_FIRST_TOKEN.name}_bucket[5m])))"
    assert reads(expression).metrics == {f"{catalog.TIME_TO_FIRST_TOKEN.name}_bucket"}


def test_labels_of_by_on_and_group_left_are_grouping_labels_not_metrics():
    budget = catalog.BUDGET_TOKENS_PER_SECOND.name
    expression = (f"sum by (tier) (tier:tokens:rate5m) > on (tier) group_left (team) "
                  f'max by (tier) ({budget}{{tier!=""}})')
    read = reads(expression)
    assert (read.metrics, read.grouping_labels) == ({"tier:tokens:rate5m", budget}, {"tier", "team"})


def test_binary_keywords_are_not_metrics():
    assert reads("a > 0.1\nand\nb > 3 * c\nunless d or e").metrics == {"a", "b", "c", "d", "e"}


def test_range_windows_and_subquery_steps_are_skipped():
    assert reads("max_over_time(rate(a_total[5m])[1h:30s]) offset 1d").metrics == {"a_total"}


def test_a_brace_inside_a_label_value_does_not_end_the_selector():
    assert reads('a{b="c}d", e=~"x{2}"}').selectors == (
        Selector("a", (Matcher("b", "=", "c}d"), Matcher("e", "=~", "x{2}"))),)


def test_an_escaped_quote_inside_a_label_value_is_unescaped():
    assert reads(r'a{b="say \"hi\""}').selectors[0].matchers == (Matcher("b", "=", 'say "hi"'),)


def test_absent_of_a_selector_reads_the_selector():
    assert reads('a{b="c"} == 0 or absent(a{b="c"})').metrics == {"a"}


def test_numbers_durations_and_special_values_are_not_identifiers():
    assert [token.kind for token in tokenize("1e3 + 0.5 - Inf")] == [
        "number", "operator", "number", "operator", "identifier"]
    assert reads("1e3 + 0.5 - Inf").metrics == frozenset()


def test_a_character_promql_lacks_is_an_error():
    with pytest.raises(ValueError, match="unexpected character '\\$'"):
        reads("rate(a[$__rate_interval])")


def test_a_malformed_matcher_is_an_error():
    with pytest.raises(ValueError, match="malformed label matcher"):
        reads('up{job=~5}')
