"""The process `bench instructions` counts: `python -m bench.instructions_worker BODIES STAGE`.

Loads two pickled lists of OTLP bodies (the warm-up's and the measured ones, spans of their own),
builds the pipeline of `genai-exporter serve` with the default configuration, runs the whole path
over the warm-up bodies (series, memos and caches exist from then on, as in a running exporter),
settles the garbage collector as the service does (when the tree measured has that step), then
runs STAGE once over the measured bodies, which it has not seen. Stage "none" stops after
the warm-up, so that its count can be subtracted from the others.
"""

from __future__ import annotations

import pickle
import sys
from collections.abc import Sequence
from pathlib import Path

from bench.common import decode_body, ingest_bodies, settle_as_the_service
from bench.ingest import decode_floor
from genai_exporter.config import Config
from genai_exporter.pipeline import Pipeline
from genai_exporter.pricing import load_price_table

STAGES = {
    "none": "setup and warm-up only",
    "floor": "floor: protobuf decode + one attribute pass",
    "receive": "receive: body -> SpanRecords",
    "whole": "whole path: receive + Pipeline.ingest",
}


def main(argv: Sequence[str]) -> int:
    """Run the warm-up, then the stage named by argv[1] over the bodies in the file argv[0]."""
    warm_up_bodies, bodies = pickle.loads(Path(argv[0]).read_bytes())
    stage = argv[1]
    pipeline = Pipeline(Config(), load_price_table())
    keep = pipeline.keep_attributes

    def receive(bodies: list[bytes]) -> None:
        for body in bodies:
            decode_body(body, keep)

    ingest_bodies(pipeline, warm_up_bodies)
    settle_as_the_service()
    work = {"none": lambda _: None, "floor": decode_floor, "receive": receive,
            "whole": lambda bodies: ingest_bodies(pipeline, bodies)}[stage]
    work(bodies)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
