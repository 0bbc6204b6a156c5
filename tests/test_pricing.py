"""Specification of the price stage: which entry bills a span's model, and what the call cost."""

from __future__ import annotations

from pathlib import Path

import pytest

from genai_exporter.config import ConfigError
from genai_exporter.pricing import (
    LOOKUP_CACHE_SIZE,
    PriceEntry,
    PriceTier,
    load_price_table,
    price_usage,
)
from genai_exporter.records import TokenCost, TokenUsage

# Also run from the Python sources, not only compiled (scripts/test.sh).
pytestmark = pytest.mark.data_path

# The models the built-in table promises to price, as (provider, model) reported on spans.
REQUIRED_MODELS = [
    ("openai", model) for model in (
        "gpt-5", "gpt-5-mini", "gpt-5-nano", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "gpt-4o",
        "gpt-4o-mini", "o3", "o3-mini", "o4-mini", "o1", "text-embedding-3-small",
        "text-embedding-3-large", "text-embedding-ada-002")
] + [
    ("anthropic", model) for model in (
        "claude-opus-4-1", "claude-opus-4-5", "claude-sonnet-4", "claude-sonnet-4-5", "claude-haiku-4-5",
        "claude-3-5-haiku", "claude-3-7-sonnet")
] + [
    ("gcp.gemini", model) for model in (
        "gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.5-flash-lite", "gemini-2.0-flash",
        "gemini-embedding-001")
] + [
    ("gcp.vertex_ai", "text-embedding-004"),
] + [
    ("mistral_ai", model) for model in (
        "mistral-large-latest", "mistral-medium-latest", "mistral-small-latest", "codestral-latest",
        "mistral-embed")
] + [
    ("x_ai", model) for model in ("grok-4", "grok-3", "grok-3-mini", "grok-4-fast-reasoning")
] + [
    ("deepseek", "deepseek-chat"), ("deepseek", "deepseek-reasoner"),
    ("cohere", "embed-english-v3.0"), ("cohere", "embed-v4.0"), ("voyage_ai", "voyage-3.5"),
]


@pytest.fixture(scope="module")
def builtin():
    return load_price_table()


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def entry(**overrides) -> PriceEntry:
    """A price entry for semantics tests, independent of the built-in prices."""
    values = dict(model="acme-chat", provider="acme", input=2.0, output=8.0, cache_read=None,
                  cache_write=None, tiers=(), source="https://acme.example/pricing", as_of="2026-11-01")
    values.update(overrides)
    return PriceEntry(**values)


# --- The built-in table ---------------------------------------------------------------------------

def test_builtin_table_loads_and_prices_every_required_model(builtin):
    unpriced = [(provider, model) for provider, model in REQUIRED_MODELS
                if builtin.lookup(provider, model) is None]
    assert unpriced == []


def test_builtin_table_counts_its_entries(builtin):
    assert len(builtin) == 73


# --- Cost of a call ---------------------------------------------------------------------------------

def test_sonnet_4_5_50k_in_4k_out_costs_the_article_example(builtin):
    sonnet = builtin.lookup("anthropic", "claude-sonnet-4-5")

    cost = price_usage(sonnet, TokenUsage(input=50_000, output=4_000))

    assert (cost.input, cost.output) == (0.15, 0.06)
    assert cost.total == pytest.approx(0.21, rel=1e-12)


def test_cached_input_is_priced_at_the_cache_read_rate(builtin):
    sonnet = builtin.lookup("anthropic", "claude-sonnet-4-5")

    cost = price_usage(sonnet, TokenUsage(input=10_000, cache_read=40_000, output=1_000))

    assert cost == TokenCost(input=0.03, cache_read=0.012, cache_write=0.0, output=0.015,
                             cache_savings=40_000 * (3.0 - 0.3) / 1e6)


def test_cache_writes_are_priced_at_the_cache_write_rate(builtin):
    sonnet = builtin.lookup("anthropic", "claude-sonnet-4-5")

    cost = price_usage(sonnet, TokenUsage(input=2_000, cache_write=10_000, output=500))

    assert cost.cache_write == 0.0375


def test_cache_tokens_without_a_cache_price_are_priced_at_the_input_rate():
    no_cache_prices = entry(input=5.0, cache_read=None, cache_write=None)

    cost = price_usage(no_cache_prices, TokenUsage(cache_read=1_000, cache_write=2_000))

    assert (cost.cache_read, cost.cache_write) == (0.005, 0.01)


def test_prompt_at_the_threshold_is_billed_at_base_rates(builtin):
    sonnet = builtin.lookup("anthropic", "claude-sonnet-4-5")

    cost = price_usage(sonnet, TokenUsage(input=150_000, cache_read=50_000, output=1_000))

    assert cost == TokenCost(input=0.45, cache_read=0.015, cache_write=0.0, output=0.015,
                             cache_savings=50_000 * (3.0 - 0.3) / 1e6)


