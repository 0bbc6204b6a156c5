"""Specification of backpressure and graceful shutdown of the OTLP listener.

A request in flight is held on purpose (its ingest waits for the test), so saturation and drains
are reached by construction, not by racing the machine. Nothing here measures time: where a test
waits, it waits for an event, with a generous bound against hanging.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from google.rpc import code_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from prometheus_client import CollectorRegistry

from genai_exporter import catalog
from genai_exporter.config import ServerLimits
from genai_exporter.pipeline import Pipeline
from genai_exporter.records import IngestResult, SpanRecord
from genai_exporter.server import RunningServers, start_servers
from tests.certificates import LOOPBACK
from tests.otlpwire import Answer, Client, protobuf_body
from tests.serving import REPOSITORY_ROOT, ServeProcess, built_in_prices, total
from tests.spanfactory import chat_attributes, span

# Also run from the Python sources, not only compiled (scripts/test.sh).
pytestmark = pytest.mark.data_path

CHAT = protobuf_body([span(chat_attributes())])
# Bounds against a hung test, never expectations of speed.
PATIENCE_SECONDS = 30.0


class HeldSink:
    """A pipeline whose ingest waits until the test releases it: a request kept in flight on purpose."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.keep_attributes = pipeline.keep_attributes
        self.entered = threading.Semaphore(0)
        self.release = threading.Event()

    def ingest(self, spans: Sequence[SpanRecord]) -> IngestResult:
        self.entered.release()
        self.release.wait(PATIENCE_SECONDS)
        return self.pipeline.ingest(spans)

    def count_request(self, status_code: int) -> None:
        self.pipeline.count_request(status_code)


@dataclass
class HeldExporter:
    servers: RunningServers
    sink: HeldSink
    registry: CollectorRegistry

    def total(self, sample: str, **labels: str) -> float:
        return total(self.registry, sample, **labels)

    def wait_for_ingest(self) -> None:
        assert self.sink.entered.acquire(timeout=PATIENCE_SECONDS), "the request never reached ingest"


class _NoMetrics:
    def render(self, accept_header: str | None) -> tuple[bytes, str]:
        return b"", "text/plain"


@contextmanager
def held_exporter(limits: ServerLimits) -> Iterator[HeldExporter]:
    pipeline = Pipeline(prices=built_in_prices())
    registry = CollectorRegistry()
    registry.register(pipeline.collector)
    sink = HeldSink(pipeline)
    servers = start_servers("127.0.0.1:0", "127.0.0.1:0", sink, _NoMetrics(), limits, ready=lambda: True)
    try:
        yield HeldExporter(servers, sink, registry)
    finally:
        sink.release.set()
        servers.shutdown()


def in_background(pool: ThreadPoolExecutor, call: Callable[[], Answer]) -> Future:
    return pool.submit(call)


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + PATIENCE_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.02)


def refuses_connections(port: int) -> bool:
    try:
        socket.create_connection((LOOPBACK, port), timeout=5).close()
    except (ConnectionRefusedError, ConnectionResetError):  # reset: it was in the backlog of a closing listener
        return True
    return False


def read_until(connection: socket.socket, end: bytes) -> bytes:
    received = b""
    while end not in received:
        chunk = connection.recv(65536)
        if not chunk:
            break
        received += chunk
    return received


def test_a_request_that_finds_no_free_slot_within_the_queue_timeout_is_told_to_retry():
    limits = ServerLimits(max_concurrent_requests=1, queue_timeout_seconds=0.2)
    with held_exporter(limits) as exporter, ThreadPoolExecutor(1) as pool:
        first = in_background(pool, lambda: Client(exporter.servers.otlp_port).export(CHAT))
        exporter.wait_for_ingest()
        refused = Client(exporter.servers.otlp_port).export(CHAT)
        exporter.sink.release.set()
        accepted = first.result(PATIENCE_SECONDS)
    status = status_pb2.Status.FromString(refused.body)
    assert (accepted.status, refused.status, refused.headers["retry-after"], status.code,
            exporter.total(catalog.REQUESTS.name, code="200"), exporter.total(catalog.REQUESTS.name, code="503"),
            exporter.total(catalog.SPANS_RECEIVED.name)) == (200, 503, "1", code_pb2.UNAVAILABLE, 1.0, 1.0, 1.0)


def test_a_request_waiting_for_a_slot_is_served_once_one_frees_up():
    limits = ServerLimits(max_concurrent_requests=1, queue_timeout_seconds=PATIENCE_SECONDS)
    with held_exporter(limits) as exporter, ThreadPoolExecutor(2) as pool:
        first = in_background(pool, lambda: Client(exporter.servers.otlp_port).export(CHAT))
        exporter.wait_for_ingest()
        second = in_background(pool, lambda: Client(exporter.servers.otlp_port).export(CHAT))
        exporter.sink.release.set()
        statuses = [first.result(PATIENCE_SECONDS).status, second.result(PATIENCE_SECONDS).status]
    assert (statuses, exporter.total(catalog.SPANS_RECEIVED.name)) == ([200, 200], 2.0)


