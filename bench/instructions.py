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

With `--cache-sim`, callgrind also simulates the CPU's first-level caches and counts their misses
per span (instruction cache I1, data cache D1; about twice as slow): what the instruction count
leaves out of the time. A miss in either costs a dozen cycles or so when the next level holds the
line, and the interpreter, whose code and objects are spread wide, misses far more often than
upb's decoding loop. The simulated caches are a model of this machine's (callgrind reads their
sizes from the CPU), not a measurement of it.

    python -m bench instructions [--spans 20000] [--cache-sim]
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

# Counts callgrind prints in its summary: instructions always, cache misses with --cache-sim=yes.
_COUNTS = {
    "instructions": re.compile(r"I\s+refs:\s+([\d,]+)"),
    "I1 misses": re.compile(r"I1\s+misses:\s+([\d,]+)"),
    "D1 misses": re.compile(r"D1\s+misses:\s+([\d,]+)"),
}


def _counts(bodies_file: Path, stage: str, cache_sim: bool) -> dict[str, int]:
    """What the worker process doing `stage` (or only its setup: "none") executed, and missed."""
    completed = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
         f"--cache-sim={'yes' if cache_sim else 'no'}",
         sys.executable, "-m", "bench.instructions_worker", str(bodies_file), stage],
        capture_output=True, text=True, check=True,
    )
    counts = {}
    for name, pattern in _COUNTS.items():
        match = pattern.search(completed.stderr)
        if match is not None:
            counts[name] = int(match.group(1).replace(",", ""))
    if "instructions" not in counts or (cache_sim and len(counts) != len(_COUNTS)):
        raise RuntimeError(f"callgrind printed no count:\n{completed.stderr[-2000:]}")
    return counts


def run(span_count: int, cache_sim: bool) -> list[object]:
    """Count the floor's and the whole path's instructions (and cache misses) per span; print them."""
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
        setup = _counts(bodies_file, "none", cache_sim)
        per_span = {}
        for stage in STAGES:
            if stage != "none":
                counts = _counts(bodies_file, stage, cache_sim)
                per_span[stage] = {name: (count - setup[name]) / span_count for name, count in counts.items()}
    for stage, counts in per_span.items():
        misses = "".join(f"  {counts[name]:>7,.0f} {name}" for name in counts if name != "instructions")
        print(f"   {STAGES[stage]:<55} {counts['instructions']:>10,.0f} instructions/span{misses}")
    print(f"   => floor / whole path, in instructions: "
          f"{per_span['floor']['instructions'] / per_span['whole']['instructions']:.2f}")
    return []


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of this profile."""
    parser.add_argument("--spans", type=int, default=20_000, help="spans (default %(default)s)")
    parser.add_argument("--cache-sim", action="store_true",
                        help="also count first-level cache misses per span (simulated by callgrind)")


def main(args: argparse.Namespace) -> list[object]:
    """Entry point of `python -m bench instructions`."""
    return run(args.spans, args.cache_sim)
