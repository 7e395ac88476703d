"""Optuna's asynchronous successive halving: the top 1/eta of a rung go on (one objective)."""
from __future__ import annotations

from typing import Any

import optuna

from .base import OptunaPruner
from .rungs import check_rungs


class SuccessiveHalvingPruner(OptunaPruner):
    name = "successive_halving"
    summary = "Optuna's ASHA: the top 1/eta of each rung go on (one objective)"
    settings = {"eta": (3, 2, 1000), "min_epochs": (1, 1, 1000), "min_trials": (3, 1, 1000)}

    def __init__(self, **values: Any) -> None:
        super().__init__(**{"min_trials": values.get("eta", 3), **values})  # a rung decides from eta trials

    def check(self, objectives: dict[str, str], epochs: int) -> None:
        super().check(objectives, epochs)
        check_rungs(self.min_epochs, self.eta, epochs)

    def describe(self) -> str:
        return f"{self.name} (eta {self.eta}, rungs from epoch {self.min_epochs}, a rung decides from {self.min_trials} trials)"

    def optuna_pruner(self, epochs: int) -> optuna.pruners.BasePruner:
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=self.min_epochs, reduction_factor=self.eta,
                                                      bootstrap_count=self.min_trials - 1)