def test_connections_beyond_max_connections_wait_until_one_closes():
    with held_exporter(ServerLimits(max_connections=1)) as exporter, ThreadPoolExecutor(1) as pool:
        first = Client(exporter.servers.web_port)
        first.request("GET", "/-/healthy")  # the only connection slot, kept alive
        second = in_background(pool, lambda: Client(exporter.servers.web_port).request("GET", "/-/healthy"))
        wait([second], timeout=0.5)  # long enough to be served if the cap did not hold it back
        served_while_first_open = second.done()
        first.close()
        answer = second.result(PATIENCE_SECONDS)
    assert (served_while_first_open, answer.status) == (False, 200)


def test_shutdown_answers_the_request_in_flight_and_refuses_new_connections():
    with held_exporter(ServerLimits()) as exporter, ThreadPoolExecutor(2) as pool:
        port = exporter.servers.otlp_port
        in_flight = in_background(pool, lambda: Client(port).export(CHAT))
        exporter.wait_for_ingest()
        stopping = pool.submit(exporter.servers.shutdown)
        wait_until(lambda: refuses_connections(port), "the listener to close")
        exporter.sink.release.set()
        answer = in_flight.result(PATIENCE_SECONDS)
        cut = stopping.result(PATIENCE_SECONDS)
    assert (answer.status, answer.headers["connection"], cut, exporter.total(catalog.SPANS_RECEIVED.name)) == (
        200, "close", 0, 1.0)


def test_shutdown_closes_idle_keep_alive_connections():
    with held_exporter(ServerLimits()) as exporter:
        idle = socket.create_connection((LOOPBACK, exporter.servers.web_port), timeout=PATIENCE_SECONDS)
        idle.sendall(b"GET /-/healthy HTTP/1.1\r\nHost: exporter\r\n\r\n")
        first_answer = read_until(idle, b"Healthy")
        cut = exporter.servers.shutdown()
        after_shutdown = idle.recv(65536)  # end of stream: the server closed its side
        idle.close()
    assert (first_answer.split(b"\r\n", 1)[0], cut, after_shutdown) == (b"HTTP/1.1 200 OK", 0, b"")


def test_shutdown_cuts_what_is_still_running_at_its_deadline():
    with held_exporter(ServerLimits(shutdown_timeout_seconds=0.2)) as exporter, ThreadPoolExecutor(1) as pool:
        stuck = in_background(pool, lambda: Client(exporter.servers.otlp_port).export(CHAT))
        exporter.wait_for_ingest()
        cut = exporter.servers.shutdown()
        exporter.sink.release.set()
        with pytest.raises(ConnectionError):
            stuck.result(PATIENCE_SECONDS)
    assert cut == 1


def test_sigterm_lets_the_export_being_received_finish_then_exits_0():
    exporter = ServeProcess([])
    signalled = False
    try:
        sender = socket.create_connection((LOOPBACK, exporter.otlp_port), timeout=PATIENCE_SECONDS)
        sender.sendall(f"POST /v1/traces HTTP/1.1\r\nHost: exporter\r\nContent-Type: application/x-protobuf\r\n"
                       f"Content-Length: {len(CHAT)}\r\nExpect: 100-continue\r\n\r\n".encode())
        continued = read_until(sender, b"\r\n\r\n")  # admitted: the exporter now waits for the body
        os.kill(exporter.pid, signal.SIGTERM)
        signalled = True
        wait_until(lambda: any("shutting down" in line for line in exporter.log), "the shutdown to start")
        wait_until(lambda: refuses_connections(exporter.otlp_port), "the OTLP listener to close")
        sender.sendall(CHAT)
        answer = read_until(sender, b"\x00never")  # everything until the exporter closes the connection
        sender.close()
    finally:
        # One SIGTERM only, as a supervisor sends it: a second one could arrive after the shutdown,
        # while Python tears down and has given the signal back its default action (exit -15).
        code = exporter.wait() if signalled else exporter.stop()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert (continued, head.split(b"\r\n")[0], b"Connection: close" in head,
            ExportTraceServiceResponse.FromString(body).partial_success.rejected_spans, code,
            exporter.log[-1].endswith('msg="shut down: every request in flight was answered"')) == (
        b"HTTP/1.1 100 Continue\r\n\r\n", b"HTTP/1.1 200 OK", True, 0, 0, True)


def test_docker_compose_gives_the_exporter_time_to_drain_before_it_kills_it():
    import yaml

    from genai_exporter.webconfig import parse_go_duration

    compose = yaml.safe_load((REPOSITORY_ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    grace = parse_go_duration(compose["services"]["genai-exporter"]["stop_grace_period"])
    assert grace is not None and grace > ServerLimits().shutdown_timeout_seconds
