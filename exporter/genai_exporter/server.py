"""The exporter's two HTTP listeners: OTLP/HTTP traces in, Prometheus /metrics out.

Standard library only (http.server, ssl), HTTP/1.1 with keep-alive, one thread per connection, at
most `max_connections` connections per listener (further clients wait in the kernel's accept queue,
as behind Prometheus' --web.max-connections). Both listeners honour the exporter-toolkit web config
(TLS, basic auth, rate limit, response headers: see `webconfig` and `access`); the OTLP listener
also takes bearer tokens. Credentials are checked on the headers, before a byte of the body is read.

The OTLP listener follows OTLP/HTTP: POST /v1/traces, 200 with an ExportTraceServiceResponse
(partial success when spans were rejected), 4xx with a google.rpc.Status body, 503 with
Retry-After when overloaded. It protects itself before trusting a client: the body size is checked
against the declared Content-Length before a byte is read, and a client gets
`request_timeout_seconds` to send its body.

Backpressure: the bounded queue between receiving and aggregating is the `max_concurrent_requests`
semaphore, not a queue with a worker thread. A request takes a slot before its body is read and
keeps it until its spans are aggregated and it is answered; a request that finds no free slot within
`queue_timeout_seconds` is answered 503 with Retry-After, which OTLP senders retry, and is counted
in genai_exporter_otlp_requests_total{code="503"} (the listener's only 503s are this one and the
refusals while shutting down). Bodies are read side by side, but one request at a time is decoded
and aggregated (the `processing` lock): the GIL runs one of them at a time anyway, and letting two
interleave only adds GIL hand-offs and keeps two requests' decoded spans alive at once. Why not a
queue and a worker: a worker would add no throughput; what it would add is a second buffer of
decoded spans to bound, 200 answers for spans not yet counted (lost on a crash, and no
partial-success report, which needs the spans normalised), and a queue to drain on shutdown. Here
memory is bounded by max_concurrent_requests bodies (each at most max_request_bytes, and
max_decompressed_bytes once decompressed) plus the decoded spans of the request being processed and
their observations; a 200 means the spans are counted; and draining on shutdown is waiting for the
requests in flight.

Shutdown (`RunningServers.shutdown`): stop accepting, close idle keep-alive connections, let every
request already read finish (aggregated and answered, with `Connection: close`), for at most
`shutdown_timeout_seconds`, then cut what is left.

The web listener serves /metrics, the Prometheus-style /-/healthy and /-/ready probes, and with
`serve --demo` the switch of the demo workload's failure scenarios.
"""

from __future__ import annotations

import contextlib
import gc
import ipaddress
import json
import logging
import socket
import socketserver
import ssl
import sys
import threading
import time
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from genai_exporter import __version__
from genai_exporter.access import Admission, BearerTokens, Gate
from genai_exporter.config import IngestAuth, ServerLimits
from genai_exporter.receive import (
    CONTENT_TYPE_JSON,
    CONTENT_TYPE_PROTOBUF,
    ReceiveError,
    decode_export_request,
    encode_error_status,
    encode_export_response,
    parse_media_headers,
)
from genai_exporter.records import IngestResult, SpanRecord
from genai_exporter.webconfig import UnusableWebConfig, WebConfigFile

LOGGER = logging.getLogger(__name__)

OTLP_TRACES_PATH = "/v1/traces"
METRICS_PATH = "/metrics"
HEALTHY_PATH = "/-/healthy"
READY_PATH = "/-/ready"
SCENARIOS_PATH = "/-/demo/scenarios"

# What a refused OTLP sender is told to wait before retrying (Retry-After, seconds).
RETRY_AFTER_SECONDS = 1
# How often the accept loop checks whether it should stop (so shutdown starts within this time).
_ACCEPT_POLL_SECONDS = 0.05
# After answering without reading a body, how long to swallow what the client still sends, so
# that closing does not reset the connection before the client has read the answer.
LINGER_SECONDS = 1.0
# Largest body a web endpoint reads (and ignores) to keep a connection usable.
MAX_WEB_BODY_BYTES = 64 * 1024
_READ_CHUNK_BYTES = 1024 * 1024
_TEXT = "text/plain; charset=utf-8"
# An answer of the web listener: status, body, content type, extra headers.
_Response = tuple[int, bytes, str, Sequence[tuple[str, str]]]

