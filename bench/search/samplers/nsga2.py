"""NSGA-II: generations of samples, selected by non-dominated sorting (several objectives)."""
from __future__ import annotations

from typing import TYPE_CHECKING

import optuna

from .base import Sampler

if TYPE_CHECKING:
    from ..space import SearchSpace


class NSGA2Sampler(Sampler):
    name = "nsga2"
    summary = "genetic, generations selected by non-dominated sorting"
    uses = ("population",)

    def make(self, space: "SearchSpace", seed: int, trials: int) -> optuna.samplers.BaseSampler:
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=self.settings(space.study, trials)["population"])
