"""Benchmark 1, OTLP ingest: spans/s through the real `genai-exporter serve` vs the decoding floor.

The exporter (one process, pinned to one CPU) receives 1000-span OTLP/HTTP protobuf batches of
realistic agent spans over keep-alive connections from a client pinned to another CPU; a round
ends when `genai_exporter_spans_received_total` on /metrics accounts every span sent.

The floor, measured on the same CPU in alternating rounds, is what any Python exporter has to do
at the very least: parse the protobuf body and look once at every attribute of every span (its
key and which value it holds). Goal of the issue: ingest >= 0.6 x floor.

Both are counted per CPU second of the process doing the work (the exporter's from /proc, the
floor's from this process), which other load on a shared machine cannot inflate; wall-clock
throughput, what the issue names, is shown too and is only as good as the machine is quiet.

    python -m bench ingest [--rounds 7] [--batches 20] [--connections 2]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from bench.common import Measurement, Verdict, cpu_timed, header, machine, pin_to_cpu, process_cpu_seconds
from bench.serve import ServeProcess, post_all
from bench.workload import agent_spans, describe, otlp_bodies

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


def run(rounds: int, batches: int, connections: int) -> list[Verdict]:
    """Alternate exporter rounds and floor rounds; the verdict compares their medians."""
    spans = agent_spans(batches * BATCH_SIZE)
    bodies = otlp_bodies(spans, BATCH_SIZE)
    server_cpu = (os.cpu_count() or 1) - 1
    with ServeProcess() as server:
        server_pinning = pin_to_cpu(server_cpu, server.pid)
        client_pinning = pin_to_cpu(0) if server_cpu > 0 else "not pinned"
        header("ingest: OTLP/HTTP protobuf into the exporter process (the assembly of genai-exporter serve)", [
            machine(),
            f"workload: {describe(spans)}; {len(bodies)} bodies of {BATCH_SIZE} spans, "
            f"{sum(map(len, bodies)) / len(bodies) / 1024:.0f} KiB each",
            f"exporter {server_pinning}; client {client_pinning}, {connections} keep-alive connections",
        ])
        expected = 0

        def ingest_round() -> tuple[float, float]:
            """(spans per CPU second of the exporter, spans per wall-clock second)."""
            nonlocal expected
            expected += len(spans)
            cpu_before = process_cpu_seconds(server.pid)
            start = time.perf_counter()
            post_all(server.otlp_port, bodies, connections)
            while server.spans_received() < expected:
                time.sleep(0.001)
            wall = time.perf_counter() - start
            return len(spans) / (process_cpu_seconds(server.pid) - cpu_before), len(spans) / wall

        def floor_round() -> tuple[float, float]:
            pin_to_cpu(server_cpu)
            start = time.perf_counter()
            cpu = cpu_timed(lambda: decode_floor(bodies))
            wall = time.perf_counter() - start
            if server_cpu > 0:
                pin_to_cpu(0)
            return len(spans) / cpu, len(spans) / wall

        ingest_round()  # warm-up: first series, price lookups, label caps
        ingest_samples, floor_samples = [], []
        for _ in range(rounds):
            ingest_samples.append(ingest_round())
            floor_samples.append(floor_round())
        if server.spans_received() != expected:
            raise RuntimeError("spans_received_total does not match what was sent")
    verdicts = [
        Verdict(
            f"ingest / floor, {clock}",
            Measurement(f"exporter ingest, spans per {clock} second", "spans/s",
                        tuple(sample[index] for sample in ingest_samples)),
            Measurement(f"floor (protobuf decode + one attribute pass), spans per {clock} second", "spans/s",
                        tuple(sample[index] for sample in floor_samples)),
            GOAL, higher_is_better=True,
        )
        for index, clock in enumerate(("CPU", "wall-clock"))
    ]
    for verdict in verdicts:
        print(verdict.render())
    return verdicts


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of this benchmark."""
    parser.add_argument("--rounds", type=int, default=7, help="measured rounds of each (default %(default)s)")
    parser.add_argument("--batches", type=int, default=20, help="1000-span bodies per round (default %(default)s)")
    parser.add_argument("--connections", type=int, default=2, help="client connections (default %(default)s)")


def main(args: argparse.Namespace) -> list[Verdict]:
    """Entry point of `python -m bench ingest`."""
    return run(args.rounds, args.batches, args.connections)
