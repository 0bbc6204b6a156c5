"""Specification of the `server` section's protection keys: connections, queue, shutdown, bearer tokens."""

from __future__ import annotations

from genai_exporter.config import IngestAuth, ServerLimits, load_config
from tests.configfiles import problems, write

TOKEN = "7f3c1e9a5b2d4f608a1c3e5f7b9d2a4c"


def test_defaults_bound_connections_queue_wait_and_shutdown():
    limits = ServerLimits()
    assert (limits.max_connections, limits.queue_timeout_seconds, limits.shutdown_timeout_seconds) == (512, 1.0, 25.0)


def test_protection_keys_are_read(tmp_path):
    config = load_config(write(tmp_path, "server: {max_connections: 64, queue_timeout_seconds: 0.25, "
                                         "shutdown_timeout_seconds: 10, max_concurrent_requests: 4}\n"))
    assert config.server == ServerLimits(max_concurrent_requests=4, queue_timeout_seconds=0.25, max_connections=64,
                                         shutdown_timeout_seconds=10.0)


def test_no_bearer_token_means_the_otlp_listener_asks_for_none():
    assert load_config(None).ingest_auth == IngestAuth()


def test_bearer_tokens_from_the_config(tmp_path):
    assert load_config(write(tmp_path, f"server: {{bearer_tokens: [{TOKEN}]}}\n")).ingest_auth == IngestAuth((TOKEN,))


def test_a_bearer_tokens_file_is_relative_to_the_config_file(tmp_path):
    write(tmp_path, f"# the collector\n{TOKEN}\n", "otlp-tokens")
    config = load_config(write(tmp_path, "server: {bearer_tokens_file: otlp-tokens}\n"))
    assert config.ingest_auth == IngestAuth(bearer_tokens_file=tmp_path / "otlp-tokens")


def test_weak_or_malformed_tokens_are_named_by_position_never_quoted(tmp_path):
    assert problems(tmp_path, 'server: {bearer_tokens: [short, "has spaces in it, too many", 42]}\n') == [
        "server.bearer_tokens[0]: is 5 characters long: use at least 16 (e.g. openssl rand -hex 32)",
        "server.bearer_tokens[1]: must consist of letters, digits and -._~+/ (an RFC 6750 bearer token)",
        "server.bearer_tokens[2]: must be a string, got int",
    ]


def test_a_token_file_with_no_token_or_a_bad_line_is_refused(tmp_path):
    write(tmp_path, "# nothing yet\n\n", "empty-tokens")
    write(tmp_path, f"{TOKEN}\nhunter2\n", "weak-tokens")
    assert (problems(tmp_path, "server: {bearer_tokens_file: empty-tokens}\n"),
            problems(tmp_path, "server: {bearer_tokens_file: weak-tokens}\n")) == (
        [f"server.bearer_tokens_file: {tmp_path / 'empty-tokens'}: holds no token"],
        [f"server.bearer_tokens_file: {tmp_path / 'weak-tokens'}: line 2: is 7 characters long: use at least 16 "
         "(e.g. openssl rand -hex 32)"])


def test_a_missing_token_file_is_named(tmp_path):
    assert problems(tmp_path, "server: {bearer_tokens_file: otlp-tokens}\n") == [
        f"server.bearer_tokens_file: {tmp_path / 'otlp-tokens'}: cannot read: No such file or directory"]


def test_tokens_come_from_a_list_or_a_file_not_both(tmp_path):
    write(tmp_path, f"{TOKEN}\n", "otlp-tokens")
    assert problems(tmp_path, f"server: {{bearer_tokens: [{TOKEN}], bearer_tokens_file: otlp-tokens}}\n") == [
        "server: set one of bearer_tokens and bearer_tokens_file, not both"]


def test_protection_keys_must_be_positive(tmp_path):
    text = "server: {max_connections: 0, queue_timeout_seconds: -1, shutdown_timeout_seconds: soon}\n"
    assert problems(tmp_path, text) == [
        "server.queue_timeout_seconds: must be a positive number, got -1",
        "server.max_connections: must be a positive integer, got 0",
        "server.shutdown_timeout_seconds: must be a positive number, got 'soon'",
    ]
