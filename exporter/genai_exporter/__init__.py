"""genai-exporter: Prometheus cost and reliability metrics from OpenTelemetry GenAI spans."""

__version__ = "0.1.0"
