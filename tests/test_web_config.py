"""Specification of --web.config.file: the Prometheus exporter-toolkit format, checked like the main config."""

from __future__ import annotations

import ssl
from pathlib import Path

import bcrypt
import pytest

from genai_exporter import cli
from genai_exporter.config import ConfigError
from genai_exporter.webconfig import (
    RateLimit,
    TLSServerConfig,
    WebConfig,
    load_web_settings,
    parse_go_duration,
)
from tests.certificates import LOOPBACK, CertificateAuthority

# A hash as `htpasswd -nBC 10 "" | tr -d ':\n'` writes it ($2y$, cost 10), of "correct horse battery staple".
ALICE_HASH = "$2y$10$LT/YSenPni8AXKnlJoLuZOOQAskcbUIBRfLXDvSwqyUJKr8NCHTmu"


@pytest.fixture(scope="module")
def authority(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    return CertificateAuthority(tmp_path_factory.mktemp("pki"))


def write(directory: Path, text: str, name: str = "web-config.yml") -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        load_web_settings(path)
    return raised.value.problems


def test_the_toolkit_sample_file_is_read_as_node_exporter_reads_it(tmp_path, authority):
    server = authority.issue("server", server=True, ip=(LOOPBACK,))
    path = write(tmp_path, f"""
tls_server_config:
  cert_file: {server.cert_file}
  key_file: {server.key_file}
basic_auth_users:
  alice: {ALICE_HASH}
""")
    settings = load_web_settings(path)
    assert (settings.config, isinstance(settings.tls_context, ssl.SSLContext)) == (
        WebConfig(TLSServerConfig(cert_file=server.cert_file, key_file=server.key_file), (),
                  {"alice": ALICE_HASH}, None), True)


def test_relative_file_names_are_relative_to_the_web_config_file(tmp_path, authority):
    server = authority.issue("relative", server=True, ip=(LOOPBACK,))
    (tmp_path / "certs").mkdir()
    for source in (server.cert_file, server.key_file):
        (tmp_path / "certs" / source.name).write_bytes(source.read_bytes())
    path = write(tmp_path, "tls_server_config: {cert_file: certs/relative.crt, key_file: certs/relative.key}\n")
    assert load_web_settings(path).config.tls.cert_file == tmp_path / "certs" / "relative.crt"


def test_every_problem_is_reported_at_once_with_its_key_path(tmp_path):
    path = write(tmp_path, """
tls_server_config:
  cert_file: missing.crt
  client_auth_type: RequireAndVerifyClientCert
  min_version: TLS14
  cipher_suites: [TLS_RSA_WITH_RC4_128_SHA]
http_server_config:
  headers:
    X-Frame-Options: allow
    Server: genai
basic_auth_users:
  alice: hunter2
  "bob:smith": $2y$10$LT/YSenPni8AXKnlJoLuZOOQAskcbUIBRfLXDvSwqyUJKr8NCHTmu
rate_limit: {interval: 5, burst: 2}
web_listen: ":9464"
""")
    assert problems(path) == [
        "web_listen: unknown key (known: basic_auth_users, http_server_config, rate_limit, tls_server_config)",
        f"tls_server_config.cert_file: file not found: {tmp_path / 'missing.crt'}",
        "tls_server_config: missing one of key or key_file",
        "tls_server_config: client_auth_type RequireAndVerifyClientCert needs client_ca_file or client_ca to "
        "verify against",
        "tls_server_config.min_version: must be one of TLS10, TLS11, TLS12, TLS13, got 'TLS14'",
        "tls_server_config.cipher_suites[0]: unknown cipher: TLS_RSA_WITH_RC4_128_SHA",
        "http_server_config.headers.X-Frame-Options: must be one of deny, sameorigin, got 'allow'",
        "http_server_config.headers.Server: HTTP header 'Server' can not be configured (allowed: "
        "Strict-Transport-Security, X-Content-Type-Options, X-Frame-Options, X-XSS-Protection, "
        "Content-Security-Policy)",
        "basic_auth_users.alice: must be a bcrypt hash such as $2y$10$... (htpasswd -nBC 10 \"\" | tr -d ':\\n')",
        "basic_auth_users.bob:smith: a user name must be a non-empty string without ':'",
        "rate_limit.interval: must be a duration such as 1s or 100ms, got 5",
    ]


def test_a_plain_password_in_place_of_a_hash_is_never_quoted_back(tmp_path):
    path = write(tmp_path, "basic_auth_users: {alice: correct-horse-battery-staple}\n")
    with pytest.raises(ConfigError) as raised:
        load_web_settings(path)
    assert "correct-horse" not in str(raised.value)


def test_client_auth_types_python_cannot_honour_are_refused_with_the_ones_it_can(tmp_path, authority):
    server = authority.issue("server-any", server=True, ip=(LOOPBACK,))
    path = write(tmp_path, f"""
tls_server_config:
  cert_file: {server.cert_file}
  key_file: {server.key_file}
  client_auth_type: RequireAnyClientCert
""")
    assert problems(path) == [
        "tls_server_config.client_auth_type: RequireAnyClientCert is not supported (Python's ssl module verifies "
        "every client certificate it asks for): use VerifyClientCertIfGiven or RequireAndVerifyClientCert"]


def test_curve_preferences_are_refused_rather_than_ignored(tmp_path, authority):
    server = authority.issue("server-curves", server=True, ip=(LOOPBACK,))
    path = write(tmp_path, f"""
tls_server_config: {{cert_file: {server.cert_file}, key_file: {server.key_file}, curve_preferences: [X25519]}}
""")
    assert problems(path) == [
        "tls_server_config.curve_preferences: not supported by genai-exporter (Python's ssl module cannot set a "
        "preference list of curves): remove it to use OpenSSL's"]


def test_client_ca_without_a_client_auth_policy_is_refused_as_in_the_toolkit(tmp_path, authority):
    server = authority.issue("server-ca", server=True, ip=(LOOPBACK,))
    path = write(tmp_path, f"""
tls_server_config:
  cert_file: {server.cert_file}
  key_file: {server.key_file}
  client_ca_file: {authority.cert_file}
""")
    assert problems(path) == [
        "tls_server_config: client CAs are configured without a client_auth_type: set RequireAndVerifyClientCert"]


def test_a_key_that_does_not_belong_to_the_certificate_is_found_at_startup(tmp_path, authority):
    first = authority.issue("first", server=True, ip=(LOOPBACK,))
    second = authority.issue("second", server=True, ip=(LOOPBACK,))
    path = write(tmp_path, f"tls_server_config: {{cert_file: {first.cert_file}, key_file: {second.key_file}}}\n")
    assert problems(path) == ["tls_server_config: cannot load the certificate and key: KEY_VALUES_MISMATCH"]


def test_inline_certificate_and_key_are_loaded_without_touching_the_disk(tmp_path, authority):
    server = authority.issue("inline", server=True, ip=(LOOPBACK,))
    indent = "\n    "
    path = write(tmp_path, f"""
tls_server_config:
  cert: |
    {indent.join(server.cert_file.read_text().splitlines())}
  key: |
    {indent.join(server.key_file.read_text().splitlines())}
""")
    context = load_web_settings(path).tls_context
    assert isinstance(context, ssl.SSLContext) and list(tmp_path.iterdir()) == [path]


def test_go_cipher_suite_names_select_the_same_openssl_suites(tmp_path, authority):
    server = authority.issue("server-ciphers", server=True, ip=(LOOPBACK,))
    path = write(tmp_path, f"""
tls_server_config:
  cert_file: {server.cert_file}
  key_file: {server.key_file}
  max_version: TLS12
  cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256]
""")
    context = load_web_settings(path).tls_context
    tls12 = [c["name"] for c in context.get_ciphers() if c["protocol"] == "TLSv1.2"]
    assert tls12 == ["ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305"]


@pytest.mark.parametrize(("text", "seconds"), [
    ("1s", 1.0), ("100ms", 0.1), ("1m30s", 90.0), ("1.5h", 5400.0), ("250us", 0.00025), ("0", 0.0),
    ("5", None), ("1d", None), ("", None), ("s", None),
])
def test_rate_limit_intervals_are_go_durations(text, seconds):
    assert parse_go_duration(text) == (pytest.approx(seconds) if seconds is not None else None)


def test_rate_limit_and_headers_are_read(tmp_path):
    path = write(tmp_path, """
rate_limit: {interval: 100ms, burst: 20}
http_server_config:
  http2: false
  headers: {X-Content-Type-Options: nosniff, X-Frame-Options: deny, Content-Security-Policy: ""}
""")
    assert load_web_settings(path).config == WebConfig(
        None, (("X-Content-Type-Options", "nosniff"), ("X-Frame-Options", "deny")), {}, RateLimit(0.1, 20))


def test_an_interval_of_zero_switches_the_rate_limit_off(tmp_path):
    assert load_web_settings(write(tmp_path, "rate_limit: {interval: 0s, burst: 0}\n")).config.rate_limit is None


def test_check_config_validates_the_web_config_file_too(tmp_path, capsys, authority):
    server = authority.issue("server-check", server=True, ip=(LOOPBACK,))
    hashed = bcrypt.hashpw(b"scrape", bcrypt.gensalt(4)).decode()
    web = write(tmp_path, f"tls_server_config: {{cert_file: {server.cert_file}, key_file: {server.key_file}}}\n"
                          f"basic_auth_users: {{prometheus: '{hashed}'}}\n")
    config = write(tmp_path, "dimensions: []\n", "genai-exporter.yml")
    code = cli.main(["check-config", str(config), "--web.config.file", str(web)])
    assert (code, capsys.readouterr().out.splitlines()[1]) == (0, f"{web}: OK (TLS on, 1 basic-auth users)")


def test_check_config_names_every_problem_of_both_files_and_exits_2(tmp_path, capsys):
    web = write(tmp_path, "tls_server_config: {cert_file: a.crt, key_file: a.key}\n")
    config = write(tmp_path, "server: {max_connections: 0}\n", "genai-exporter.yml")
    code = cli.main(["check-config", str(config), "--web.config.file", str(web)])
    assert (code, capsys.readouterr().err.splitlines()) == (2, [
        f"invalid configuration {config}:",
        "  server.max_connections: must be a positive integer, got 0",
        f"invalid configuration {web}:",
        f"  tls_server_config.cert_file: file not found: {tmp_path / 'a.crt'}",
        f"  tls_server_config.key_file: file not found: {tmp_path / 'a.key'}",
    ])


def test_serve_refuses_to_start_on_a_broken_web_config(tmp_path, capsys):
    web = write(tmp_path, "basic_auth_users: [alice]\n")
    code = cli.main(["serve", "--web.config.file", str(web), "--web.listen-address", "127.0.0.1:0",
                     "--otlp.listen-address", "127.0.0.1:0"])
    assert (code, capsys.readouterr().err.splitlines()) == (2, [
        f"invalid configuration {web}:", "  basic_auth_users: must be a mapping, got list"])