_INDEX_PAGE = f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>genai-exporter</title></head>
<body>
<h1>genai-exporter {__version__}</h1>
<p>Cost and reliability metrics of AI agents, from OpenTelemetry GenAI spans.</p>
<ul>
<li><a href="{METRICS_PATH}">Metrics</a></li>
<li><a href="{HEALTHY_PATH}">Health</a> and <a href="{READY_PATH}">readiness</a></li>
</ul>
</body>
</html>
""".encode()


class IngestSink(Protocol):
    """Where decoded spans go (the pipeline), and the counter of OTLP response codes."""

    keep_attributes: frozenset[str] | None

    def ingest(self, spans: Sequence[SpanRecord]) -> IngestResult: ...

    def count_request(self, status_code: int) -> None: ...


class MetricsSource(Protocol):
    """Renders the exposition for a scrape; content negotiation on Accept is its job."""

    def render(self, accept_header: str | None) -> tuple[bytes, str]: ...


class ScenarioSwitch(Protocol):
    """The demo workload's failure scenarios, switched on and off over HTTP."""

    def known(self) -> tuple[str, ...]: ...

    def active(self) -> tuple[str, ...]: ...

    def enable(self, name: str) -> None: ...

    def disable(self, name: str) -> None: ...


def parse_listen_address(text: str) -> tuple[str, int]:
    """Read a Prometheus-style listen address (":9464", "127.0.0.1:0", "[::1]:9464", "host:port").

    An empty host means every interface. Raises ValueError saying what is wrong, so the CLI can
    refuse a bad flag before anything starts.
    """
    host, separator, port_text = text.rpartition(":")
    if not separator:
        raise ValueError(f"{text!r} has no port: use host:port, e.g. ':9464' or '127.0.0.1:9464'")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{text!r}: {host!r} in brackets is not an IPv6 address") from None
    elif ":" in host:
        raise ValueError(f"{text!r}: write IPv6 addresses in brackets, e.g. '[::1]:9464'")
    elif "[" in host or "]" in host:
        raise ValueError(f"{text!r}: unbalanced brackets around the host")
    if not (port_text.isascii() and port_text.isdigit()) or int(port_text) > 65535:
        raise ValueError(f"{text!r}: port must be a number from 0 to 65535, got {port_text!r}")
    return host, int(port_text)


class _TLSRefused(Exception):
    """The TLS handshake failed or the client certificate is not allowed; the connection is closed."""


