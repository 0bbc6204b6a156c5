"""Specification of the LiteLLM price-map import: per-token prices become our per-million table."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest
import yaml

from genai_exporter.config import ConfigError
from genai_exporter.litellm_import import LITELLM_PRICES_URL, convert_litellm, import_litellm
from genai_exporter.pricing import load_price_table, price_usage
from genai_exporter.records import TokenCost, TokenUsage

# Also run from the Python sources, not only compiled (scripts/test.sh).
pytestmark = pytest.mark.data_path

SAMPLE = Path(__file__).parent / "fixtures" / "litellm_prices_sample.json"
READ_ON = datetime.date(2026, 11, 22)


def converted_models(document: dict) -> list[dict]:
    text, _ = convert_litellm(document, as_of=READ_ON)
    return yaml.safe_load(text)["models"]


def test_converted_sample_loads_as_a_user_price_file_and_prices_a_call(tmp_path):
    text, _ = import_litellm(SAMPLE, as_of=READ_ON)
    imported = tmp_path / "litellm.yaml"
    imported.write_text(text, encoding="utf-8")

    vertex_sonnet = load_price_table([imported]).lookup("gcp.vertex_ai", "claude-sonnet-4-5@20250929")
    cost = price_usage(vertex_sonnet, TokenUsage(input=250_000, output=2_000))

    assert (vertex_sonnet.provider, vertex_sonnet.as_of) == ("gcp.vertex_ai", "2026-11-22")
    assert cost == TokenCost(input=1.5, output=0.045)


def test_report_counts_converted_models_and_skips_by_reason():
    _, report = import_litellm(SAMPLE, as_of=READ_ON)

    assert report.converted == 13
    assert report.skipped == {
        "missing input_cost_per_token": 1,
        "mode audio_speech is not priced per token": 1,
        "mode audio_transcription is not priced per token": 1,
        "mode image_generation is not priced per token": 1,
        "mode moderation is not priced per token": 1,
        "mode rerank is not priced per token": 1,
        "same provider and model as a shorter key": 1,
    }


def test_report_reads_as_a_summary():
    _, report = convert_litellm({"tts-1": {"litellm_provider": "openai", "mode": "audio_speech",
                                           "input_cost_per_character": 1.5e-05}}, as_of=READ_ON)

    assert str(report) == ("converted 0 models, skipped 1\n"
                           "  skipped 1: mode audio_speech is not priced per token")


def test_per_token_prices_become_exact_per_million_prices_with_long_context_tiers():
    sample = json.loads(SAMPLE.read_text(encoding="utf-8"))

    (gpt_5_4,) = converted_models({"gpt-5.4": sample["gpt-5.4"]})

    assert gpt_5_4 == {
        "model": "gpt-5.4", "provider": "openai", "input": 2.5, "output": 15.0, "cache_read": 0.25,
        "tiers": [{"above_prompt_tokens": 272000, "input": 5.0, "output": 22.5, "cache_read": 0.5}],
        "source": "https://developers.openai.com/api/docs/pricing", "as_of": "2026-11-22",
    }


def test_tier_rate_litellm_omits_is_the_base_rate():
    (grok,) = converted_models({"xai/grok-4-0709": {
        "litellm_provider": "xai", "mode": "chat", "input_cost_per_token": 3e-06,
        "output_cost_per_token": 1.5e-05, "cache_read_input_token_cost": 7.5e-07,
        "input_cost_per_token_above_128k_tokens": 6e-06,
    }})

    assert grok["tiers"] == [
        {"above_prompt_tokens": 128000, "input": 6.0, "output": 15.0, "cache_read": 0.75}]


@pytest.mark.parametrize(("litellm_provider", "provider"), [
    ("openai", "openai"),
    ("anthropic", "anthropic"),
    ("vertex_ai-anthropic_models", "gcp.vertex_ai"),
    ("vertex_ai-language-models", "gcp.vertex_ai"),
    ("gemini", "gcp.gemini"),
    ("mistral", "mistral_ai"),
    ("xai", "x_ai"),
    ("deepseek", "deepseek"),
    ("bedrock", "aws.bedrock"),
    ("bedrock_converse", "aws.bedrock"),
    ("azure", "azure.ai.openai"),
    ("cohere_chat", "cohere"),
    ("groq", "groq"),
    ("together_ai", "together_ai"),
])
def test_litellm_providers_become_gen_ai_provider_names(litellm_provider, provider):
    (model,) = converted_models({"some-model": {
        "litellm_provider": litellm_provider, "mode": "chat",
        "input_cost_per_token": 1e-06, "output_cost_per_token": 2e-06,
    }})

    assert model["provider"] == provider


def test_routing_prefix_is_removed_and_the_unprefixed_key_wins_a_collision():
    sample = json.loads(SAMPLE.read_text(encoding="utf-8"))
    bedrock_keys = ("anthropic.claude-sonnet-4-5-20250929-v1:0",
                    "bedrock/us-gov-east-1/anthropic.claude-sonnet-4-5-20250929-v1:0")

    (sonnet,) = converted_models({key: sample[key] for key in bedrock_keys})

    assert (sonnet["model"], sonnet["input"]) == ("anthropic.claude-sonnet-4-5-20250929-v1:0", 3.0)


def test_embedding_without_output_price_is_converted_at_zero_output():
    (embedding,) = converted_models({"mistral/mistral-embed": {
        "litellm_provider": "mistral", "mode": "embedding", "input_cost_per_token": 1e-07,
    }})

    assert (embedding["model"], embedding["input"], embedding["output"]) == ("mistral-embed", 0.1, 0.0)


def test_chat_model_without_output_price_is_skipped():
    _, report = convert_litellm({"acme/chat": {"litellm_provider": "acme", "mode": "chat",
                                               "input_cost_per_token": 1e-06}}, as_of=READ_ON)

    assert report.skipped == {"missing output_cost_per_token": 1}


def test_entry_without_a_source_url_cites_litellm():
    sample = json.loads(SAMPLE.read_text(encoding="utf-8"))

    (voyage,) = converted_models({"voyage/voyage-3.5": sample["voyage/voyage-3.5"]})

    assert voyage["source"] == LITELLM_PRICES_URL


def test_output_is_identical_whatever_the_key_order():
    sample = json.loads(SAMPLE.read_text(encoding="utf-8"))
    reversed_sample = dict(reversed(list(sample.items())))

    assert convert_litellm(sample, as_of=READ_ON) == convert_litellm(reversed_sample, as_of=READ_ON)


def test_invalid_json_names_its_line(tmp_path):
    broken = tmp_path / "prices.json"
    broken.write_text('{\n  "gpt-4o": {"mode": "chat",}\n}\n', encoding="utf-8")

    with pytest.raises(ConfigError) as raised:
        import_litellm(broken)

    assert raised.value.problems == ["line 2, column 29: not valid JSON: Expecting property name enclosed "
                                     "in double quotes"]


def test_json_that_is_not_an_object_is_rejected(tmp_path):
    a_list = tmp_path / "prices.json"
    a_list.write_text("[]", encoding="utf-8")

    with pytest.raises(ConfigError) as raised:
        import_litellm(a_list)

    assert raised.value.problems == ["(top level): must be an object of models, got list"]


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError) as raised:
        import_litellm(tmp_path / "absent.json")

    assert raised.value.problems == ["(file): cannot read: No such file or directory"]
