"""Specification of privacy: pseudonymised dimensions, and content that never leaves the exporter.

A dimension with `hash: true` shows a keyed pseudonym of the user id; message content, prompts and
tool arguments never become labels or log lines, whatever the instrumentation puts on its spans.
"""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from genai_exporter import catalog, cli, semconv
from genai_exporter.config import ConfigError, load_config, parse_config
from genai_exporter.pipeline import Pipeline
from genai_exporter.records import SpanEvent
from tests import dump_dialects
from tests.instrumented import STANDARD_SCENARIOS, Instrumentation, capture_all, to_otlp_protobuf
from tests.otlpwire import JSON, Client, json_body, protobuf_body
from tests.serving import ServeProcess, built_in_prices
from tests.spanfactory import chat_attributes, new_span_id, span

# Also run from the Python sources, not only compiled (scripts/test.sh).
pytestmark = pytest.mark.data_path

SECRET = "0d9c2f6e8a4b1c3d5e7f9a0b2c4d6e8f"
# echo -n alice@example.com | openssl dgst -sha256 -hmac 0d9c2f6e8a4b1c3d5e7f9a0b2c4d6e8f -> f1ade440f918...
ALICE_PSEUDONYM = "h_f1ade440f918"
USER_DIMENSION = """
dimensions:
  - label: user
    attributes: [enduser.id]
    hash: true
    max_values: 10000
  - label: feature
    attributes: [app.feature]
"""


def write(directory: Path, text: str, name: str = "genai-exporter.yml") -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def problems(text: str, environ: dict[str, str], base_dir: Path = Path(".")) -> list[str]:
    import yaml

    with pytest.raises(ConfigError) as raised:
        parse_config(yaml.safe_load(text), "genai-exporter.yml", base_dir, environ)
    return raised.value.problems


def tokens_by_user(config_file: Path, user: str, environ: dict[str, str] | None = None) -> dict[str, float]:
    """Ingest one chat span of `user` through a pipeline built from the file; tokens by `user` label."""
    import yaml
    from prometheus_client import CollectorRegistry

    config = parse_config(yaml.safe_load(config_file.read_text()), str(config_file), config_file.parent,
                          environ if environ is not None else {"GENAI_EXPORTER_HASH_SECRET": SECRET})
    pipeline = Pipeline(config, built_in_prices())
    pipeline.ingest([span(chat_attributes(**{"enduser.id": user, "app.feature": "search"}))])
    registry = CollectorRegistry()
    registry.register(pipeline.collector)
    return {s.labels["user"]: s.value for f in registry.collect() for s in f.samples
            if s.name == catalog.TOKENS.name and s.labels["token_type"] == "input"}


# --- Pseudonymised dimensions ---------------------------------------------------------------------------

def test_a_hashed_dimension_shows_a_keyed_pseudonym_instead_of_the_user_id(tmp_path):
    assert tokens_by_user(write(tmp_path, USER_DIMENSION), "alice@example.com") == {ALICE_PSEUDONYM: 1200.0}


def test_the_pseudonym_is_the_same_after_a_restart_with_the_same_secret(tmp_path):
    config_file = write(tmp_path, USER_DIMENSION)
    assert tokens_by_user(config_file, "alice@example.com") == tokens_by_user(config_file, "alice@example.com")


def test_another_secret_gives_other_pseudonyms(tmp_path):
    other = {"GENAI_EXPORTER_HASH_SECRET": "a-different-secret-of-32-bytes!!"}
    assert tokens_by_user(write(tmp_path, USER_DIMENSION), "alice@example.com", other).keys() != {ALICE_PSEUDONYM}


def test_the_secret_can_come_from_a_file(tmp_path):
    (tmp_path / "hash-secret").write_text(SECRET + "\n")  # as `openssl rand -hex 16 > hash-secret` writes it
    config_file = write(tmp_path, USER_DIMENSION + "hashing: {secret_file: hash-secret}\n")
    assert tokens_by_user(config_file, "alice@example.com", environ={}) == {ALICE_PSEUDONYM: 1200.0}


