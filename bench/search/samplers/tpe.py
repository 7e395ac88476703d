"""TPE: a tree-structured Parzen estimator after a random start (one objective or several)."""
from __future__ import annotations

from typing import TYPE_CHECKING

import optuna

from .base import Sampler

if TYPE_CHECKING:
    from ..space import SearchSpace


class TPESampler(Sampler):
    name = "tpe"
    summary = "tree-structured Parzen estimator after a random start"
    uses = ("startup",)

    def make(self, space: "SearchSpace", seed: int, trials: int) -> optuna.samplers.BaseSampler:
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=self.settings(space.study, trials)["startup"])
