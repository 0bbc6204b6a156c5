"""The monitoring stack on loopback, from the repository's own config files and the real binaries.

`genai-exporter serve --demo`, Debian's `prometheus` and `prometheus-alertmanager`, and a webhook
receiver served by the test itself. The configs are the committed ones (deploy/prometheus,
deploy/alertmanager, the rule file of alerts/) with only what must differ on one machine rewritten:
addresses become loopback ports, intervals shrink, and the rules are rendered with their windows
scaled by one named factor (`alerts.rules.render_rules(time_scale)`).
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import yaml

ROOT = Path(__file__).resolve().parents[1]
PROMETHEUS_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
ALERTMANAGER_CONFIG = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
EXPORTER_JOB = "genai-exporter"
# How long a process gets to come up before the test gives up on it.
STARTUP_SECONDS = 60
T = TypeVar("T")


def free_port() -> int:
    """A loopback port nothing listens on right now (the binaries take no port 0)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def http_get(url: str, timeout: float = 10) -> tuple[int, bytes]:
    """Status and body of a GET; HTTP errors are answers too."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def http_request(url: str, method: str, body: Any = None, timeout: float = 10) -> int:
    """Status of a request with an optional JSON body."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, interval: float = 0.5) -> T:
    """Poll `probe` until it returns something other than None/False; fail naming `what` after `timeout`.

    A liveness bound, not a performance assertion: timeouts are generous for shared machines.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result is not None and result is not False:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


@dataclass
class Process:
    """A child process whose output goes to a log file the test can show when something fails."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(encoding="utf-8", errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def stop(self) -> int:
        """SIGTERM, then SIGKILL if it does not exit; returns the exit code."""
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                return self.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.popen.kill()
        return self.popen.wait()


def start(name: str, args: list[str], directory: Path) -> Process:
    """Start `args` with stdout and stderr to `directory/name.log`."""
    log = directory / f"{name}.log"
    with log.open("wb") as output:
        popen = subprocess.Popen(args, stdout=output, stderr=subprocess.STDOUT, cwd=directory)
    return Process(name, popen, log)


def wait_until_ready(process: Process, url: str) -> None:
    """Wait for `url` to answer 200, or fail with the process's log."""
    def ready() -> bool:
        if process.popen.poll() is not None:
            raise AssertionError(f"{process.name} exited with {process.popen.returncode}:\n{process.tail()}")
        try:
            return http_get(url, timeout=2)[0] == 200
        except OSError:
            return False

    wait_for(f"{process.name} at {url}", ready, STARTUP_SECONDS)


# --- genai-exporter ---------------------------------------------------------------------------------

_LISTENING = re.compile(r"listening: web=:(\d+) otlp=:(\d+)")


def start_exporter(directory: Path, *args: str) -> tuple[Process, int]:
    """`genai-exporter serve --demo` on loopback ports it picks itself; returns it and its web port."""
    process = start("genai-exporter", [
        sys.executable, "-m", "genai_exporter.cli", "serve", "--demo",
        "--web.listen-address", "127.0.0.1:0", "--otlp.listen-address", "127.0.0.1:0", *args,
    ], directory)

    def port() -> int | None:
        if process.popen.poll() is not None:
            raise AssertionError(f"genai-exporter exited with {process.popen.returncode}:\n{process.tail()}")
        match = _LISTENING.search(process.log.read_text(encoding="utf-8", errors="replace"))
        return int(match.group(1)) if match else None

    web_port = wait_for("genai-exporter to listen", port, STARTUP_SECONDS, interval=0.1)
    wait_until_ready(process, f"http://127.0.0.1:{web_port}/-/ready")
    return process, web_port


# --- Prometheus -------------------------------------------------------------------------------------

