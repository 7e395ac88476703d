"""Random sampling: every sample independent and uniform over the space (the baseline)."""
from __future__ import annotations

from typing import TYPE_CHECKING

import optuna

from .base import Sampler

if TYPE_CHECKING:
    from ..space import SearchSpace


class RandomSampler(Sampler):
    name = "random"
    summary = "independent uniform samples (the baseline a search must beat)"

    def make(self, space: "SearchSpace", seed: int, trials: int) -> optuna.samplers.BaseSampler:
        return optuna.samplers.RandomSampler(seed=seed)
