"""One side of `bench compare`: `python -m bench.compare_worker BODIES`, with a tree on PYTHONPATH.

Loads the pickled rounds of OTLP bodies, assembles the data path of `genai-exporter serve` (the
pipeline with the default configuration, the garbage collector settled as the service settles it
when the tree has that step), and runs it over the first round: series, memos and caches exist
from then on. Prints "ready", how its data path runs ("compiled" or "python", see
`genai_exporter.extensions`) and where it imported the exporter from, then, for each line
"INDEX COUNT" on stdin, runs the whole path (receive + `Pipeline.ingest`) over COUNT measured
bodies from INDEX and prints the CPU seconds it took.
"""

from __future__ import annotations

import pickle
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import genai_exporter
from bench.common import data_path_build, ingest_bodies, settle_as_the_service
from genai_exporter.config import Config
from genai_exporter.pipeline import Pipeline
from genai_exporter.pricing import load_price_table


def main(argv: Sequence[str]) -> int:
    """Serve timing requests from `bench compare` until stdin closes."""
    rounds = pickle.loads(Path(argv[0]).read_bytes())
    measured = [body for bodies in rounds[1:] for body in bodies]
    pipeline = Pipeline(Config(), load_price_table())
    ingest_bodies(pipeline, rounds[0])
    settle_as_the_service()
    print("ready", data_path_build(), Path(genai_exporter.__file__).parent, flush=True)
    for line in sys.stdin:
        index, count = map(int, line.split())
        start = time.process_time()
        ingest_bodies(pipeline, measured[index:index + count])
        print(time.process_time() - start, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