class _HTTPServer(ThreadingHTTPServer):
    """A threading HTTP server: dual-stack bind, a cap on connections, TLS and credentials from its
    Gate, and a drain on shutdown that lets requests in flight finish."""

    daemon_threads = True
    # Connection threads are joined by `wait_until_drained`, with a deadline, not by server_close.
    block_on_close = False
    # The listen backlog (socketserver's default is 5): a burst of senders connecting at once, or
    # clients waiting for a connection slot, queue in the kernel instead of being reset. Go listeners,
    # like Prometheus', use the system maximum too.
    request_queue_size = socket.SOMAXCONN

    def __init__(self, address: str, handler: type[BaseHTTPRequestHandler], request_timeout: float,
                 max_connections: int, gate: Gate) -> None:
        host, port = parse_listen_address(address)
        self.address_family, bind_host, self._dual_stack = _socket_family(host, port)
        self.request_timeout = request_timeout
        self.gate = gate
        self.draining = False
        self._stopping = threading.Event()
        self._connection_slots = threading.BoundedSemaphore(max_connections)
        # Open connections, and whether each is busy with a request (False: idle between requests).
        self._connections: dict[socket.socket, bool] = {}
        self._connection_threads: set[threading.Thread] = set()
        self._connections_lock = threading.Lock()
        super().__init__((bind_host, port), handler)

    def server_bind(self) -> None:
        if self._dual_stack:
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        # HTTPServer.server_bind would look up the host's FQDN: a DNS query that can hang startup.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Log what escaped a handler through `logging` (socketserver would print to stderr)."""
        error = sys.exc_info()[1]
        if isinstance(error, OSError | _TLSRefused):
            LOGGER.debug("connection from %s ended: %s", client_address, error)
        else:
            LOGGER.exception("unexpected error serving %s", client_address)

    @property
    def port(self) -> int:
        return self.server_address[1]

    def process_request(self, request: Any, client_address: Any) -> None:
        """Serve the connection on its own thread once a connection slot is free (see max_connections)."""
        while not self._connection_slots.acquire(timeout=_ACCEPT_POLL_SECONDS):
            if self._stopping.is_set():
                self.shutdown_request(request)
                return
        thread = threading.Thread(target=self._serve_connection, args=(request, client_address),
                                  name=f"{self.__class__.__name__}-connection", daemon=True)
        with self._connections_lock:
            self._connection_threads.add(thread)
        thread.start()

    def _serve_connection(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)
            self._connection_slots.release()
            with self._connections_lock:
                self._connection_threads.discard(threading.current_thread())

    def track(self, connection: socket.socket, busy: bool | None) -> None:
        """Record a connection as busy with a request, idle between requests, or (None) closed.

        A connection that turns idle while the server drains is closed at once.
        """
        with self._connections_lock:
            if busy is None:
                self._connections.pop(connection, None)
                return
            self._connections[connection] = busy
            close_now = self.draining and not busy
        if close_now:
            _shut(connection, socket.SHUT_RD)

    def stop_accepting(self) -> None:
        """Close the listening socket: new clients are refused from now on (connection refused)."""
        self._stopping.set()
        self.shutdown()
        self.socket.close()

    def close_idle_connections(self) -> None:
        """Start draining: idle keep-alive connections close now, busy ones after their answer."""
        with self._connections_lock:
            self.draining = True
            idle = [connection for connection, busy in self._connections.items() if not busy]
        for connection in idle:
            _shut(connection, socket.SHUT_RD)  # the handler's read returns: it closes the connection

    def wait_until_drained(self, deadline: float) -> int:
        """Wait until every connection is closed or the deadline passes; cut what is left, return how many."""
        with self._connections_lock:
            threads = list(self._connection_threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._connections_lock:
            left = list(self._connections)
        for connection in left:
            _shut(connection, socket.SHUT_RDWR)
        return len(left)


def _shut(connection: socket.socket, how: int) -> None:
    # socket.socket's own shutdown: SSLSocket.shutdown would also tear down the TLS state under the
    # handler thread that is still using it.
    with contextlib.suppress(OSError):  # already closed by its handler
        socket.socket.shutdown(connection, how)


def _socket_family(host: str, port: int) -> tuple[socket.AddressFamily, str, bool]:
    """Address family, bind host and dual-stack flag for a parsed listen address."""
    if host in ("", "::"):
        if socket.has_dualstack_ipv6():
            return socket.AF_INET6, "::", True
        if host == "":
            return socket.AF_INET, "0.0.0.0", False
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    # Like Prometheus (Go), a name with both kinds of addresses is served on its IPv4 address.
    family, _, _, _, sockaddr = min(infos, key=lambda info: info[0] != socket.AF_INET)
    return family, sockaddr[0], False


class _Handler(BaseHTTPRequestHandler):
    """Common HTTP/1.1 plumbing: TLS, timeouts, connection tracking, logging via `logging`."""

    protocol_version = "HTTP/1.1"
    server_version = f"genai-exporter/{__version__}"
    sys_version = ""
    server: _HTTPServer
    # Headers of the web config (http_server_config.headers) that every answer to this request carries.
    _response_headers: Sequence[tuple[str, str]] = ()

    def setup(self) -> None:
        # The socket timeout bounds every wait on a client: the TLS handshake, idle keep-alive.
        self.timeout = self.server.request_timeout
        if self.server.gate.tls_enabled:
            self.request = self._handshake(self.request)
        super().setup()
        self.server.track(self.connection, False)

    def _handshake(self, raw: socket.socket) -> ssl.SSLSocket:
        """TLS with the certificates in force now, then the client_allowed_sans check."""
        raw.settimeout(self.timeout)
        try:
            settings = self.server.gate.settings()
            if settings is None or settings.tls_context is None:  # cannot happen: TLS is fixed at startup
                raise UnusableWebConfig("no TLS context")
            connection = settings.tls_context.wrap_socket(raw, server_side=True)
        except (UnusableWebConfig, OSError) as error:  # ssl.SSLError is an OSError
            LOGGER.debug("TLS handshake with %s failed: %s", self.client_address, error)
            raise _TLSRefused from None
        tls = settings.config.tls
        if tls is not None and tls.client_allowed_sans and not _allowed_san(connection, tls.client_allowed_sans):
            LOGGER.debug("client certificate of %s has none of the allowed SANs", self.client_address)
            connection.close()
            raise _TLSRefused
        return connection

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, None)
            if isinstance(self.connection, ssl.SSLSocket):
                # The server closes the socket it accepted, which the TLS wrapper has taken over.
                _shut(self.connection, socket.SHUT_WR)
                self.connection.close()

    def parse_request(self) -> bool:
        # The request line has arrived: from here until its answer the connection is busy.
        self.server.track(self.connection, True)
        self._response_headers = ()
        return super().parse_request()

    def handle_one_request(self) -> None:
        super().handle_one_request()
        if not self.close_connection:
            self.server.track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:
        LOGGER.debug("%s %s", self.address_string(), format % args)

    def _path(self) -> str:
        return urlsplit(self.path).path

    def _admit(self) -> Admission:
        """The listener's checks (rate limit, credentials) on this request's headers."""
        admission = self.server.gate.admit(self.headers.get("Authorization"))
        self._response_headers = admission.headers
        return admission

    def _send(self, code: int, body: bytes, content_type: str, headers: Sequence[tuple[str, str]] = (),
              close: bool = False) -> None:
        self.send_response(code)
        if code != 204:  # a 204 has neither content nor content headers (RFC 9110)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
        for name, value in (*self._response_headers, *headers):
            self.send_header(name, value)
        if close or self.server.draining:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _linger(self) -> None:
        """Swallow the unread body for a moment, so closing does not discard our answer (TCP RST)."""
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_WR)
            deadline = time.monotonic() + LINGER_SECONDS
            while (remaining := deadline - time.monotonic()) > 0:
                self.connection.settimeout(remaining)
                if not self.connection.recv(_READ_CHUNK_BYTES):
                    break
        except OSError:
            pass  # the client is gone or slow: either way the connection is over