def test_a_span_without_the_user_attribute_stays_unknown_rather_than_hashing_nothing(tmp_path):
    assert tokens_by_user(write(tmp_path, USER_DIMENSION), "") == {"": 1200.0}


def test_a_hashed_dimension_without_a_secret_is_a_config_error():
    assert problems(USER_DIMENSION, environ={}) == [
        "dimensions: hashed dimensions need a secret: environment variable GENAI_EXPORTER_HASH_SECRET is not set "
        "(or set hashing.secret_file)"]


def test_the_secret_may_not_be_written_in_the_config_file():
    text = USER_DIMENSION + f"hashing: {{secret: {SECRET}}}\n"
    assert problems(text, environ={"GENAI_EXPORTER_HASH_SECRET": SECRET}) == [
        "hashing.secret: the secret may not be written in the config file: put it in a file (secret_file) or an "
        "environment variable (secret_env)"]


def test_a_short_secret_is_refused(tmp_path):
    assert problems(USER_DIMENSION + "hashing: {secret_env: APP_HASH_KEY}\n", environ={"APP_HASH_KEY": "changeme"}) == [
        "hashing.secret_env: the secret in environment variable APP_HASH_KEY is 8 bytes long: use at least 16 "
        "(e.g. openssl rand -hex 32)"]


def test_a_dimension_that_reads_message_content_is_refused():
    text = f"dimensions:\n  - {{label: question, attributes: [app.question, {semconv.INPUT_MESSAGES}]}}\n"
    assert problems(text, environ={}) == [
        f"dimensions[0].attributes: '{semconv.INPUT_MESSAGES}' holds message content, prompts or tool arguments, "
        "which never become labels"]


