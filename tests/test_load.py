"""Load test: 32 senders for 60 s against a real `genai-exporter serve` on loopback, then exact totals.

The exporter runs as operators run it: bearer tokens on OTLP, basic auth on /metrics, and a
deliberately small work queue (2 slots, 10 ms wait) so that it is saturated and sheds load with
503 + Retry-After. Senders behave like OTLP exporters: they post agent-run batches (protobuf, JSON,
gzip), honour Retry-After, and a few send garbage or no token. Afterwards the exporter's own
counters must equal what the senders were told: every 200 counted once with all its spans and
tokens, every refusal counted and nothing of it aggregated, no answer lost, no 5xx but 503, no
counter ever going down during the run, peak RSS under RSS_BOUND_MIB, and SIGTERM exits 0 after
answering what was in flight.

GENAI_LOAD_SECONDS shortens the run for a quick local check (CI runs the full 60 s).
"""

from __future__ import annotations

import base64
import gzip
import os
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import bcrypt
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from prometheus_client.parser import text_string_to_metric_families

from genai_exporter import catalog, semconv
from genai_exporter.records import SpanRecord
from tests.otlpwire import JSON, PROTOBUF, Client, json_body, protobuf_body
from tests.serving import ServeProcess
from tests.spanfactory import START_NS, chat_attributes, span

SENDERS = 32
DURATION_SECONDS = float(os.environ.get("GENAI_LOAD_SECONDS", "60"))
# Peak resident memory (VmHWM) of the exporter process. Measured 37-40 MiB for this run (see README,
# Security); twice that leaves room for another allocator or Python build, not for growth with traffic.
RSS_BOUND_MIB = 80
TOKEN = "3c9e1f7a5b2d4e6f8a0c1e3f5a7b9d2c"
SCRAPER_PASSWORD = "scrape-with-this-passphrase"
MODELS = ("gpt-4o-mini", "gpt-4.1", "claude-sonnet-4-5", "gemini-2.5-flash")
MONOTONIC = (catalog.SPANS_RECEIVED.name, catalog.REQUESTS.name, catalog.TOKENS.name)


@dataclass(frozen=True)
class Batch:
    """One export request body and what the exporter must count when it answers 200."""

    body: bytes
    content_type: str
    encoding: str | None
    spans: int
    rejected: int
    tokens: int


def agent_run(rng: random.Random, trace: int) -> tuple[list[SpanRecord], int]:
    """invoke_agent -> chat -> execute_tool -> chat, children ending before their parent; and its tokens."""
    trace_id = f"{trace:032x}"
    ids = [f"{trace:08x}{n:08x}" for n in range(4)]
    model = rng.choice(MODELS)
    calls = [(rng.randint(200, 20_000), rng.randint(10, 2_000)) for _ in range(2)]
    start = START_NS + trace * 1_000_000
    agent_attributes = {semconv.OPERATION_NAME: semconv.OP_INVOKE_AGENT, semconv.AGENT_NAME: "support-agent"}
    tool_attributes = {semconv.OPERATION_NAME: semconv.OP_EXECUTE_TOOL, semconv.TOOL_NAME: "search_docs"}
    spans = [
        span(chat_attributes(request_model=model, response_model=model, input_tokens=calls[0][0],
                             output_tokens=calls[0][1], **{semconv.USER_TIER: rng.choice(("free", "pro"))}),
             trace_id=trace_id, span_id=ids[1], parent_span_id=ids[0], start_ns=start, duration_s=0.8),
        span(tool_attributes, trace_id=trace_id, span_id=ids[2], parent_span_id=ids[0], start_ns=start + 10**9,
             duration_s=0.2),
        span(chat_attributes(request_model=model, response_model=model, input_tokens=calls[1][0],
                             output_tokens=calls[1][1]),
             trace_id=trace_id, span_id=ids[3], parent_span_id=ids[0], start_ns=start + 2 * 10**9, duration_s=0.9),
        span(agent_attributes, trace_id=trace_id, span_id=ids[0], start_ns=start, duration_s=3.5),
    ]
    return spans, sum(i + o for i, o in calls)


