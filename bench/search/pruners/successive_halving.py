"""Optuna's asynchronous successive halving: the top 1/eta of a rung go on (one objective)."""
from __future__ import annotations

import optuna

from .base import OptunaPruner
from .rungs import RungPruner


class SuccessiveHalvingPruner(RungPruner, OptunaPruner):
    name = "successive_halving"
    summary = "Optuna's ASHA: the top 1/eta of each rung go on (one objective)"

    def optuna_pruner(self, epochs: int) -> optuna.pruners.BasePruner:
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=self.min_epochs, reduction_factor=self.eta,
                                                      bootstrap_count=self.min_trials - 1)