def test_serve_refuses_to_start_with_a_hashed_dimension_and_no_secret(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("GENAI_EXPORTER_HASH_SECRET", raising=False)
    config_file = write(tmp_path, USER_DIMENSION)
    code = cli.main(["serve", "--config.file", str(config_file), "--web.listen-address", "127.0.0.1:0",
                     "--otlp.listen-address", "127.0.0.1:0"])
    assert (code, capsys.readouterr().err.splitlines()[1]) == (
        2, "  dimensions: hashed dimensions need a secret: environment variable GENAI_EXPORTER_HASH_SECRET is not "
           "set (or set hashing.secret_file)")


def test_the_config_repr_never_shows_secrets(tmp_path, monkeypatch):
    monkeypatch.setenv("GENAI_TEST_SECRET", SECRET)
    config = load_config(write(tmp_path, USER_DIMENSION + "hashing: {secret_env: GENAI_TEST_SECRET}\n"
                                         f"server: {{bearer_tokens: [{'t' * 32}]}}\n"))
    assert (SECRET in repr(config), "t" * 32 in repr(config)) == (False, False)



# --- Content never leaks ----------------------------------------------------------------------------------

MARKER = "ZQXJ-secret-content"


def marked(key: str) -> str:
    return f"{MARKER}-{key}"


def marker_spans() -> list:
    """Hand-made spans whose every content attribute, span name, event and unread attribute holds a marker."""
    content = {key: marked(key) for key in sorted(semconv.CONTENT_ATTRIBUTES)}
    content["gen_ai.prompt.0.content"] = marked("gen_ai.prompt.0.content")
    content["llm.input_messages.0.message.content"] = marked("llm.input_messages.0.message.content")
    unread = {"http.request.body": marked("http.request.body"), "app.ticket.text": marked("app.ticket.text")}
    chat = span(chat_attributes(**content, **unread, **{"enduser.id": "alice@example.com"}), name=marked("name"))
    tool_attributes = {semconv.OPERATION_NAME: semconv.OP_EXECUTE_TOOL, semconv.TOOL_NAME: "search_docs", **content}
    tool = span(tool_attributes, span_id=new_span_id())
    event = SpanEvent("gen_ai.client.inference.operation.details", chat.end_time_unix_nano,
                      {semconv.INPUT_MESSAGES: marked("event"), "gen_ai.user.message": marked("event-user")})
    with_event = span(chat_attributes(), span_id=new_span_id())._replace(events=(event,))
    # A span rejected for its tokens: its rejection message (back to the sender) names the span.
    rejected = span(chat_attributes(input_tokens=-5, **content), name=marked("rejected-name"))
    return [chat, tool, with_event, rejected]


def content_strings(captures: dict) -> set[str]:
    """What the instrumentation libraries captured of the conversation: every piece of text (a string of
    a content attribute, or of the JSON it holds, with at least two words) and every tool argument list.

    Model names and roles inside the same JSON are not content and may well be labels."""
    found: set[str] = set()

    def leaves(value: object) -> None:
        if isinstance(value, str):
            try:
                parsed = json.loads(value)
            except ValueError:
                parsed = None
            if isinstance(parsed, dict | list):
                leaves(parsed)
            elif " " in value.strip():
                found.add(value)
        elif isinstance(value, dict):
            for item in value.values():
                leaves(item)
        elif isinstance(value, list | tuple):
            for item in value:
                leaves(item)

    for by_scenario in captures.values():
        for capture in by_scenario.values():
            for captured in capture.spans:
                for key, value in captured.attributes.items():
                    if semconv.is_content_attribute(key):
                        leaves(value)
                        if key.endswith("arguments") and isinstance(value, str):
                            found.add(value)
    return found


@pytest.fixture(scope="module")
def content_captures() -> dict:
    """The standard scenarios under every library that captures content (one process each)."""
    with_content = [Instrumentation.OPENAI_V2_LATEST_CONTENT, Instrumentation.OPENINFERENCE,
                    Instrumentation.OPENLLMETRY]
    return capture_all(with_content, STANDARD_SCENARIOS, dump_dialects.SERVICE_NAME)


def test_content_from_spans_never_reaches_metrics_or_logs(tmp_path, content_captures):
    captured = content_strings(content_captures)
    assert {"What is the capital of France?", "You are a concise assistant.", '{"city": "Paris"}'} <= captured
    config_file = write(tmp_path, USER_DIMENSION)
    exporter = ServeProcess(["--config.file", str(config_file)], log_level="debug",
                            environment={**os.environ, "GENAI_EXPORTER_HASH_SECRET": SECRET})
    captured_spans = [c.spans for by_scenario in content_captures.values() for c in by_scenario.values()]
    try:
        client = Client(exporter.otlp_port)
        bodies = [(to_otlp_protobuf(spans), "application/x-protobuf", None) for spans in captured_spans]
        bodies += [(protobuf_body(marker_spans()), "application/x-protobuf", None),
                   (json_body(marker_spans()), JSON, None),
                   (gzip.compress(json_body(marker_spans())), JSON, "gzip"),
                   (json_body(marker_spans()).replace(b'"traceId"', b'"traceId": "' + MARKER.encode() + b'", "x"'),
                    JSON, None)]
        statuses = {client.export(body, content_type, **({"Content_Encoding": encoding} if encoding else {})).status
                    for body, content_type, encoding in bodies}
        web = Client(exporter.web_port)
        text = web.request("GET", "/metrics").body.decode()
        openmetrics = web.request("GET", "/metrics", headers={"Accept": "application/openmetrics-text"}).body.decode()
    finally:
        code = exporter.stop()
    log = "\n".join(exporter.log)
    leaked = {s for s in captured | {MARKER, "alice@example.com"} if s in text or s in openmetrics or s in log}
    # Every span of the accepted bodies was read: the check ran on spans that were counted.
    received = sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
                   if s.name == catalog.SPANS_RECEIVED.name)
    sent = sum(len(spans) for spans in captured_spans) + 3 * len(marker_spans())
    assert (statuses, code, leaked, received == sent, ALICE_PSEUDONYM in text, "POST /v1/traces" in log) == (
        {200, 400}, 0, set(), True, True, True)
