"""Prometheus alerting and recording rules of genai-exporter, generated from the metric catalogue.

`alerts.rules` builds the rule groups and writes `alerts/genai.rules.yml` (`python -m alerts`);
`alerts.promql` extracts the metric names an expression reads, for the rule lint.
"""
