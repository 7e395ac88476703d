"""Optuna's median pruner: stop a trial below the median of earlier trials at the same epoch."""
from __future__ import annotations

import optuna

from .base import OptunaPruner


class MedianPruner(OptunaPruner):
    name = "median"
    summary = "Optuna's: below the median of earlier trials at the same epoch (one objective)"
    settings = {"startup_trials": (5, 0, 1000), "warmup_epochs": (0, 0, 1000)}

    def describe(self) -> str:
        return (f"median (after {self.startup_trials} trials, from epoch {self.warmup_epochs + 1}, "
                "below the median of earlier trials at the same epoch)")

    def optuna_pruner(self, epochs: int) -> optuna.pruners.BasePruner:
        return optuna.pruners.MedianPruner(n_startup_trials=self.startup_trials, n_warmup_steps=self.warmup_epochs)