def prometheus_config(*, exporter_port: int, alertmanager_port: int, prometheus_port: int, rule_file: Path,
                      interval: str) -> dict[str, Any]:
    """deploy/prometheus/prometheus.yml, pointed at the loopback processes, with short intervals.

    Scrape jobs of services that do not run here (collector, Tempo, Loki, Grafana) are left out.
    """
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text(encoding="utf-8"))
    config["global"]["scrape_interval"] = interval
    config["global"]["evaluation_interval"] = interval
    config["rule_files"] = [str(rule_file)]
    config["alerting"]["alertmanagers"] = [{"static_configs": [{"targets": [f"127.0.0.1:{alertmanager_port}"]}]}]
    targets = {EXPORTER_JOB: exporter_port, "prometheus": prometheus_port, "alertmanager": alertmanager_port}
    config["scrape_configs"] = [
        {**job, "static_configs": [{"targets": [f"127.0.0.1:{targets[job['job_name']]}"]}]}
        for job in config["scrape_configs"] if job["job_name"] in targets
    ]
    return config


@dataclass
class Prometheus:
    """A running Prometheus and its HTTP API."""

    process: Process
    url: str

    def api(self, path: str, **params: str) -> Any:
        """The `data` of an API answer; fails with Prometheus' error otherwise."""
        status, body = http_get(f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}")
        answer = json.loads(body)
        if status != 200 or answer.get("status") != "success":
            raise AssertionError(f"Prometheus {path} {params}: HTTP {status}: {answer}")
        return answer["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Instant vector or scalar result of `expr` now."""
        data = self.api("query", query=expr)
        return data["result"] if data["resultType"] in ("vector", "matrix") else [data["result"]]

    def alerts(self) -> list[dict[str, Any]]:
        """Pending and firing alerts."""
        return self.api("alerts")["alerts"]


def _start_with_config(name: str, binary: str, directory: Path, config: Mapping[str, Any], port: int,
                       *flags: str) -> Process:
    """Start one of the Prometheus binaries on `port` with `config` written next to its data."""
    config_file = directory / f"{name}.yml"
    config_file.write_text(yaml.safe_dump(dict(config)), encoding="utf-8")
    process = start(name, [
        binary, f"--config.file={config_file}", f"--web.listen-address=127.0.0.1:{port}",
        f"--web.external-url=http://127.0.0.1:{port}", *flags,
    ], directory)
    wait_until_ready(process, f"http://127.0.0.1:{port}/-/ready")
    return process


def start_prometheus(directory: Path, config: Mapping[str, Any], port: int) -> Prometheus:
    """Prometheus with exemplar storage, as the compose stack runs it."""
    process = _start_with_config("prometheus", "prometheus", directory, config, port,
                                 f"--storage.tsdb.path={directory / 'data'}", "--enable-feature=exemplar-storage")
    url = f"http://127.0.0.1:{port}"
    return Prometheus(process, url)


# --- Alertmanager and a webhook receiver -------------------------------------------------------------

@dataclass
class Webhook:
    """Notifications Alertmanager posted to the test's own receiver, in arrival order."""

    url: str
    notifications: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def received(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.notifications)

    def alerts(self, alertname: str, status: str) -> list[dict[str, Any]]:
        """Every alert named `alertname` delivered with `status` (firing or resolved)."""
        return [alert for notification in self.received() for alert in notification["alerts"]
                if alert["labels"].get("alertname") == alertname and alert["status"] == status]


@contextmanager
def webhook_receiver() -> Iterator[Webhook]:
    """An HTTP server that records every JSON body posted to it."""
    webhook = Webhook("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with webhook.lock:
                webhook.notifications.append(json.loads(body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    webhook.url = f"http://127.0.0.1:{server.server_address[1]}/alerts"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield webhook
    finally:
        server.shutdown()
        server.server_close()


def start_alertmanager(directory: Path, config: Mapping[str, Any], port: int) -> Process:
    """Alertmanager alone (no cluster), with `config`."""
    return _start_with_config("alertmanager", "prometheus-alertmanager", directory, config, port,
                              f"--storage.path={directory / 'am-data'}", "--cluster.listen-address=")
