"""genai-exporter: Prometheus cost and reliability metrics from OpenTelemetry GenAI spans."""

import os
from pathlib import Path

from genai_exporter.extensions import prefer_current_sources

__version__ = "0.1.0"

# Before any module of the data path is imported: a compiled one runs only if built from its
# current source (genai_exporter/extensions.py).
prefer_current_sources(Path(__file__).resolve().parent, os.environ)