def batches(rng: random.Random) -> list[Batch]:
    """A pool of realistic export bodies: 1-8 agent runs each, some with an invalid span, in every encoding."""
    pool = []
    for number in range(48):
        spans: list[SpanRecord] = []
        tokens = 0
        for run in range(rng.randint(1, 8)):
            run_spans, run_tokens = agent_run(rng, number * 100 + run + 1)
            spans += run_spans
            tokens += run_tokens
        rejected = 0
        if number % 4 == 0:  # a span with a negative token count: rejected alone, the rest counts
            spans.append(span(chat_attributes(input_tokens=-1), trace_id=f"{number + 1:032x}",
                              span_id=f"{number + 1:016x}"))
            rejected = 1
        kind = number % 6
        if kind == 4:
            body, content_type, encoding = json_body(spans), JSON, None
        elif kind == 5:
            body, content_type, encoding = gzip.compress(protobuf_body(spans)), PROTOBUF, "gzip"
        else:
            body, content_type, encoding = protobuf_body(spans), PROTOBUF, None
        pool.append(Batch(body, content_type, encoding, len(spans), rejected, tokens))
    return pool


@dataclass
class Tally:
    """What one sender sent and was told."""

    statuses: Counter = field(default_factory=Counter)
    spans: int = 0
    rejected: int = 0
    tokens: int = 0
    errors: list[str] = field(default_factory=list)
    refusals_without_retry_after: int = 0


def rejected_spans(body: bytes, content_type: str) -> int:
    """partial_success.rejected_spans of a 200 answer, in the encoding of the request."""
    response = ExportTraceServiceResponse()
    if content_type == JSON:
        json_format.Parse(body, response)
    else:
        response.ParseFromString(body)
    return response.partial_success.rejected_spans


def send(port: int, pool: list[Batch], seed: int, deadline: float, tally: Tally) -> None:
    """One sender: a keep-alive connection posting until the deadline, like an OTLP exporter would."""
    try:
        _send(port, pool, seed, deadline, tally)
    except Exception as error:  # a sender that dies must fail the test, not vanish
        tally.errors.append(repr(error))


def _send(port: int, pool: list[Batch], seed: int, deadline: float, tally: Tally) -> None:
    rng = random.Random(seed)
    client = Client(port, timeout=60)
    garbage = rng.randbytes(512)
    while time.monotonic() < deadline:
        roll = rng.random()
        batch = rng.choice(pool)
        headers = {"Authorization": f"Bearer {TOKEN}"}
        if batch.encoding:
            headers["Content-Encoding"] = batch.encoding
        body, content_type = batch.body, batch.content_type
        if roll < 0.04:
            body, content_type = garbage, PROTOBUF  # not an ExportTraceServiceRequest: 400
        elif roll < 0.07:
            headers["Authorization"] = "Bearer not-the-token-at-all-0000000"  # 401
        try:
            answer = client.request("POST", "/v1/traces", body, {"Content-Type": content_type, **headers})
        except OSError as error:
            tally.errors.append(repr(error))
            client = Client(port, timeout=60)
            continue
        tally.statuses[answer.status] += 1
        if answer.status == 200:
            tally.spans += batch.spans
            tally.rejected += rejected_spans(answer.body, content_type)
            tally.tokens += batch.tokens
        elif answer.status == 503:
            if "retry-after" not in answer.headers:
                tally.refusals_without_retry_after += 1
            time.sleep(min(float(answer.headers.get("retry-after", "1")), 5.0))
    client.close()


def scrape(port: int) -> dict[tuple[str, tuple], float]:
    credentials = base64.b64encode(f"prometheus:{SCRAPER_PASSWORD}".encode()).decode()
    answer = Client(port, timeout=60).request("GET", "/metrics", headers={"Authorization": f"Basic {credentials}"})
    assert answer.status == 200, answer
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(answer.body.decode()) for s in family.samples}


def summed(samples: dict[tuple[str, tuple], float], name: str, **labels: str) -> float:
    return sum(v for (n, sample_labels), v in samples.items()
               if n == name and labels.items() <= dict(sample_labels).items())


