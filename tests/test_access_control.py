"""Specification of who may talk to the exporter: TLS, basic auth and bearer tokens on real listeners.

Both listeners run on loopback with real certificates (made by tests/certificates.py) and real
bcrypt hashes; clients are the standard library's HTTP and TLS clients.
"""

from __future__ import annotations

import base64
import http.client
import os
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest
from google.rpc import code_pb2, status_pb2

from genai_exporter import catalog
from genai_exporter.config import Config, IngestAuth
from tests.certificates import LOOPBACK, CertificateAuthority, Issued
from tests.otlpwire import Client, protobuf_body
from tests.serving import serving
from tests.spanfactory import chat_attributes, span

TOKEN = "7f3c1e9a5b2d4f608a1c3e5f7b9d2a4c"
OTHER_TOKEN = "b8e2d4f6a1c3e5079d2b4f6a8c1e3d5f"
PASSWORD = "correct horse battery staple"
# A chat span of 1200 input and 300 output tokens: 1500 tokens once accepted.
CHAT = protobuf_body([span(chat_attributes())])
TOKENS = catalog.TOKENS.name
SPANS_RECEIVED = catalog.SPANS_RECEIVED.name
REQUESTS = catalog.REQUESTS.name


@pytest.fixture(scope="module")
def authority(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    return CertificateAuthority(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def server_cert(authority: CertificateAuthority) -> Issued:
    return authority.issue("exporter", server=True, dns=("localhost",), ip=(LOOPBACK,))


@pytest.fixture(scope="module")
def password_hash() -> str:
    # Cost 4 keeps the suite fast; real files use 10 or more, checked the same way.
    return bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()


def replace_file(path: Path, text: str) -> None:
    """Write a file as operators and Kubernetes do: a new file renamed over the old one."""
    staging = path.with_name(path.name + ".new")
    staging.write_text(text, encoding="utf-8")
    os.replace(staging, path)


def tls_config(cert: Issued, extra: str = "") -> str:
    return f"tls_server_config:\n  cert_file: {cert.cert_file}\n  key_file: {cert.key_file}\n{extra}"


def trusting(authority: CertificateAuthority, client: Issued | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(authority.cert_file))
    if client is not None:
        context.load_cert_chain(client.cert_file, client.key_file)
    return context


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def outcome(port: int, context: ssl.SSLContext) -> int | str:
    """The status of a scrape over TLS, or "refused" when the TLS layer turned the client away."""
    try:
        return Client(port, tls=context, timeout=10).request("GET", "/metrics").status
    except (ssl.SSLError, ConnectionError, http.client.HTTPException):
        return "refused"


def raw_request(port: int, head: str) -> bytes:
    """Send a request head (no body) on a bare socket and return the first bytes of the answer."""
    with socket.create_connection((LOOPBACK, port), timeout=10) as connection:
        connection.sendall(head.encode())
        return connection.recv(65536)


def rpc_status(body: bytes) -> tuple[int, str]:
    status = status_pb2.Status.FromString(body)
    return status.code, status.message


@pytest.fixture
def web_config(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "web-config.yml"


# --- TLS -----------------------------------------------------------------------------------------------

def test_both_listeners_serve_tls_with_the_configured_certificate(web_config, authority, server_cert):
    web_config.write_text(tls_config(server_cert))
    with serving(web_config_file=web_config) as exporter:
        scrape = Client(exporter.web_port, tls=trusting(authority)).request("GET", "/metrics")
        export = Client(exporter.otlp_port, tls=trusting(authority)).export(CHAT)
    assert (scrape.status, export.status, exporter.total(TOKENS)) == (200, 200, 1500.0)


def test_a_plain_http_client_gets_no_answer_from_a_tls_listener(web_config, server_cert):
    web_config.write_text(tls_config(server_cert))
    with serving(web_config_file=web_config) as exporter, \
            pytest.raises((ConnectionError, http.client.HTTPException)):
        Client(exporter.otlp_port, timeout=10).export(CHAT)
    assert exporter.total(SPANS_RECEIVED) == 0


def test_only_clients_with_a_certificate_from_the_client_ca_get_an_answer(web_config, authority, server_cert,
                                                                          tmp_path):
    member = authority.issue("prometheus", server=False, dns=("prometheus.monitoring.svc",))
    stranger = CertificateAuthority(tmp_path, "another CA").issue("mallory", server=False, dns=("mallory",))
    web_config.write_text(tls_config(server_cert, f"  client_auth_type: RequireAndVerifyClientCert\n"
                                                  f"  client_ca_file: {authority.cert_file}\n"))
    with serving(web_config_file=web_config) as exporter:
        outcomes = [outcome(exporter.web_port, trusting(authority)),
                    outcome(exporter.web_port, trusting(authority, stranger)),
                    outcome(exporter.web_port, trusting(authority, member))]
    assert outcomes == ["refused", "refused", 200]


def test_client_allowed_sans_admit_only_the_named_clients(web_config, authority, server_cert):
    prometheus = authority.issue("prometheus-san", server=False, dns=("prometheus.monitoring.svc",))
    other = authority.issue("other-san", server=False, dns=("grafana.monitoring.svc",))
    web_config.write_text(tls_config(server_cert, f"  client_auth_type: RequireAndVerifyClientCert\n"
                                                  f"  client_ca_file: {authority.cert_file}\n"
                                                  f"  client_allowed_sans: [prometheus.monitoring.svc]\n"))
    with serving(web_config_file=web_config) as exporter:
        outcomes = [outcome(exporter.web_port, trusting(authority, other)),
                    outcome(exporter.web_port, trusting(authority, prometheus))]
    assert outcomes == ["refused", 200]


def test_a_rotated_certificate_is_served_to_new_connections_without_a_restart(web_config, authority, tmp_path):
    before = authority.issue("before", server=True, ip=(LOOPBACK,))
    after = authority.issue("after", server=True, ip=(LOOPBACK,))
    live_cert, live_key = tmp_path / "tls.crt", tmp_path / "tls.key"
    live_cert.write_bytes(before.cert_file.read_bytes())
    live_key.write_bytes(before.key_file.read_bytes())
    web_config.write_text(f"tls_server_config: {{cert_file: {live_cert}, key_file: {live_key}}}\n")

    def served_serial(port: int) -> int:
        with socket.create_connection((LOOPBACK, port), timeout=10) as raw, \
                trusting(authority).wrap_socket(raw, server_hostname=LOOPBACK) as connection:
            from cryptography import x509

            return x509.load_der_x509_certificate(connection.getpeercert(binary_form=True)).serial_number

    with serving(web_config_file=web_config) as exporter:
        first = served_serial(exporter.web_port)
        replace_file(live_key, after.key_file.read_text())
        replace_file(live_cert, after.cert_file.read_text())
        second = served_serial(exporter.web_port)
    assert (first, second) == (before.serial, after.serial)


def test_a_client_below_min_version_is_refused(web_config, authority, server_cert):
    web_config.write_text(tls_config(server_cert, "  min_version: TLS13\n"))
    old_client = trusting(authority)
    old_client.maximum_version = ssl.TLSVersion.TLSv1_2
    with serving(web_config_file=web_config) as exporter:
        outcomes = [outcome(exporter.web_port, old_client), outcome(exporter.web_port, trusting(authority))]
    assert outcomes == ["refused", 200]


# --- Basic auth (web config) -----------------------------------------------------------------------------

def test_metrics_ask_for_basic_auth_credentials(web_config, password_hash):
    web_config.write_text(f"basic_auth_users: {{prometheus: '{password_hash}'}}\n")
    with serving(web_config_file=web_config) as exporter:
        answer = Client(exporter.web_port).request("GET", "/metrics")
    assert (answer.status, answer.headers["www-authenticate"], answer.body) == (
        401, 'Basic realm="genai-exporter", charset="UTF-8"', b"unauthorized: credentials required\n")


def test_only_a_known_user_with_the_right_password_is_let_in(web_config, password_hash):
    web_config.write_text(f"basic_auth_users: {{prometheus: '{password_hash}'}}\n")
    with serving(web_config_file=web_config) as exporter:
        client = Client(exporter.web_port)
        statuses = [client.request("GET", "/metrics", headers={"Authorization": credentials}).status
                    for credentials in (basic("prometheus", "wrong"), basic("grafana", PASSWORD),
                                        basic("prometheus", PASSWORD), "Basic !!not-base64!!")]
    assert statuses == [401, 401, 200, 401]


def test_the_otlp_listener_takes_the_same_basic_auth_users(web_config, password_hash):
    web_config.write_text(f"basic_auth_users: {{collector: '{password_hash}'}}\n")
    with serving(web_config_file=web_config) as exporter:
        client = Client(exporter.otlp_port)
        statuses = [client.export(CHAT).status,
                    client.export(CHAT, Authorization=basic("collector", PASSWORD)).status]
    assert (statuses, exporter.total(SPANS_RECEIVED)) == ([401, 200], 1.0)


def test_a_user_added_to_the_web_config_can_log_in_without_a_restart(web_config, password_hash):
    web_config.write_text(f"basic_auth_users: {{prometheus: '{password_hash}'}}\n")
    with serving(web_config_file=web_config) as exporter:
        client = Client(exporter.web_port)
        grafana = {"Authorization": basic("grafana", PASSWORD)}
        before = client.request("GET", "/metrics", headers=grafana).status
        replace_file(web_config, f"basic_auth_users: {{prometheus: '{password_hash}', grafana: '{password_hash}'}}\n")
        after = client.request("GET", "/metrics", headers=grafana).status
    assert (before, after) == (401, 200)


def test_a_web_config_broken_at_run_time_refuses_requests_until_it_is_fixed(web_config, password_hash):
    web_config.write_text(f"basic_auth_users: {{prometheus: '{password_hash}'}}\n")
    credentials = {"Authorization": basic("prometheus", PASSWORD)}
    with serving(web_config_file=web_config) as exporter:
        replace_file(web_config, "basic_auth_users: {prometheus: [\n")
        broken_web = Client(exporter.web_port).request("GET", "/metrics", headers=credentials).status
        broken_otlp = Client(exporter.otlp_port).export(CHAT, **credentials)
        replace_file(web_config, f"basic_auth_users: {{prometheus: '{password_hash}'}}\n")
        fixed = Client(exporter.web_port).request("GET", "/metrics", headers=credentials).status
    assert (broken_web, broken_otlp.status, broken_otlp.headers["retry-after"], fixed) == (500, 503, "1", 200)


def test_the_rate_limit_answers_429_past_its_burst(web_config):
    web_config.write_text("rate_limit: {interval: 1h, burst: 2}\n")
    with serving(web_config_file=web_config) as exporter:
        client = Client(exporter.web_port)
        statuses = [client.request("GET", "/-/healthy").status for _ in range(3)]
    assert statuses == [200, 200, 429]


def test_configured_response_headers_are_on_every_answer(web_config, password_hash):
    web_config.write_text(f"basic_auth_users: {{prometheus: '{password_hash}'}}\n"
                          "http_server_config: {headers: {X-Frame-Options: deny, X-Content-Type-Options: nosniff}}\n")
    with serving(web_config_file=web_config) as exporter:
        client = Client(exporter.web_port)
        answers = [client.request("GET", "/metrics"),
                   client.request("GET", "/metrics", headers={"Authorization": basic("prometheus", PASSWORD)}),
                   Client(exporter.otlp_port).export(CHAT)]
    assert [(a.status, a.headers.get("x-frame-options"), a.headers.get("x-content-type-options"))
            for a in answers] == [(401, "deny", "nosniff"), (200, "deny", "nosniff"), (401, "deny", "nosniff")]


# --- Bearer tokens (OTLP) --------------------------------------------------------------------------------

def bearer_config(*tokens: str) -> Config:
    return Config(ingest_auth=IngestAuth(bearer_tokens=tokens))


def test_an_export_without_a_token_is_refused_before_its_body_is_sent():
    with serving(bearer_config(TOKEN)) as exporter:
        # The head announces a 1 MiB body that never comes: only an answer given without reading it arrives.
        answer = raw_request(exporter.otlp_port, "POST /v1/traces HTTP/1.1\r\nHost: exporter\r\n"
                                                 "Content-Type: application/x-protobuf\r\n"
                                                 "Content-Length: 1048576\r\n\r\n")
    assert (answer.split(b"\r\n", 1)[0], exporter.total(REQUESTS, code="401"), exporter.total(SPANS_RECEIVED)) == (
        b"HTTP/1.1 401 Unauthorized", 1.0, 0.0)


def test_a_wrong_token_is_told_invalid_token_in_an_otlp_status():
    with serving(bearer_config(TOKEN)) as exporter:
        answer = Client(exporter.otlp_port).export(CHAT, Authorization=f"Bearer {OTHER_TOKEN}")
    assert (answer.status, answer.headers["www-authenticate"], rpc_status(answer.body)) == (
        401, 'Bearer realm="genai-exporter", error="invalid_token"',
        (code_pb2.UNAUTHENTICATED, "unauthorized: invalid bearer token"))


def test_every_configured_token_is_accepted_and_counts_its_spans():
    with serving(bearer_config(TOKEN, OTHER_TOKEN)) as exporter:
        client = Client(exporter.otlp_port)
        statuses = [client.export(CHAT, Authorization=f"Bearer {token}").status for token in (TOKEN, OTHER_TOKEN)]
    assert (statuses, exporter.total(TOKENS)) == ([200, 200], 3000.0)


def test_the_metrics_listener_does_not_ask_for_bearer_tokens():
    with serving(bearer_config(TOKEN)) as exporter:
        assert Client(exporter.web_port).request("GET", "/metrics").status == 200


def test_a_token_file_is_re_read_when_it_changes(tmp_path):
    tokens = tmp_path / "otlp-tokens"
    tokens.write_text(f"# collector in eu-west\n{TOKEN}\n")
    with serving(Config(ingest_auth=IngestAuth(bearer_tokens_file=tokens))) as exporter:
        client = Client(exporter.otlp_port)
        before = [client.export(CHAT, Authorization=f"Bearer {t}").status for t in (TOKEN, OTHER_TOKEN)]
        replace_file(tokens, f"{OTHER_TOKEN}\n")
        after = [client.export(CHAT, Authorization=f"Bearer {t}").status for t in (TOKEN, OTHER_TOKEN)]
    assert (before, after) == ([200, 401], [401, 200])


def test_a_token_file_broken_at_run_time_asks_senders_to_retry(tmp_path):
    tokens = tmp_path / "otlp-tokens"
    tokens.write_text(f"{TOKEN}\n")
    with serving(Config(ingest_auth=IngestAuth(bearer_tokens_file=tokens))) as exporter:
        client = Client(exporter.otlp_port)
        replace_file(tokens, "# rotated by a script that failed\n")
        broken = client.export(CHAT, Authorization=f"Bearer {TOKEN}")
        replace_file(tokens, f"{TOKEN}\n")
        fixed = client.export(CHAT, Authorization=f"Bearer {TOKEN}").status
    assert (broken.status, broken.headers["retry-after"], fixed, exporter.total(SPANS_RECEIVED)) == (503, "1", 200, 1.0)


def test_expect_100_continue_is_granted_only_to_an_admitted_export():
    head = ("POST /v1/traces HTTP/1.1\r\nHost: exporter\r\nContent-Type: application/x-protobuf\r\n"
            "Content-Length: 4096\r\nExpect: 100-continue\r\n{}\r\n")
    with serving(bearer_config(TOKEN)) as exporter:
        refused = raw_request(exporter.otlp_port, head.format(""))
        admitted = raw_request(exporter.otlp_port, head.format(f"Authorization: Bearer {TOKEN}\r\n"))
    assert (refused.split(b"\r\n", 1)[0], admitted) == (b"HTTP/1.1 401 Unauthorized", b"HTTP/1.1 100 Continue\r\n\r\n")