class _BodyTimeout(Exception):
    """The client did not send its whole body within the request timeout."""


class _ClientGone(Exception):
    """The client closed the connection before sending its whole body."""


def _allowed_san(connection: ssl.SSLSocket, allowed: Sequence[str]) -> bool:
    """Whether the verified client certificate has one of the allowed Subject Alternative Names."""
    certificate = connection.getpeercert() or {}
    for kind, value in certificate.get("subjectAltName", ()):
        if kind == "IP Address":
            with contextlib.suppress(ValueError):
                value = str(ipaddress.ip_address(value.strip()))
        if value in allowed:
            return True
    return False


class _OtlpServer(_HTTPServer):
    def __init__(self, address: str, sink: IngestSink, limits: ServerLimits, gate: Gate) -> None:
        self.sink = sink
        self.limits = limits
        self.slots = threading.BoundedSemaphore(limits.max_concurrent_requests)
        # Held while a request's body is decoded and its spans aggregated (see the module docstring).
        self.processing = threading.Lock()
        super().__init__(address, _OtlpHandler, limits.request_timeout_seconds, limits.max_connections, gate)


class _OtlpHandler(_Handler):
    """POST /v1/traces, answered as OTLP/HTTP prescribes."""

    server: _OtlpServer
    _continue_pending = False

    def parse_request(self) -> bool:
        self._continue_pending = False
        return super().parse_request()

    def handle_expect_100(self) -> bool:
        """Hold back 100 Continue until the request is admitted (credentials, size, a free slot), so a
        refused client never sends its body."""
        self._continue_pending = True
        return True

    def do_POST(self) -> None:
        if not self._admitted():
            return
        path = self._path()
        if path != OTLP_TRACES_PATH:
            self._refuse(404, f"no OTLP endpoint at {path}: traces are received at {OTLP_TRACES_PATH}")
            return
        if self.headers.get("Content-Length") is None:
            self._refuse(411, "Content-Length is required (chunked request bodies are not supported)")
            return
        try:
            length = int(self.headers["Content-Length"])
        except ValueError:
            length = -1
        if length < 0:
            self._refuse(400, f"invalid Content-Length {self.headers['Content-Length']!r}")
            return
        limit = self.server.limits.max_request_bytes
        if length > limit:
            self._refuse(413, f"request body of {length} bytes is over the limit of {limit} bytes")
            return
        content_type = self.headers.get("Content-Type")
        content_encoding = self.headers.get("Content-Encoding")
        try:
            parse_media_headers(content_type, content_encoding)
        except ReceiveError as error:
            self._refuse(error.http_status, error.message)
            return
        if not self.server.slots.acquire(timeout=self.server.limits.queue_timeout_seconds):
            self._refuse(503, "the exporter is busy with other export requests: retry later",
                         (("Retry-After", str(RETRY_AFTER_SECONDS)),))
            return
        try:
            self._export(length, content_type, content_encoding)
        finally:
            self.server.slots.release()

    def _admitted(self) -> bool:
        """Check credentials and rate limit; on refusal answer it (body unread) and return False."""
        refusal = self._admit().refusal
        if refusal is None:
            return True
        if refusal.status == 401:
            LOGGER.debug("refused OTLP request from %s: %s", self.client_address[0], refusal.message)
        self._refuse(refusal.status, refusal.message, refusal.headers)
        return False

    def _export(self, length: int, content_type: str | None, content_encoding: str | None) -> None:
        json_encoding = self._json_encoding()
        if self._continue_pending:
            self._continue_pending = False
            self.send_response_only(100)
            self.end_headers()
        try:
            body = self._read_body(length)
        except _ClientGone:
            self.close_connection = True
            return
        except _BodyTimeout:
            self._refuse(408, f"request body not received within {self.server.request_timeout:g} seconds")
            return
        sink = self.server.sink
        try:
            with self.server.processing:
                spans = decode_export_request(body, content_type, content_encoding,
                                              self.server.limits.max_decompressed_bytes, sink.keep_attributes)
                result = sink.ingest(spans)
        except ReceiveError as error:
            self._answer_status(error.http_status, error.message, json_encoding)
            return
        except Exception:
            LOGGER.exception("could not process an OTLP export request of %d bytes", length)
            self._answer_status(500, "internal error while processing the spans", json_encoding)
            return
        self._answer(200, encode_export_response(result.rejected_spans, result.error_message, json_encoding),
                     json_encoding)

    def _read_body(self, length: int) -> bytes:
        """Read exactly `length` bytes, all within the request timeout (not per read: slow drips end)."""
        deadline = time.monotonic() + self.server.request_timeout
        chunks = []
        remaining = length
        try:
            while remaining:
                time_left = deadline - time.monotonic()
                if time_left <= 0:
                    raise _BodyTimeout
                self.connection.settimeout(time_left)
                chunk = self.rfile.read1(min(remaining, _READ_CHUNK_BYTES))
                if not chunk:
                    raise _ClientGone
                chunks.append(chunk)
                remaining -= len(chunk)
        except TimeoutError:
            raise _BodyTimeout from None
        finally:
            self.connection.settimeout(self.server.request_timeout)
        return b"".join(chunks)

    def _json_encoding(self) -> bool:
        headers = getattr(self, "headers", None)  # absent when the request line itself was bad
        media_type = (headers.get("Content-Type") or "") if headers is not None else ""
        return media_type.split(";", 1)[0].strip().lower() == CONTENT_TYPE_JSON

    def _answer(self, code: int, body: bytes, json_encoding: bool, headers: Sequence[tuple[str, str]] = (),
                close: bool = False) -> None:
        self.server.sink.count_request(code)
        self._send(code, body, CONTENT_TYPE_JSON if json_encoding else CONTENT_TYPE_PROTOBUF, headers, close)

    def _answer_status(self, code: int, message: str, json_encoding: bool) -> None:
        self._answer(code, encode_error_status(message, json_encoding, code), json_encoding)

    def _refuse(self, code: int, message: str, headers: Sequence[tuple[str, str]] = ()) -> None:
        """Answer before (or instead of) reading the body; the connection cannot be reused."""
        json_encoding = self._json_encoding()
        self._answer(code, encode_error_status(message, json_encoding, code), json_encoding, headers,
                     close=True)
        self._linger()

    def _not_post(self) -> None:
        if not self._admitted():
            return
        if self._path() == OTLP_TRACES_PATH:
            self._refuse(405, f"{self.command} is not allowed: export spans with POST",
                         (("Allow", "POST"),))
        else:
            self._refuse(404, f"no OTLP endpoint at {self._path()}")

    do_GET = do_HEAD = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _not_post

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own errors (bad request line, unknown method) as OTLP Status answers too."""
        self._refuse(code, message or self.responses.get(code, ("error",))[0])


class _WebServer(_HTTPServer):
    def __init__(self, address: str, metrics: MetricsSource, ready: Callable[[], bool],
                 scenarios: ScenarioSwitch | None, limits: ServerLimits, gate: Gate) -> None:
        self.metrics = metrics
        self.ready = ready
        self.scenarios = scenarios
        super().__init__(address, _WebHandler, limits.request_timeout_seconds, limits.max_connections, gate)


class _WebHandler(_Handler):
    """/metrics, probes, index page and the demo scenario switch."""

    server: _WebServer

    def do_GET(self) -> None:
        self._dispatch()

    do_HEAD = do_PUT = do_DELETE = do_POST = do_PATCH = do_OPTIONS = do_GET

    def _dispatch(self) -> None:
        if not self._discard_body():
            return
        refusal = self._admit().refusal
        if refusal is not None:
            self._send(refusal.status, f"{refusal.message}\n".encode(), _TEXT, refusal.headers)
            return
        path = self._path()
        try:
            code, body, content_type, headers = self._route(path)
        except Exception:
            LOGGER.exception("could not answer %s %s", self.command, path)
            code, body, content_type, headers = 500, b"internal error\n", _TEXT, ()
        # Sent outside the try: a scraper that hung up is not an internal error.
        self._send(code, body, content_type, headers)

    def _route(self, path: str) -> _Response:
        server = self.server
        if path == METRICS_PATH:
            return self._refuse_method("GET", "HEAD") or (200, *server.metrics.render(self.headers.get("Accept")), ())
        if path == HEALTHY_PATH:
            return self._refuse_method("GET", "HEAD") or (200, b"Healthy", _TEXT, ())
        if path == READY_PATH:
            if refused := self._refuse_method("GET", "HEAD"):
                return refused
            return (200, b"Ready", _TEXT, ()) if server.ready() else (503, b"Not ready", _TEXT, ())
        if path == "/":
            return self._refuse_method("GET", "HEAD") or (200, _INDEX_PAGE, "text/html; charset=utf-8", ())
        if server.scenarios is not None and path == SCENARIOS_PATH:
            return self._refuse_method("GET", "HEAD") or self._list_scenarios(server.scenarios)
        if server.scenarios is not None and path.startswith(SCENARIOS_PATH + "/"):
            name = unquote(path[len(SCENARIOS_PATH) + 1:])
            return self._refuse_method("PUT", "DELETE") or self._switch_scenario(server.scenarios, name)
        return 404, f"{path} not found\n".encode(), _TEXT, ()

    def _discard_body(self) -> bool:
        """Read and drop a request body (no endpoint here takes one) to keep the connection usable."""
        if "Transfer-Encoding" in self.headers:
            self._send(411, b"Content-Length is required\n", _TEXT, close=True)
            self._linger()
            return False
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_WEB_BODY_BYTES:
            self._send(413 if length > 0 else 400, b"unexpected request body\n", _TEXT, close=True)
            self._linger()
            return False
        if length:
            self.rfile.read(length)
        return True

    def _refuse_method(self, *methods: str) -> _Response | None:
        if self.command in methods:
            return None
        return (405, f"{self.command} is not allowed here\n".encode(), _TEXT,
                (("Allow", ", ".join(methods)),))

    def _list_scenarios(self, scenarios: ScenarioSwitch) -> _Response:
        body = json.dumps({"known": list(scenarios.known()), "active": list(scenarios.active())})
        return 200, body.encode(), "application/json", ()

    def _switch_scenario(self, scenarios: ScenarioSwitch, name: str) -> _Response:
        known = scenarios.known()
        if name not in known:
            message = f"unknown scenario {name!r}; known scenarios: {', '.join(known)}\n"
            return 404, message.encode(), _TEXT, ()
        if self.command == "PUT":
            scenarios.enable(name)
        else:
            scenarios.disable(name)
        return 204, b"", "", ()


class RunningServers:
    """Both listeners, serving on background threads until `shutdown`."""

    def __init__(self, web: _WebServer, otlp: _OtlpServer, drain_timeout: float) -> None:
        self._servers = (web, otlp)
        self._drain_timeout = drain_timeout
        self.web_port = web.port
        self.otlp_port = otlp.port
        self._threads = [
            threading.Thread(target=server.serve_forever, args=(_ACCEPT_POLL_SECONDS,), name=f"genai-exporter-{name}",
                             daemon=True)
            for name, server in (("web", web), ("otlp", otlp))
        ]
        for thread in self._threads:
            thread.start()

    def shutdown(self) -> int:
        """Stop accepting and drain: every request already read is aggregated and answered (for at most
        shutdown_timeout_seconds), idle connections close. Returns how many connections were cut at
        the deadline (0 when everything finished)."""
        deadline = time.monotonic() + self._drain_timeout
        for server in self._servers:
            server.stop_accepting()
        for thread in self._threads:
            thread.join()
        for server in self._servers:
            server.close_idle_connections()
        return sum(server.wait_until_drained(deadline) for server in self._servers)


# First-generation threshold of the garbage collector in the service (CPython's default is 700).
# Decoding and aggregating spans make no reference cycles (tests/test_garbage.py): all a request
# allocates is freed by reference counting once it is answered, and a collection every 700
# allocations only walks objects that are about to go anyway. At 10,000 there are about fourteen
# times fewer; 100,000 gained nothing more (bench/RESULTS.md, run 10).
SERVICE_GC_THRESHOLD = 10_000


def settle_garbage_collector() -> None:
    """Tune the collector for a long-running service, once its startup objects exist.

    `gc.freeze()` moves what startup built (modules, configuration, price table) out of every later
    collection, so that a full collection walks only what came since; see SERVICE_GC_THRESHOLD.
    Called by `genai-exporter serve`, never by the in-process SpanProcessor: the collector of an
    agent's process is the agent's business.
    """
    gc.freeze()
    _, second, third = gc.get_threshold()
    gc.set_threshold(SERVICE_GC_THRESHOLD, second, third)


def start_servers(
    web_address: str,
    otlp_address: str,
    sink: IngestSink,
    metrics: MetricsSource,
    limits: ServerLimits,
    ready: Callable[[], bool],
    scenarios: ScenarioSwitch | None = None,
    web_config: WebConfigFile | None = None,
    ingest_auth: IngestAuth | None = None,
) -> RunningServers:
    """Bind both listeners and serve them in the background; raises OSError if a bind fails.

    `web_config` (the --web.config.file) applies to both listeners; `ingest_auth` adds bearer tokens
    to the OTLP listener. Ports in the result are the bound ones, so port 0 (tests) picks free ports.
    """
    bearer = BearerTokens(ingest_auth) if ingest_auth is not None and ingest_auth.enabled else None
    web = _WebServer(web_address, metrics, ready, scenarios, limits, Gate(web_config))
    try:
        otlp = _OtlpServer(otlp_address, sink, limits, Gate(web_config, bearer, unusable_status=503))
    except BaseException:
        web.server_close()
        raise
    return RunningServers(web, otlp, limits.shutdown_timeout_seconds)
