"""Command line: `genai-exporter serve | check-config | demo | prices import-litellm`.

Flags follow the Prometheus exporter conventions (`--web.listen-address`, `--config.file`,
`--web.config.file`). A broken config, web config or price file exits with code 2 and every problem
named, before anything listens. SIGTERM (or SIGINT) drains: requests already read are aggregated and
answered before the process exits with code 0.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path

from prometheus_client import PROCESS_COLLECTOR, CollectorRegistry
from prometheus_client.process_collector import ProcessCollector

from genai_exporter import __version__
from genai_exporter.config import ConfigError, load_config
from genai_exporter.expose import GenAICollector, metrics_renderer
from genai_exporter.extensions import BUILD_COMPILED, NO_EXTENSIONS_VARIABLE, data_path_build
from genai_exporter.pipeline import Pipeline
from genai_exporter.pricing import load_price_table
from genai_exporter.webconfig import WebConfigFile, load_web_settings

EXIT_OK = 0
EXIT_USAGE = 2
DEFAULT_WEB_ADDRESS = ":9464"
DEFAULT_OTLP_ADDRESS = ":4318"
DEMO_DEFAULT_RATE = 2.0
LOGGER = logging.getLogger("genai_exporter")


class _Metrics:
    """Adapter giving the web server the `render(accept)` it expects."""

    def __init__(self, collector: GenAICollector, others: CollectorRegistry) -> None:
        self.render = metrics_renderer(collector, others)


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper()),
        format='ts=%(asctime)s level=%(levelname)s logger=%(name)s msg="%(message)s"',
        stream=sys.stderr,
    )


def _load(config_file: Path | None) -> Pipeline:
    config = load_config(config_file)
    prices = load_price_table(config.price_files)
    return Pipeline(config, prices)


def _serve(args: argparse.Namespace) -> int:
    from genai_exporter.server import parse_listen_address, settle_garbage_collector, start_servers

    config_file = args.config_file
    if config_file is None and args.demo:
        from genai_exporter.demo.workload import DEMO_CONFIG_FILE

        config_file = DEMO_CONFIG_FILE
    try:
        pipeline = _load(config_file)
        web_config = WebConfigFile(args.web_config_file) if args.web_config_file is not None else None
        parse_listen_address(args.web_listen_address)
        parse_listen_address(args.otlp_listen_address)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return EXIT_USAGE
    except ValueError as error:
        print(f"invalid listen address: {error}", file=sys.stderr)
        return EXIT_USAGE

    registry = CollectorRegistry()
    if PROCESS_COLLECTOR is not None:
        registry.register(ProcessCollector(registry=None))

    workload = switch = None
    if args.demo:
        from genai_exporter.demo.scenarios import ScenarioSwitch
        from genai_exporter.demo.workload import start_in_process_demo

        switch = ScenarioSwitch()
        for name in args.demo_scenario or ():
            switch.enable(name)
        workload = start_in_process_demo(pipeline, switch, rate=args.demo_rate, schedule=args.demo_schedule)

    settle_garbage_collector()
    servers = start_servers(
        args.web_listen_address, args.otlp_listen_address, pipeline, _Metrics(pipeline.collector, registry),
        pipeline.config.server, ready=lambda: True, scenarios=switch, web_config=web_config,
        ingest_auth=pipeline.config.ingest_auth,
    )
    security = []
    if web_config is not None:
        security.append("TLS" if web_config.tls_enabled else "no TLS")
    if pipeline.config.ingest_auth.enabled:
        security.append("OTLP bearer tokens")
    build = data_path_build()
    LOGGER.info("genai-exporter %s listening: web=:%d otlp=:%d%s%s (data path: %s)", __version__, servers.web_port,
                servers.otlp_port, " (demo workload on)" if args.demo else "",
                f" ({', '.join(security)})" if security else "", build)
    if build != BUILD_COMPILED:
        # Said once at startup, where an operator looks: the same spans then cost far more CPU.
        LOGGER.warning("the data path runs from its Python sources (data path: %s), which take far more CPU time "
                       "per span than the compiled path: reinstall where a C compiler is at hand, with %s unset",
                       build, NO_EXTENSIONS_VARIABLE)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    timeout = pipeline.config.server.shutdown_timeout_seconds
    LOGGER.info("shutting down: finishing the requests in flight (at most %gs)", timeout)
    if workload is not None:
        workload.stop()
    cut = servers.shutdown()
    if cut:
        LOGGER.warning("shut down with %d connection(s) cut at the %gs deadline: senders retry what they "
                       "were not answered", cut, timeout)
    else:
        LOGGER.info("shut down: every request in flight was answered")
    return EXIT_OK


def _check_config(args: argparse.Namespace) -> int:
    if args.path is None and args.web_config_file is None:
        print("genai-exporter check-config: give a config file, --web.config.file, or both", file=sys.stderr)
        return EXIT_USAGE
    reports, errors = [], []
    if args.path is not None:
        try:
            config = load_config(args.path)
            prices = load_price_table(config.price_files)
            reports.append(f"{args.path}: OK ({len(config.dimensions)} dimensions, {len(config.budgets)} budgets, "
                           f"{len(prices)} priced models)")
        except ConfigError as error:
            errors.append(error)
    if args.web_config_file is not None:
        try:
            web = load_web_settings(args.web_config_file).config
            reports.append(f"{args.web_config_file}: OK (TLS {'on' if web.tls else 'off'}, "
                           f"{len(web.basic_auth_users)} basic-auth users)")
        except ConfigError as error:
            errors.append(error)
    for error in errors:
        print(error, file=sys.stderr)
    if errors:
        return EXIT_USAGE
    print("\n".join(reports))
    return EXIT_OK


def _import_litellm(args: argparse.Namespace) -> int:
    from genai_exporter.litellm_import import import_litellm

    try:
        text, report = import_litellm(args.file)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return EXIT_USAGE
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    print(report, file=sys.stderr)
    return EXIT_OK


def _demo(args: argparse.Namespace) -> int:
    from genai_exporter.demo.cli import run

    return run(args)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, exposed so tests and docs can inspect every flag."""
    parser = argparse.ArgumentParser(
        prog="genai-exporter",
        description="Prometheus cost and reliability metrics from OpenTelemetry GenAI spans.",
    )
    parser.add_argument("--version", action="version", version=f"genai-exporter {__version__}")
    parser.add_argument("--log.level", dest="log_level", default="info",
                        choices=["debug", "info", "warning", "error"])
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="receive OTLP/HTTP spans and serve /metrics")
    serve.add_argument("--web.listen-address", dest="web_listen_address", default=DEFAULT_WEB_ADDRESS,
                       help="address for /metrics, /-/healthy and /-/ready (default %(default)s)")
    serve.add_argument("--otlp.listen-address", dest="otlp_listen_address", default=DEFAULT_OTLP_ADDRESS,
                       help="address for OTLP/HTTP POST /v1/traces (default %(default)s)")
    serve.add_argument("--config.file", dest="config_file", type=Path, default=None,
                       help="YAML configuration (dimensions, prices, budgets, limits); with --demo and no "
                            "file, the demo's budgets")
    serve.add_argument("--web.config.file", dest="web_config_file", type=Path, default=None,
                       help="exporter-toolkit web config (TLS, basic auth, rate limit, headers) for both "
                            "listeners; re-read when it changes")
    serve.add_argument("--demo", action="store_true",
                       help="feed the exporter with the built-in demo agent workload")
    serve.add_argument("--demo.rate", dest="demo_rate", type=float, default=DEMO_DEFAULT_RATE,
                       help="demo agent runs per second (default %(default)s)")
    serve.add_argument("--demo.scenario", dest="demo_scenario", action="append",
                       help="demo fault scenario to switch on at start (repeatable)")
    serve.add_argument("--demo.schedule", dest="demo_schedule", default=None,
                       help="turn demo scenarios on and off on a schedule (see README)")
    serve.set_defaults(handler=_serve)

    check = commands.add_parser("check-config", help="validate a configuration file and exit")
    check.add_argument("path", type=Path, nargs="?", default=None)
    check.add_argument("--web.config.file", dest="web_config_file", type=Path, default=None,
                       help="also validate this exporter-toolkit web config (certificates and keys included)")
    check.set_defaults(handler=_check_config)

    demo = commands.add_parser("demo", help="send the demo agent workload over OTLP/HTTP")
    from genai_exporter.demo.cli import add_arguments

    add_arguments(demo)
    demo.set_defaults(handler=_demo)

    prices = commands.add_parser("prices", help="price table tools")
    price_commands = prices.add_subparsers(dest="prices_command", required=True)
    litellm = price_commands.add_parser(
        "import-litellm", help="convert LiteLLM's model_prices_and_context_window.json to our format")
    litellm.add_argument("file", type=Path)
    litellm.add_argument("--output", "-o", type=Path, default=None, help="write here instead of stdout")
    litellm.set_defaults(handler=_import_litellm)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `genai-exporter` console script."""
    args = build_parser().parse_args(argv)
    _setup_logging(args.log_level)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