def test_prompt_one_token_over_the_threshold_bills_the_whole_request_at_the_tier(builtin):
    sonnet = builtin.lookup("anthropic", "claude-sonnet-4-5")

    cost = price_usage(sonnet, TokenUsage(input=150_001, cache_read=50_000, output=1_000))

    assert cost == TokenCost(input=150_001 * 6.0 / 1e6, cache_read=0.03, cache_write=0.0, output=0.0225,
                             cache_savings=50_000 * (6.0 - 0.6) / 1e6)


def test_highest_exceeded_tier_wins():
    tiered = entry(tiers=(
        PriceTier(128_000, input=4.0, output=16.0, cache_read=None, cache_write=None),
        PriceTier(200_000, input=6.0, output=24.0, cache_read=None, cache_write=None),
    ))

    cost = price_usage(tiered, TokenUsage(input=250_000, output=1_000))

    assert (cost.input, cost.output) == (1.5, 0.024)


def test_tier_without_cache_price_bills_cached_tokens_at_the_tier_input_rate():
    tiered = entry(cache_read=0.2, tiers=(PriceTier(100_000, 4.0, 16.0, None, None),))

    cost = price_usage(tiered, TokenUsage(input=50_000, cache_read=100_000))

    assert cost.cache_read == 0.4


# --- Which entry bills a model name ------------------------------------------------------------------

