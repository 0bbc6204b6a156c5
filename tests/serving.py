"""Running exporters for the server tests: in this process on loopback, or as a real `genai-exporter serve`.

`serving` starts both listeners on free loopback ports around a fresh Pipeline; `ServeProcess`
runs the console command in a child process (what an operator runs), reads the ports it bound from
its log and keeps every log line it writes.
"""

from __future__ import annotations

import functools
import re
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import CollectorRegistry

from genai_exporter.config import Config
from genai_exporter.expose import GenAICollector, metrics_renderer
from genai_exporter.pipeline import Pipeline
from genai_exporter.pricing import PriceTable, load_price_table
from genai_exporter.server import RunningServers, start_servers
from genai_exporter.webconfig import WebConfigFile

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
_LISTENING = re.compile(r"listening: web=:(\d+) otlp=:(\d+)")


@functools.cache
def built_in_prices() -> PriceTable:
    """The built-in price table, read once per test session (parsing it takes a while)."""
    return load_price_table()


class _Metrics:
    def __init__(self, collector: GenAICollector) -> None:
        self.render = metrics_renderer(collector)


def total(registry: CollectorRegistry, sample: str, **labels: str) -> float:
    """Sum of the samples named `sample` whose labels include `labels`."""
    return sum(s.value for family in registry.collect() for s in family.samples
               if s.name == sample and labels.items() <= s.labels.items())


@dataclass
class Exporter:
    """An exporter serving in this process: its pipeline, its registry and its two ports."""

    pipeline: Pipeline
    registry: CollectorRegistry
    servers: RunningServers

    @property
    def otlp_port(self) -> int:
        """The OTLP listener's port."""
        return self.servers.otlp_port

    @property
    def web_port(self) -> int:
        """The metrics listener's port."""
        return self.servers.web_port

    def total(self, sample: str, **labels: str) -> float:
        """Sum of the current samples named `sample` with these labels."""
        return total(self.registry, sample, **labels)


@contextmanager
def serving(config: Config | None = None, web_config_file: Path | None = None) -> Iterator[Exporter]:
    """Both listeners on free loopback ports, with this config and web config file; drained on exit."""
    config = config if config is not None else Config()
    pipeline = Pipeline(config, built_in_prices() if not config.price_files else None)
    registry = CollectorRegistry()
    registry.register(pipeline.collector)
    web_config = WebConfigFile(web_config_file) if web_config_file is not None else None
    servers = start_servers("127.0.0.1:0", "127.0.0.1:0", pipeline, _Metrics(pipeline.collector), config.server,
                            ready=lambda: True, web_config=web_config, ingest_auth=config.ingest_auth)
    try:
        yield Exporter(pipeline, registry, servers)
    finally:
        servers.shutdown()


class ServeProcess:
    """`genai-exporter serve` in a child process on free loopback ports, its log kept line by line."""

    def __init__(self, arguments: Sequence[str], log_level: str = "info",
                 environment: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "genai_exporter.cli", "--log.level", log_level, "serve", *arguments,
             "--web.listen-address", "127.0.0.1:0", "--otlp.listen-address", "127.0.0.1:0"],
            stderr=subprocess.PIPE, text=True, cwd=REPOSITORY_ROOT, env=environment)
        self.log: list[str] = []
        match = None
        assert self.process.stderr is not None
        while match is None:
            line = self.process.stderr.readline()
            if not line:
                self.process.wait(timeout=30)
                raise AssertionError(f"serve exited with {self.process.returncode} before listening: {self.log}")
            self.log.append(line.rstrip("\n"))
            match = _LISTENING.search(line)
        self.web_port, self.otlp_port = int(match.group(1)), int(match.group(2))
        self._reader = threading.Thread(target=self._read_log, daemon=True)
        self._reader.start()

    def _read_log(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.log.append(line.rstrip("\n"))

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM, then wait for the exit code (and the last log lines)."""
        if self.process.poll() is None:
            self.process.terminate()
        return self.wait(timeout)

    def wait(self, timeout: float = 60.0) -> int:
        """The exit code of a child already told to stop, and its last log lines; sends no signal."""
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=10)
        return code

    @property
    def pid(self) -> int:
        """The child's process id."""
        return self.process.pid
