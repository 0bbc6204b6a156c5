"""Benchmarks of the exporter's data path, run by hand (`python -m bench --help`), never by pytest.

Each benchmark prints the figure it measures, a baseline measured in the same run on the same
machine, and the ratio against the goal of the performance issue. See bench/README.md.
"""