@pytest.mark.parametrize(("provider", "reported", "canonical"), [
    ("openai", "gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
    ("openai", "gpt-5-2025-08-07", "gpt-5"),
    ("anthropic", "claude-3-5-haiku-20241022", "claude-3-5-haiku"),
    ("anthropic", "claude-3-5-haiku-latest", "claude-3-5-haiku"),
    ("gcp.gemini", "gemini-2.0-flash-001", "gemini-2.0-flash"),
    ("x_ai", "grok-4-0709", "grok-4"),
    ("mistral_ai", "codestral-2508", "codestral"),
])
def test_dated_and_versioned_names_fold_into_the_base_model(builtin, provider, reported, canonical):
    assert builtin.lookup(provider, reported).model == canonical


@pytest.mark.parametrize(("provider", "reported", "canonical"), [
    ("openai", "openai/gpt-4o", "gpt-4o"),
    ("gcp.gemini", "models/gemini-2.5-pro", "gemini-2.5-pro"),
    ("aws.bedrock", "us.anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5"),
    ("aws.bedrock", "anthropic.claude-3-5-haiku-20241022-v1:0", "claude-3-5-haiku"),
    ("aws.bedrock", "global.anthropic.claude-opus-4-6-v1", "claude-opus-4-6"),
    ("gcp.vertex_ai", "claude-sonnet-4-5@20250929", "claude-sonnet-4-5"),
    ("gcp.vertex_ai", "claude-opus-4-6@default", "claude-opus-4-6"),
    ("openai", "GPT-4o-Mini", "gpt-4o-mini"),
])
def test_routing_prefixes_and_cloud_ids_are_matched(builtin, provider, reported, canonical):
    assert builtin.lookup(provider, reported).model == canonical


def test_a_dated_name_the_table_prices_itself_wins_over_folding(builtin):
    launch_snapshot = builtin.lookup("openai", "gpt-4o-2024-05-13")

    assert (launch_snapshot.model, launch_snapshot.input) == ("gpt-4o-2024-05-13", 5.0)


def test_alias_finds_its_entry(builtin):
    assert builtin.lookup("mistral_ai", "mistral-large-latest").model == "mistral-large-3"


@pytest.mark.parametrize("reported", ["llama-3.1-8b-instruct", "gpt-4o-realtime-preview", "", "claude"])
def test_unknown_model_has_no_price(builtin, reported):
    assert builtin.lookup("openai", reported) is None


def test_overlong_model_name_has_no_price_and_is_not_cached():
    table = load_price_table()

    assert table.lookup("openai", "gpt-4o" + "x" * 10_000) is None
    assert table.cached_lookups() == 0


def test_lookup_cache_stays_bounded_after_100k_distinct_unknown_names():
    table = load_price_table()

    for number in range(100_000):
        table.lookup("openai", f"synthetic-model-{number}")

    assert table.cached_lookups() == LOOKUP_CACHE_SIZE
    assert table.lookup("openai", "gpt-4o-mini").model == "gpt-4o-mini"


# --- User price files ------------------------------------------------------------------------------

def test_user_file_overrides_a_builtin_price(tmp_path):
    negotiated = write(tmp_path, "negotiated.yaml", """
models:
  - {model: gpt-4o, provider: openai, input: 2.0, output: 8.0, cache_read: 1.0,
     source: "contract 2026-17", as_of: 2026-10-01}
""")

    gpt_4o = load_price_table([negotiated]).lookup("openai", "gpt-4o-2024-11-20")

    assert (gpt_4o.input, gpt_4o.output, gpt_4o.source) == (2.0, 8.0, "contract 2026-17")


def test_user_file_adds_a_self_hosted_model_at_zero(tmp_path):
    self_hosted = write(tmp_path, "self-hosted.yaml", """
models:
  - model: llama-3.1-8b-instruct
    provider: vllm
    input: 0
    output: 0
    source: self-hosted on our GPUs
    as_of: 2026-11-01
""")
    table = load_price_table([self_hosted])

    llama = table.lookup("vllm", "meta-llama/Llama-3.1-8B-Instruct")

    assert price_usage(llama, TokenUsage(input=10_000, output=2_000)) == TokenCost()
    assert len(table) == 74


def test_later_user_file_wins_over_an_earlier_one(tmp_path):
    first = write(tmp_path, "a.yaml", "models: [{model: acme-chat, provider: acme, input: 1, output: 2,"
                                      " source: a, as_of: 2026-01-01}]")
    second = write(tmp_path, "b.yaml", "models: [{model: acme-chat, provider: acme, input: 3, output: 4,"
                                       " source: b, as_of: 2026-02-01}]")

    assert load_price_table([first, second]).lookup("acme", "acme-chat").source == "b"


def test_entry_of_the_spans_provider_is_preferred_when_names_collide(tmp_path):
    bedrock_regional = write(tmp_path, "bedrock.yaml", """
models:
  - {model: claude-sonnet-4-5, provider: aws.bedrock, input: 3.3, output: 16.5,
     source: https://aws.amazon.com/bedrock/pricing/, as_of: 2026-11-22}
""")
    table = load_price_table([bedrock_regional])

    assert table.lookup("aws.bedrock", "us.anthropic.claude-sonnet-4-5-20250929-v1:0").input == 3.3
    assert table.lookup("anthropic", "claude-sonnet-4-5-20250929").input == 3.0


def test_provider_aliases_in_price_files_are_normalised(tmp_path):
    legacy_name = write(tmp_path, "gemini.yaml", """
models:
  - {model: gemini-2.5-pro, provider: gemini, input: 1.0, output: 8.0, source: contract, as_of: 2026-10-01}
""")

    gemini = load_price_table([legacy_name]).lookup("gcp.gemini", "gemini-2.5-pro")

    assert (gemini.provider, gemini.input) == ("gcp.gemini", 1.0)


def test_pattern_must_match_the_whole_model_name(tmp_path):
    patterned = write(tmp_path, "acme.yaml", r"""
models:
  - {model: acme-llm, provider: acme, input: 1, output: 1, patterns: ['acme-llm-\d+b'],
     source: https://acme.example/pricing, as_of: 2026-11-01}
""")
    table = load_price_table([patterned])

    assert table.lookup("acme", "acme-llm-70b").model == "acme-llm"
    assert table.lookup("acme", "acme-llm-70b-instruct") is None


def test_every_problem_of_a_price_file_is_reported_at_once_with_its_path(tmp_path):
    broken = write(tmp_path, "broken.yaml", """
models:
  - {model: a, provider: acme, input: -1, output: 1, source: s, as_of: 2026-11-01}
  - {model: b, provider: acme, input: 1, source: s, as_of: 2026-13-01, colour: red}
  - model: c
    provider: acme
    input: 1
    output: 1
    patterns: ['(unclosed']
    tiers: [{above_prompt_tokens: 0, input: 1, output: true}]
    source: s
    as_of: 2026-11-01
  - {model: d, provider: acme, input: 1, output: 1, source: s, as_of: 2026-11-01}
  - {model: e, aliases: [D], provider: acme, input: 1, output: 1, source: s, as_of: 2026-11-01}
  - just a string
""")

    with pytest.raises(ConfigError) as raised:
        load_price_table([broken])

    assert raised.value.source == str(broken)
    assert raised.value.problems == [
        "models[0].input: must be a non-negative number, got -1",
        "models[1].colour: unknown key (known: aliases, as_of, cache_read, cache_write, input, model, "
        "output, patterns, provider, source, tiers)",
        "models[1].as_of: must be a date YYYY-MM-DD, got '2026-13-01'",
        "models[1].output: missing (required)",
        "models[2].tiers[0].above_prompt_tokens: must be a positive integer, got 0",
        "models[2].tiers[0].output: must be a non-negative number, got True",
        "models[2].patterns[0]: not a valid regular expression: missing ), unterminated subpattern "
        "at position 0",
        "models[4]: name 'D' of provider 'acme' is already used by models[3]",
        "models[5]: must be a mapping, got str",
    ]


def test_top_level_must_be_a_models_list(tmp_path):
    wrong_shape = write(tmp_path, "wrong.yaml", "prices: []\n")

    with pytest.raises(ConfigError) as raised:
        load_price_table([wrong_shape])

    assert raised.value.problems == [
        "prices: unknown key (known: models)",
        "models: must be a list of price entries, got NoneType",
    ]


def test_invalid_yaml_names_its_line(tmp_path):
    not_yaml = write(tmp_path, "bad.yaml", "models:\n  - {model: a\n")

    with pytest.raises(ConfigError) as raised:
        load_price_table([not_yaml])

    assert raised.value.problems[0].startswith("line 3, column 1: not valid YAML")


def test_missing_user_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError) as raised:
        load_price_table([tmp_path / "absent.yaml"])

    assert raised.value.problems == ["(file): cannot read: No such file or directory"]
