"""Benchmark 1, OTLP ingest: spans/s through the real `genai-exporter serve` vs the decoding floor.

The exporter (one process, pinned to one CPU) receives 1000-span OTLP/HTTP protobuf batches of
realistic agent spans over a keep-alive connection from a client pinned to another CPU, one body
at a time; a round ends when `genai_exporter_spans_received_total` on /metrics accounts every
span sent. Each round sends spans of its own (`workload.fresh_spans`): the call sites recur, as in
a fleet, while ids, token counts and tool results are new, so nothing the exporter remembers from
an earlier round makes a later one cheaper than traffic would.

The floor is what any Python exporter has to do at the very least: parse the protobuf body and
look once at every attribute of every span (its key and which value it holds). It runs on the
exporter's CPU, interleaved with the exporter body by body: each body is posted, answered, then
decoded by the floor, so that both sides of the ratio share the same moments of a machine whose
speed drifts by a third from one second to the next. Goal of the issue: ingest >= 0.6 x floor.

Both are counted per CPU second of the process doing the work (the exporter's from /proc over
the round, the floor's from this process), which other load on a shared machine cannot inflate;
wall-clock throughput, what the issue names, is shown too and is only as good as the machine is
quiet. The ratio of each round is printed with the medians.

    python -m bench ingest [--rounds 7] [--batches 20]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from bench.common import Measurement, Verdict, cpu_timed, header, machine, pin_to_cpu, process_cpu_seconds
from bench.serve import OtlpConnection, ServeProcess
from bench.workload import describe, fresh_spans, otlp_bodies

BATCH_SIZE = 1000
GOAL = 0.6


def decode_floor(bodies: Sequence[bytes]) -> int:
    """Parse every body and visit every attribute once (key and value kind); returns spans seen."""
    spans = 0
    for body in bodies:
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    spans += 1
                    for attribute in span.attributes:
                        _ = attribute.key, attribute.value.WhichOneof("value")
    return spans


def run(rounds: int, batches: int) -> list[Verdict]:
    """Rounds of interleaved exporter and floor work; the verdict compares their medians."""
    span_count = batches * BATCH_SIZE
    # The warm-up round and each measured round send bodies of their own.
    rounds_bodies = []
    for number in range(rounds + 1):
        spans = fresh_spans(span_count, number)
        rounds_bodies.append(otlp_bodies(spans, BATCH_SIZE))
    workload = describe(spans)  # every round has the same mix; the last one's spans are described
    server_cpu = (os.cpu_count() or 1) - 1
    client_cpu = 0  # the same CPU as the server's on a one-CPU machine, where nothing is pinned
    with ServeProcess() as server:
        server_pinning = pin_to_cpu(server_cpu, server.pid)
        client_pinning = pin_to_cpu(client_cpu) if server_cpu > 0 else "not pinned"
        header("ingest: OTLP/HTTP protobuf into the exporter process (the assembly of genai-exporter serve)", [
            machine(),
            f"workload: {workload}; {batches} bodies of {BATCH_SIZE} spans per round, "
            f"{sum(map(len, rounds_bodies[0])) / batches / 1024:.0f} KiB each, new spans in every round",
            f"exporter {server_pinning}; client {client_pinning}, one keep-alive connection; "
            f"the floor on the exporter's CPU, body by body between the posts",
        ])
        connection = OtlpConnection(server.otlp_port)
        expected = 0

        def paired_round(bodies: Sequence[bytes]) -> tuple[tuple[float, float], tuple[float, float]]:
            """((exporter spans per CPU second, per wall-clock second), (the floor's, the floor's))."""
            nonlocal expected
            expected += span_count
            exporter_wall = floor_wall = floor_cpu = 0.0
            exporter_cpu_before = process_cpu_seconds(server.pid)
            for body in bodies:
                start = time.perf_counter()
                connection.post(body)  # answered 200: its spans are counted
                exporter_wall += time.perf_counter() - start
                pin_to_cpu(server_cpu)
                start = time.perf_counter()
                floor_cpu += cpu_timed(lambda body=body: decode_floor([body]))
                floor_wall += time.perf_counter() - start
                pin_to_cpu(client_cpu)
            # The exporter is idle while the floor runs, so its CPU time over the round is the posts'.
            exporter_cpu = process_cpu_seconds(server.pid) - exporter_cpu_before
            if server.spans_received() != expected:
                raise RuntimeError("spans_received_total does not match what was sent")
            return ((span_count / exporter_cpu, span_count / exporter_wall),
                    (span_count / floor_cpu, span_count / floor_wall))

        paired_round(rounds_bodies[0])  # warm-up: first series, price lookups, label caps, memos
        samples = [paired_round(bodies) for bodies in rounds_bodies[1:]]
        connection.close()
    verdicts = []
    for index, clock in enumerate(("CPU", "wall-clock")):
        ingest_samples = tuple(exporter[index] for exporter, _ in samples)
        floor_samples = tuple(floor[index] for _, floor in samples)
        verdicts.append(Verdict(
            f"ingest / floor, {clock}",
            Measurement(f"exporter ingest, spans per {clock} second", "spans/s", ingest_samples),
            Measurement(f"floor (protobuf decode + one attribute pass), spans per {clock} second", "spans/s",
                        floor_samples),
            GOAL, higher_is_better=True,
        ))
        ratios = ", ".join(f"{ours / floor:.2f}" for ours, floor in zip(ingest_samples, floor_samples, strict=True))
        print(f"  ratio of each round, {clock}: {ratios}")
    for verdict in verdicts:
        print(verdict.render())
    return verdicts


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of this benchmark."""
    parser.add_argument("--rounds", type=int, default=7, help="measured rounds of each (default %(default)s)")
    parser.add_argument("--batches", type=int, default=20, help="1000-span bodies per round (default %(default)s)")


def main(args: argparse.Namespace) -> list[Verdict]:
    """Entry point of `python -m bench ingest`."""
    return run(args.rounds, args.batches)
