"""Where the ingest time goes: CPU time per span of each stage of the OTLP path, in one process.

Not a goal of the issue but the profile behind benchmark 1: the decoding floor, then receive
(protobuf body to SpanRecords), normalize, price and aggregate, each timed alone over the same
realistic spans on one pinned CPU once its series exist, and the whole path (receive +
`Pipeline.ingest`, which also sorts and locks) for comparison. Every run of receive and of the
whole path decodes spans of its own (`workload.fresh_spans`), as traffic brings them: what the
receiver remembers of earlier runs (call sites) helps, but no run finds its token counts or ids
already seen. CPU time of this process
(`time.process_time`), so another process on the machine slows a stage down but cannot add its
own time to it; minimum and median of the runs.

    python -m bench stages [--runs 7] [--spans 20000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable, Sequence

from bench.common import decode_body, header, ingest_bodies, machine, pin_to_cpu
from bench.ingest import BATCH_SIZE, decode_floor
from bench.workload import describe, fresh_spans, otlp_bodies
from genai_exporter.aggregate import Aggregator
from genai_exporter.config import Config
from genai_exporter.normalize import Normalizer, Observation
from genai_exporter.pipeline import Pipeline
from genai_exporter.pricing import PriceTable, load_price_table, price_usage
from genai_exporter.records import TokenCost


def _priced(observations: Sequence[Observation], prices: PriceTable) -> list[tuple[str, TokenCost | None]]:
    priced = []
    for observation in observations:
        entry = prices.lookup(observation.provider, observation.model) if observation.model else None
        if entry is None:
            priced.append((observation.model, None))
        else:
            usage = observation.usage
            priced.append((entry.model, price_usage(entry, usage) if usage is not None else None))
    return priced


def _cpu_per_span(work: Callable[[int], object], spans: int, runs: int) -> tuple[float, float]:
    samples = []
    for run_number in range(runs):
        start = time.process_time()
        work(run_number)
        samples.append((time.process_time() - start) / spans * 1e6)
    return min(samples), statistics.median(samples)


def run(runs: int, span_count: int) -> list[object]:
    """Time every stage over the same spans; print a table of microseconds per span."""
    cpu = (os.cpu_count() or 1) - 1
    pinning = pin_to_cpu(cpu)
    spans = fresh_spans(span_count, 0)
    bodies = otlp_bodies(spans, BATCH_SIZE)
    # Bodies of their own for each run of receive (rounds 1..runs) and of the whole path (after those).
    fresh = [otlp_bodies(fresh_spans(span_count, number), BATCH_SIZE) for number in range(1, 2 * runs + 1)]
    config = Config()
    prices = load_price_table()
    normalizer = Normalizer(config.dimensions)
    keep = normalizer.keep_attributes

    def receive(run_number: int) -> None:
        for body in fresh[run_number]:  # one batch alive at a time, as in the exporter
            decode_body(body, keep)

    records = [record for body in bodies for record in decode_body(body, keep)]
    outcomes = [normalizer.normalize(record) for record in records]
    observations = [outcome for outcome in outcomes if isinstance(outcome, Observation)]
    priced = _priced(observations, prices)

    aggregator = Aggregator([d.label for d in config.dimensions], [d.max_values for d in config.dimensions],
                            config.limits)

    def aggregate(_: int = 0) -> None:
        for observation, (model, cost) in zip(observations, priced, strict=True):
            aggregator.record(observation, model, cost)

    pipeline = Pipeline(config, prices)

    aggregate()  # warm-up of both: series exist from now on, as in a running exporter
    ingest_bodies(pipeline, bodies)
    stages: list[tuple[str, Callable[[int], object]]] = [
        ("floor: protobuf decode + one attribute pass", lambda _: decode_floor(bodies)),
        ("receive: body -> SpanRecords", receive),
        ("normalize: SpanRecord -> Observation", lambda _: [normalizer.normalize(r) for r in records]),
        ("price: lookup + cost per token type", lambda _: _priced(observations, prices)),
        ("aggregate: Aggregator.record", aggregate),
        ("whole path: receive + Pipeline.ingest",
         lambda run_number: ingest_bodies(pipeline, fresh[runs + run_number])),
    ]
    header("stages: CPU time per span of each stage of the OTLP path", [
        machine(), f"workload: {describe(spans)}", f"this process {pinning}; {runs} runs of each stage"])
    print(f"   {'stage':<50} {'min us/span':>12} {'median':>8}")
    for name, work in stages:
        best, middle = _cpu_per_span(work, len(records), runs)
        print(f"   {name:<50} {best:>12.2f} {middle:>8.2f}")
    return []


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of this profile."""
    parser.add_argument("--runs", type=int, default=7, help="runs of each stage (default %(default)s)")
    parser.add_argument("--spans", type=int, default=20_000, help="spans (default %(default)s)")


def main(args: argparse.Namespace) -> list[object]:
    """Entry point of `python -m bench stages`."""
    return run(args.runs, args.spans)
