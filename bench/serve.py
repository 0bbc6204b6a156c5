"""The real exporter as the benchmarks drive it: its own process (`bench.exporter_process`) on loopback.

Started with port 0 for both listeners (the bound ports are read from its startup line) and ended
with SIGTERM, as an operator would. Clients keep their connections alive, as the
Collector's otlphttp exporter does.
"""

from __future__ import annotations

import http.client
import re
import subprocess
import sys
import threading
from pathlib import Path

from genai_exporter import catalog

_LISTENING = re.compile(r"listening: web=:(\d+) otlp=:(\d+)")
_STARTUP_LINES = 50


class ServeProcess:
    """A running exporter service, its ports, and what the benchmarks read from it."""

    def __init__(self, config_file: Path | None = None) -> None:
        command = [sys.executable, "-m", "bench.exporter_process"]
        if config_file is not None:
            command.append(str(config_file))
        self.process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
        self.web_port, self.otlp_port = self._read_ports()
        # Keep reading the log so the exporter never blocks on a full pipe.
        threading.Thread(target=self._drain_log, daemon=True).start()
        self._web = http.client.HTTPConnection("127.0.0.1", self.web_port)

    def _read_ports(self) -> tuple[int, int]:
        assert self.process.stderr is not None
        seen = []
        for _ in range(_STARTUP_LINES):
            line = self.process.stderr.readline()
            if not line:
                break
            seen.append(line)
            match = _LISTENING.search(line)
            if match:
                return int(match.group(1)), int(match.group(2))
        self.process.kill()
        raise RuntimeError("the exporter did not start:\n" + "".join(seen))

    def _drain_log(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            if "level=ERROR" in line or "Traceback" in line:
                sys.stderr.write(f"[exporter] {line}")

    @property
    def pid(self) -> int:
        return self.process.pid

    def scrape(self) -> str:
        """GET /metrics in the Prometheus text format."""
        self._web.request("GET", "/metrics")
        response = self._web.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"/metrics answered {response.status}")
        return body.decode()

    def spans_received(self) -> float:
        """genai_exporter_spans_received_total as a scrape shows it."""
        name = catalog.SPANS_RECEIVED.name
        for line in self.scrape().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        raise RuntimeError(f"{name} is missing from /metrics")

    def rss_bytes(self) -> int:
        """Resident set size of the exporter process, from /proc (VmRSS)."""
        with open(f"/proc/{self.pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS in /proc/<pid>/status")

    def stop(self) -> None:
        """SIGTERM, then wait for a clean exit."""
        self._web.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> ServeProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class OtlpConnection:
    """One keep-alive connection to the OTLP listener, posting one body at a time."""

    def __init__(self, port: int) -> None:
        self._connection = http.client.HTTPConnection("127.0.0.1", port)

    def post(self, body: bytes) -> None:
        """POST one body to /v1/traces; anything but a 200 with an empty answer raises RuntimeError."""
        self._connection.request("POST", "/v1/traces", body, {"Content-Type": "application/x-protobuf"})
        response = self._connection.getresponse()
        answer = response.read()
        if response.status != 200 or answer:
            raise RuntimeError(f"the exporter refused a batch: {response.status} {answer[:200]!r}")

    def close(self) -> None:
        self._connection.close()

