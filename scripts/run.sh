#!/usr/bin/env bash
# The main job: the exporter with its built-in demo agent workload, no other service needed.
# Metrics on http://localhost:9464/metrics, OTLP/HTTP on :4318. Extra flags are passed on.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
exec .venv/bin/genai-exporter serve --demo "$@"