def rss_mib(pid: int, field_name: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"{field_name} not in /proc/{pid}/status")


def test_32_senders_for_60_seconds_are_counted_exactly(tmp_path):
    (tmp_path / "otlp-tokens").write_text(f"{TOKEN}\n")
    (tmp_path / "genai-exporter.yml").write_text(
        "server:\n  max_concurrent_requests: 2\n  queue_timeout_seconds: 0.01\n  bearer_tokens_file: otlp-tokens\n")
    hashed = bcrypt.hashpw(SCRAPER_PASSWORD.encode(), bcrypt.gensalt(10)).decode()
    (tmp_path / "web-config.yml").write_text(f"basic_auth_users:\n  prometheus: '{hashed}'\n")
    exporter = ServeProcess(["--config.file", str(tmp_path / "genai-exporter.yml"),
                             "--web.config.file", str(tmp_path / "web-config.yml")])
    pool = batches(random.Random(2026))
    tallies = [Tally() for _ in range(SENDERS)]
    decreases: list[str] = []
    stop_watching = threading.Event()

    def watch() -> None:  # scrapes during the run: counters only ever go up
        previous: dict[tuple[str, tuple], float] = {}
        while not stop_watching.wait(2.0):
            current = scrape(exporter.web_port)
            decreases.extend(f"{key}: {previous[key]} -> {value}" for key, value in current.items()
                             if key[0] in MONOTONIC and key in previous and value < previous[key])
            previous = current

    try:
        deadline = time.monotonic() + DURATION_SECONDS
        senders = [threading.Thread(target=send, args=(exporter.otlp_port, pool, seed, deadline, tally))
                   for seed, tally in enumerate(tallies)]
        watcher = threading.Thread(target=watch)
        for thread in (*senders, watcher):
            thread.start()
        for thread in senders:
            thread.join(DURATION_SECONDS + 120)
        stop_watching.set()
        watcher.join(60)
        final = scrape(exporter.web_port)
        peak_rss = rss_mib(exporter.pid, "VmHWM")
    finally:
        exit_code = exporter.stop()

    statuses = sum((t.statuses for t in tallies), Counter())
    sent = sum(statuses.values())
    server_codes = {labels[0][1]: int(value) for (name, labels), value in final.items()
                    if name == catalog.REQUESTS.name and value}
    print(f"\nload: {sent} requests in {DURATION_SECONDS:g}s ({sent / DURATION_SECONDS:.0f}/s) by {SENDERS} senders: "
          f"{dict(sorted(statuses.items()))}; {sum(t.spans for t in tallies)} spans and "
          f"{sum(t.tokens for t in tallies)} tokens accepted; peak RSS {peak_rss:.1f} MiB")
    assert {
        "answers lost": sent - sum(server_codes.values()) if server_codes else sent,
        "codes by exporter": server_codes,
        "spans received": summed(final, catalog.SPANS_RECEIVED.name),
        "spans rejected": summed(final, catalog.SPANS_REJECTED.name),
        "tokens": summed(final, catalog.TOKENS.name),
        "unexpected codes": set(statuses) - {200, 400, 401, 503},
        "connection errors": [e for t in tallies for e in t.errors],
        "503 without Retry-After": sum(t.refusals_without_retry_after for t in tallies),
        "counters that went down": decreases,
        "peak RSS within bound": peak_rss < RSS_BOUND_MIB,
        "exit code": exit_code,
        "drained": exporter.log[-1].endswith('msg="shut down: every request in flight was answered"'),
    } == {
        "answers lost": 0,
        "codes by exporter": {str(code): count for code, count in statuses.items()},
        "spans received": sum(t.spans for t in tallies),
        "spans rejected": sum(t.rejected for t in tallies),
        "tokens": sum(t.tokens for t in tallies),
        "unexpected codes": set(),
        "connection errors": [],
        "503 without Retry-After": 0,
        "counters that went down": [],
        "peak RSS within bound": True,
        "exit code": 0,
        "drained": True,
    }
    assert statuses[200] > 0 and statuses[503] > 0, "the run must both accept and shed load to test anything"
