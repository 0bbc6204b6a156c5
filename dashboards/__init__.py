"""Grafana dashboards of the bundle, written in Python with grafanalib.

`lib` holds the house style, `queries` the PromQL and TraceQL, one module per dashboard defines
`dashboard`, and `python -m dashboards.build` renders them to `dashboards/generated/<uid>.json`
(plus `docs/dashboards.md` and the Grafana datasource provisioning) deterministically.
"""
