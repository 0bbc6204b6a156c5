"""Specification of the configuration: defaults, every error reported at once with its path."""

from __future__ import annotations

import pytest

from genai_exporter import catalog
from genai_exporter.config import Budget, Config, ConfigError, Dimension, load_config
from tests.configfiles import problems, write


def test_no_file_gives_the_built_in_defaults():
    assert load_config(None) == Config()


def test_default_dimensions_are_user_tier_and_feature():
    assert [d.label for d in Config().dimensions] == ["user_tier", "feature"]


def test_default_budget_is_1000_tokens_per_second_per_user_tier():
    assert Config().budgets == tuple(
        Budget(catalog.BUDGET_TOKENS_PER_SECOND.name, (("user_tier", tier),), 1000.0)
        for tier in ("free", "pro", "enterprise"))


def test_empty_file_gives_the_defaults(tmp_path):
    assert load_config(write(tmp_path, "")) == Config()


def test_dimensions_and_budgets_from_a_file(tmp_path):
    config = load_config(write(tmp_path, """
dimensions:
  - label: team
    attributes: [app.team, team]
    max_values: 20
budgets:
  - kind: cost_usd_per_day
    labels: {team: search}
    value: 200
"""))
    assert (config.dimensions, config.budgets) == (
        (Dimension("team", ("app.team", "team"), 20),),
        (Budget(catalog.BUDGET_COST_USD_PER_DAY.name, (("team", "search"),), 200.0),),
    )


def test_every_problem_is_reported_at_once_with_its_path(tmp_path):
    assert problems(tmp_path, """
dimensions:
  - label: user-tier
    attributes: []
    max_values: 0
  - label: model
    attributes: [x]
budgets:
  - kind: tokens_per_hour
    labels: {team: a}
    value: -1
limits:
  max_values: {model: many}
colour: blue
""") == [
        "colour: unknown key (known: budgets, dimensions, hashing, limits, output_checks, prices, server)",
        "dimensions[0].label: must be a Prometheus label name, got 'user-tier'",
        "dimensions[0].attributes: must be a non-empty list of attribute names",
        "dimensions[0].max_values: must be a positive integer, got 0",
        "dimensions[1].label: 'model' is reserved by the exporter",
        "budgets[0].kind: must be one of cost_usd_per_day, tokens_per_second, got 'tokens_per_hour'",
        "budgets[0].labels.team: is not a configured dimension label",
        "budgets[0].value: must be a positive number, got -1",
        "limits.max_values.model: must be a positive integer, got 'many'",
    ]


def test_missing_price_file_is_named(tmp_path):
    assert problems(tmp_path, "prices: [negotiated.yml]") == [
        f"prices[0]: file not found: {tmp_path / 'negotiated.yml'}"]


def test_invalid_yaml_names_the_line(tmp_path):
    assert problems(tmp_path, "dimensions: [\n  - label: x\n") == [
        "line 2, column 3: not valid YAML: expected the node content, but found '-'"]


def test_top_level_must_be_a_mapping(tmp_path):
    assert problems(tmp_path, "- a\n- b\n") == ["(top level): must be a mapping, got list"]


def test_unreadable_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError) as raised:
        load_config(tmp_path / "absent.yml")
    assert raised.value.problems == ["(file): cannot read: No such file or directory"]


def test_error_message_lists_each_problem_on_its_own_line(tmp_path):
    with pytest.raises(ConfigError) as raised:
        load_config(write(tmp_path, "server: {max_request_bytes: 0, max_concurrent_requests: -2}"))
    assert str(raised.value) == (
        f"invalid configuration {tmp_path / 'genai-exporter.yml'}:\n"
        "  server.max_request_bytes: must be a positive integer, got 0\n"
        "  server.max_concurrent_requests: must be a positive integer, got -2")
