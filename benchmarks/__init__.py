"""Benchmarks of the harness and of the latency protocol, run on demand (not by the test suite):
``python -m benchmarks.NAME`` from the repository root; results go to ``reports/benchmarks/``."""
