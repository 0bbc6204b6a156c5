"""Python bytecodes per span of the OTLP path, by function: where the interpreter spends its work.

Not a goal of the issue but a third view of benchmark 1, beside `stages` (time) and
`instructions` (CPU instructions): the path is Python, and each bytecode costs the interpreter
loop a few dozen instructions, so the functions that execute the most bytecodes per span are the
ones to make cheaper. Counted exactly with `sys.settrace` opcode events (which make the code
slower, not different) over one 1000-span body of spans it has not seen, after the whole path has
seen 20 other bodies, as a running exporter has (`workload.fresh_spans`: the same call sites, new
ids and token counts). Deterministic but for the trace and span ids the SDK draws at random.

    GENAI_EXPORTER_NO_EXTENSIONS=1 python -m bench opcodes [--top 15]

(Bytecodes are those of the sources: the compiled data path executes none, so it is refused.)
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path
from types import FrameType
from typing import Any

from bench.common import data_path_build, header, ingest_bodies, machine
from bench.ingest import BATCH_SIZE
from bench.workload import describe, fresh_spans, otlp_bodies
from genai_exporter.config import Config
from genai_exporter.pipeline import Pipeline
from genai_exporter.pricing import load_price_table

_SPANS = 20_000


def count_opcodes(work: Any) -> Counter[str]:
    """Bytecodes executed by `work()`, by function ("module.py:function")."""
    counts: Counter[str] = Counter()

    def trace(frame: FrameType, event: str, _: object) -> Any:
        frame.f_trace_opcodes = True
        if event == "opcode":
            code = frame.f_code
            counts[f"{Path(code.co_filename).name}:{code.co_name}"] += 1
        return trace

    sys.settrace(trace)
    try:
        work()
    finally:
        sys.settrace(None)
    return counts


def run(top: int) -> list[object]:
    """Warm the path up over 20 bodies, then count the bytecodes of one body of other spans; print them."""
    spans = fresh_spans(_SPANS, 0)
    bodies = otlp_bodies(spans, BATCH_SIZE)
    measured = otlp_bodies(fresh_spans(BATCH_SIZE, 1), BATCH_SIZE)[0]
    pipeline = Pipeline(Config(), load_price_table())
    ingest_bodies(pipeline, bodies)
    counts = count_opcodes(lambda: ingest_bodies(pipeline, [measured]))
    header("opcodes: Python bytecodes per span of the whole OTLP path (receive + Pipeline.ingest)", [
        machine(),
        f"workload: {describe(spans)}; warm-up over {len(bodies)} bodies, then one body of other spans counted"])
    print(f"   {'all functions':<50} {sum(counts.values()) / BATCH_SIZE:>10,.1f} bytecodes/span")
    for function, count in counts.most_common(top):
        print(f"   {function:<50} {count / BATCH_SIZE:>10,.1f}")
    return []


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of this profile."""
    parser.add_argument("--top", type=int, default=15, help="functions shown (default %(default)s)")


def main(args: argparse.Namespace) -> list[object]:
    """Entry point of `python -m bench opcodes`."""
    build = data_path_build()
    if build != "python":
        # Compiled modules execute no bytecode: counting them would leave them out unseen.
        raise SystemExit(f"bench opcodes: the data path here is {build}, and compiled code executes no "
                         "bytecodes; run it from its sources: GENAI_EXPORTER_NO_EXTENSIONS=1 python -m bench opcodes")
    return run(args.top)
