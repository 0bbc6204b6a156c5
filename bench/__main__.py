"""`python -m bench NAME [flags]`: run one benchmark, or `all` of them with their default flags."""

from __future__ import annotations

import argparse
import sys

from bench import compare, ingest, inprocess, instructions, memory, opcodes, peer, scrape, stages

BENCHMARKS = {"ingest": ingest, "inprocess": inprocess, "peer": peer, "scrape": scrape, "memory": memory}
# Profiles behind the benchmarks: a breakdown, no goal; not part of `all`.
PROFILES = {"stages": stages, "instructions": instructions, "opcodes": opcodes, "compare": compare}


def main(argv: list[str] | None = None) -> int:
    """Run the chosen benchmarks and print a verdict per goal (exit status 0 either way)."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    commands = parser.add_subparsers(dest="benchmark", required=True)
    for name, module in {**BENCHMARKS, **PROFILES}.items():
        module.add_arguments(commands.add_parser(name, help=(module.__doc__ or name).splitlines()[0]))
    commands.add_parser("all", help="every benchmark with its default flags")
    args = parser.parse_args(argv)
    verdicts = []
    if args.benchmark == "all":
        for name, module in BENCHMARKS.items():
            verdicts += module.main(parser.parse_args([name]))
            print()
    else:
        verdicts += {**BENCHMARKS, **PROFILES}[args.benchmark].main(args)
        print()
    for verdict in verdicts:
        print(verdict.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
