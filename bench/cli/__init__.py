"""The ``bench`` command line, one module per command group; bad input exits with status 2 and a
one-paragraph message. The commands are argument parsing over the run layer (:mod:`bench.run`)."""
from __future__ import annotations

from . import architectures, data, latency, mlflow, sweeps, tables, training  # noqa: F401  (each adds its commands)
from .common import cli
from .mlflow import mlflow_server_command
from .sweeps import report, run
from .training import compare, evaluate, train

__all__ = ["cli", "main", "run", "report", "train", "evaluate", "compare", "mlflow_server_command"]


def main() -> None:
    cli(prog_name="bench")
