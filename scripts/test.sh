#!/usr/bin/env bash
# The test suite: installs the venv and the real Prometheus/Alertmanager/docker-compose binaries,
# lints, then runs every test. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh --with-binaries
.venv/bin/ruff check .
.venv/bin/python -m pytest "$@"
