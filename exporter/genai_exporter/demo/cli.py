"""`genai-exporter demo`: the demo agent workload sent over OTLP/HTTP to any collector or exporter.

The docker-compose stack runs it against the OpenTelemetry Collector, which fans the traces out to
Tempo and genai-exporter and the run logs to Loki; pointed straight at `genai-exporter serve` it
needs no collector at all (leave out `--logs`: the exporter receives traces only).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from urllib.parse import urlsplit

from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from genai_exporter.demo.scenarios import SCENARIO_DESCRIPTIONS, SCENARIOS, ScenarioSchedule, ScenarioSwitch
from genai_exporter.demo.workload import DEFAULT_RATE, DemoWorkload

LOGGER = logging.getLogger(__name__)
EXIT_OK = 0
EXIT_USAGE = 2
# OTLP/HTTP signal paths, appended to the base endpoint as OTEL_EXPORTER_OTLP_ENDPOINT prescribes.
TRACES_PATH = "/v1/traces"
LOGS_PATH = "/v1/logs"
# How long shutdown waits for the last batches to reach the endpoint.
FLUSH_TIMEOUT_MILLIS = 10_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of `genai-exporter demo`, added to its subcommand parser."""
    scenarios = "; ".join(f"{name}: {text}" for name, text in SCENARIO_DESCRIPTIONS.items())
    parser.add_argument("--otlp-endpoint", dest="otlp_endpoint", required=True,
                        help="base OTLP/HTTP URL, e.g. http://localhost:4318 (traces go to "
                             f"<URL>{TRACES_PATH}, logs to <URL>{LOGS_PATH})")
    parser.add_argument("--rate", type=float, default=DEFAULT_RATE,
                        help="agent runs per second (default %(default)s)")
    parser.add_argument("--scenario", action="append", default=[], choices=SCENARIOS, metavar="NAME",
                        help=f"fault scenario to switch on (repeatable): {scenarios}")
    parser.add_argument("--schedule", default=None,
                        help="switch scenarios on and off by the clock, e.g. 'tool_outage@30s-90s' or "
                             "'cycle:60s/30s' (every scenario in turn)")
    parser.add_argument("--duration", type=float, default=None,
                        help="stop after this many seconds (default: run until SIGTERM or Ctrl-C)")
    parser.add_argument("--seed", type=int, default=None, help="random seed, for a reproducible workload")
    parser.add_argument("--logs", action="store_true",
                        help=f"also send a structured log record per agent run to <URL>{LOGS_PATH} "
                             "(to a collector that forwards logs, e.g. to Loki)")


def _problems(args: argparse.Namespace) -> list[str]:
    problems = []
    endpoint = urlsplit(args.otlp_endpoint)
    if endpoint.scheme not in ("http", "https") or not endpoint.netloc:
        problems.append(f"--otlp-endpoint {args.otlp_endpoint!r}: expected an http:// or https:// URL")
    if not args.rate > 0:
        problems.append(f"--rate {args.rate!r}: must be a positive number of agent runs per second")
    if args.duration is not None and not args.duration > 0:
        problems.append(f"--duration {args.duration!r}: must be a positive number of seconds")
    return problems


def run(args: argparse.Namespace) -> int:
    """Send the workload until SIGTERM, Ctrl-C or `--duration`; exit 2 on bad flags."""
    problems = _problems(args)
    schedule = None
    if args.schedule is not None:
        try:
            schedule = ScenarioSchedule.parse(args.schedule)
        except ValueError as error:
            problems.append(f"--schedule: {error}")
    if problems:
        for problem in problems:
            print(f"genai-exporter demo: {problem}", file=sys.stderr)
        return EXIT_USAGE

    base = args.otlp_endpoint.rstrip("/")
    tracer_provider = TracerProvider(shutdown_on_exit=False)
    tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=base + TRACES_PATH)))
    logger_provider = None
    if args.logs:
        logger_provider = LoggerProvider(shutdown_on_exit=False)
        logger_provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter(endpoint=base + LOGS_PATH)))

    switch = ScenarioSwitch()
    for name in args.scenario:
        switch.enable(name)
    workload = DemoWorkload(tracer_provider, switch, rate=args.rate, seed=args.seed,
                            logger_provider=logger_provider, schedule=schedule)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    LOGGER.info("demo workload: %.3g agent runs/s to %s%s", args.rate, base,
                f", scenarios: {', '.join(switch.active())}" if switch.active() else "")
    workload.start()
    stop.wait(args.duration)
    workload.stop()
    tracer_provider.force_flush(FLUSH_TIMEOUT_MILLIS)
    tracer_provider.shutdown()
    if logger_provider is not None:
        logger_provider.force_flush(FLUSH_TIMEOUT_MILLIS)
        logger_provider.shutdown()
    return EXIT_OK
