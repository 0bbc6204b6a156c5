"""Two versions of the OTLP path timed against each other: how much less CPU time per span one takes.

Not a goal of the issue but how a change to the path is judged in time. On this shared machine
the speed drifts by a third within seconds, so two runs one after the other say little about a
change of a few per cent. Here both versions run at once, each in a process of its own pinned to
the same CPU, and take turns every `--bodies` bodies over the same new spans (1000 per body):
each pair of turns gives a ratio, after / before, in moments a few tens of milliseconds apart.

A process brings a bias of its own: string hashing is seeded per process, and with it the layout
of every dict and set, which moved the ratio of two copies of the same code by two or three per
cent. So the comparison is made in `--sessions` sessions, each with two new processes (started in
turn order, the one started first alternating), and the verdict is the median of the sessions'
medians; every session's median is printed.

    python -m bench compare --before DIR [--after DIR] [--before-from-source] [--sessions 6] [--pairs 30] [--bodies 2]

DIR is a tree of the repository, e.g. `mkdir /tmp/before && git archive <commit> | tar -x -C /tmp/before`;
`--after` defaults to this checkout. Each version's exporter package is imported from its tree; the
benchmark code is this checkout's. A tree runs its data path compiled only if it was built there
(`pip install -e` in it, see setup.py): a `git archive` runs from its sources, and each side's build is
printed. `--before . --before-from-source` sets this checkout from its Python sources against itself compiled.
"""

from __future__ import annotations

import argparse
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import header, machine
from bench.ingest import BATCH_SIZE
from bench.workload import describe, fresh_spans, otlp_bodies
from genai_exporter.extensions import NO_EXTENSIONS_VARIABLE

_REPOSITORY = Path(__file__).resolve().parents[1]


class _Side:
    """One version's worker process, pinned to `cpu`."""

    def __init__(self, tree: Path, from_source: bool, bodies_file: Path, cpu: int) -> None:
        environment = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tree / "exporter"), str(_REPOSITORY)]))
        environment.pop("PYTHONHASHSEED", None)  # a seed of its own: see the module docstring
        if from_source:
            environment[NO_EXTENSIONS_VARIABLE] = "1"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.compare_worker", str(bodies_file)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=environment, cwd=_REPOSITORY,
        )
        if hasattr(os, "sched_setaffinity") and cpu < (os.cpu_count() or 1):
            os.sched_setaffinity(self.process.pid, {cpu})
        assert self.process.stdout is not None
        ready, _, rest = self.process.stdout.readline().strip().partition(" ")
        if ready != "ready":
            raise RuntimeError(f"the worker of {tree} did not start")
        self.build, _, imported = rest.partition(" ")
        if not Path(imported).is_relative_to(tree):
            raise RuntimeError(f"the worker of {tree} imported the exporter from {imported}")

    def time(self, index: int, count: int) -> float:
        """CPU seconds the worker takes for `count` measured bodies from `index`."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(f"{index} {count}\n")
        self.process.stdin.flush()
        return float(self.process.stdout.readline())

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait()


def _session(versions: dict[str, tuple[Path, bool]], bodies_file: Path, pairs: int, bodies: int,
             after_first: bool, builds: set[str]) -> float:
    """The median ratio after / before of the pairs of one session, with two new processes.

    `versions` maps "before" and "after" to (tree, run from the Python sources); each side's build
    ("compiled" or "python") goes into `builds`.
    """
    cpu = (os.cpu_count() or 1) - 1
    order = ["after", "before"] if after_first else ["before", "after"]
    sides = {role: _Side(*versions[role], bodies_file, cpu) for role in order}
    builds.update(f"{role}: {side.build}" for role, side in sides.items())
    try:
        ratios = []
        for pair in range(pairs):
            index = pair * bodies
            times = {}
            for role in (order if pair % 2 == 0 else order[::-1]):
                times[role] = sides[role].time(index, bodies)
            ratios.append(times["after"] / times["before"])
        return statistics.median(ratios)
    finally:
        for side in sides.values():
            side.close()


def run(before: Path, after: Path, before_from_source: bool, sessions: int, pairs: int,
        bodies: int) -> list[object]:
    """Time both versions in turns, session after session; print each session's median and the verdict."""
    spans = fresh_spans(BATCH_SIZE * bodies * pairs, 1)
    rounds = [otlp_bodies(fresh_spans(BATCH_SIZE * 20, 0), BATCH_SIZE), otlp_bodies(spans, BATCH_SIZE)]
    header("compare: CPU time per span of the whole path (receive + Pipeline.ingest), after / before", [
        machine(), f"before: {before}{' from its Python sources' if before_from_source else ''}; after: {after}",
        f"workload: {describe(spans)}; warm-up over 20 bodies of other spans, then {pairs} pairs of turns "
        f"of {bodies} bodies each, the same new spans for both sides",
        f"{sessions} sessions of two new processes pinned to one CPU, the first started alternating"])
    versions = {"before": (before, before_from_source), "after": (after, False)}
    builds: set[str] = set()
    with tempfile.TemporaryDirectory() as directory:
        bodies_file = Path(directory) / "rounds.pickle"
        bodies_file.write_bytes(pickle.dumps(rounds))
        medians = [_session(versions, bodies_file, pairs, bodies, number % 2 == 1, builds)
                   for number in range(sessions)]
    print(f"   data path of each side: {'; '.join(sorted(builds))}")
    print(f"   median ratio of each session: {', '.join(f'{ratio:.3f}' for ratio in medians)}")
    verdict = statistics.median(medians)
    print(f"   => after / before, CPU time per span: {verdict:.3f} ({(verdict - 1) * 100:+.1f} %)")
    return []


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of this profile."""
    parser.add_argument("--before", type=Path, required=True, help="tree of the version to compare against")
    parser.add_argument("--after", type=Path, default=_REPOSITORY, help="tree of the new version (this checkout)")
    parser.add_argument("--before-from-source", action="store_true",
                        help="run the before side from its Python sources, not its compiled data path "
                        "(with --before . : what compiling gains)")
    parser.add_argument("--sessions", type=int, default=6, help="sessions of two new processes (default %(default)s)")
    parser.add_argument("--pairs", type=int, default=30, help="pairs of turns per session (default %(default)s)")
    parser.add_argument("--bodies", type=int, default=2, help="bodies of 1000 spans per turn (default %(default)s)")


def main(args: argparse.Namespace) -> list[object]:
    """Entry point of `python -m bench compare`."""
    return run(args.before.resolve(), args.after.resolve(), args.before_from_source, args.sessions, args.pairs,
               args.bodies)
