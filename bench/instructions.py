"""CPU instructions per span of the OTLP path and of the decoding floor, counted by valgrind.

Not a goal of the issue but a second view of benchmark 1 that the shared machine cannot blur:
the number of instructions a piece of code executes does not depend on what else runs, while its
time on this machine moves by a third from one round to the next. Each figure is counted by
`valgrind --tool=callgrind` in a process of its own (`bench.instructions_worker`), over the same
bodies, once its memos and series exist: a warm-up over spans of their own, not counted, then the
measured spans (`workload.fresh_spans`: the same call sites, new ids and token counts). The
instructions of the run minus those of the same process doing only the setup and the warm-up. Instructions are
not time: the floor's are mostly C (upb) and run more of them per cycle than the exporter's
Python does, so this ratio reads higher than the time one. About two minutes per 4,000 spans.

    python -m bench instructions [--spans 20000]
"""

from __future__ import annotations

import argparse
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import header, machine
from bench.ingest import BATCH_SIZE
from bench.instructions_worker import STAGES
from bench.workload import describe, fresh_spans, otlp_bodies

_COLLECTED = re.compile(r"Collected : (\d+)")


def _instructions(bodies_file: Path, stage: str) -> int:
    """Instructions executed by the worker process doing `stage` (or only its setup: "none")."""
    completed = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
         sys.executable, "-m", "bench.instructions_worker", str(bodies_file), stage],
        capture_output=True, text=True, check=True,
    )
    match = _COLLECTED.search(completed.stderr)
    if match is None:
        raise RuntimeError(f"callgrind printed no count:\n{completed.stderr[-2000:]}")
    return int(match.group(1))


def run(span_count: int) -> list[object]:
    """Count the floor's and the whole path's instructions per span; print them and their ratio."""
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (Debian package valgrind): nothing counted")
        return []
    warm_up_bodies = otlp_bodies(fresh_spans(span_count, 0), BATCH_SIZE)
    spans = fresh_spans(span_count, 1)
    bodies = otlp_bodies(spans, BATCH_SIZE)
    header("instructions: CPU instructions per span (valgrind callgrind), after a warm-up over other spans", [
        machine(), f"workload: {describe(spans)}; {len(bodies)} bodies of {BATCH_SIZE} spans"])
    with tempfile.TemporaryDirectory() as directory:
        bodies_file = Path(directory) / "bodies.pickle"
        bodies_file.write_bytes(pickle.dumps((warm_up_bodies, bodies)))
        setup = _instructions(bodies_file, "none")
        per_span = {stage: (_instructions(bodies_file, stage) - setup) / span_count
                    for stage in STAGES if stage != "none"}
    for stage, count in per_span.items():
        print(f"   {STAGES[stage]:<55} {count:>10,.0f} instructions/span")
    print(f"   => floor / whole path, in instructions: {per_span['floor'] / per_span['whole']:.2f}")
    return []


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of this profile."""
    parser.add_argument("--spans", type=int, default=20_000, help="spans (default %(default)s)")


def main(args: argparse.Namespace) -> list[object]:
    """Entry point of `python -m bench instructions`."""
    return run(args.spans)
