#!/usr/bin/env bash
# The test suite: installs the venv (with the data path compiled, genai_exporter/extensions.py) and
# the real Prometheus/Alertmanager/docker-compose binaries, lints, runs every test, then runs the
# tests of the data path again from its Python sources. Extra arguments go to the first pytest run.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh --with-binaries
.venv/bin/ruff check .
.venv/bin/python -m pytest "$@"
GENAI_EXPORTER_NO_EXTENSIONS=1 .venv/bin/python -m pytest -q -m data_path
