"""The exporter service for the benchmarks: `python -m bench.exporter_process [CONFIG]`.

The same assembly as `genai-exporter serve` (config, price table, pipeline, a registry with the
pipeline's collector and the process collector, the garbage collector settled, both listeners from
`server.start_servers`), bound to loopback port 0. It prints the bound ports on one line and
serves until SIGTERM. Kept apart from the CLI so that the benchmarks depend only on the data path
and the server.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.process_collector import ProcessCollector

from genai_exporter.config import load_config
from genai_exporter.expose import GenAICollector, metrics_renderer
from genai_exporter.pipeline import Pipeline
from genai_exporter.pricing import load_price_table
from genai_exporter.server import settle_garbage_collector, start_servers

LISTENING = "listening: web=:{web} otlp=:{otlp}"


class _Metrics:
    def __init__(self, collector: GenAICollector, others: CollectorRegistry) -> None:
        self.render = metrics_renderer(collector, others)


def main(argv: list[str]) -> int:
    """Serve until SIGTERM; argv[0], if given, is the config file."""
    config = load_config(Path(argv[0]) if argv else None)
    pipeline = Pipeline(config, load_price_table(config.price_files))
    registry = CollectorRegistry()
    registry.register(ProcessCollector(registry=None))
    settle_garbage_collector()
    servers = start_servers("127.0.0.1:0", "127.0.0.1:0", pipeline, _Metrics(pipeline.collector, registry),
                            config.server, ready=lambda: True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(LISTENING.format(web=servers.web_port, otlp=servers.otlp_port), file=sys.stderr, flush=True)
    stop.wait()
    servers.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
