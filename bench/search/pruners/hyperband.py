"""Optuna's Hyperband: successive halving in brackets of different aggressiveness (one objective)."""
from __future__ import annotations

import optuna

from .base import OptunaPruner


class HyperbandPruner(OptunaPruner):
    name = "hyperband"
    summary = "Optuna's: successive halving in brackets of different aggressiveness (one objective)"
    settings = {"eta": (3, 2, 1000), "min_epochs": (1, 1, 1000)}

    def describe(self) -> str:
        return f"hyperband (eta {self.eta}, from epoch {self.min_epochs})"

    def optuna_pruner(self, epochs: int) -> optuna.pruners.BasePruner:
        return optuna.pruners.HyperbandPruner(min_resource=self.min_epochs, max_resource=epochs,
                                              reduction_factor=self.eta)
