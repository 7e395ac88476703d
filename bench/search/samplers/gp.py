"""GP: Gaussian-process Bayesian optimisation (Optuna's ``GPSampler``: log expected improvement,
or log expected hypervolume improvement with several objectives) after a random start."""
from __future__ import annotations

from typing import TYPE_CHECKING

import optuna

from .base import Sampler

if TYPE_CHECKING:
    from ..space import SearchSpace


class GPSampler(Sampler):
    name = "gp"
    summary = "Gaussian-process Bayesian optimisation (expected hypervolume improvement) after a random start"
    uses = ("startup",)

    def make(self, space: "SearchSpace", seed: int, trials: int) -> optuna.samplers.BaseSampler:
        # conditional block parameters lie outside the GP's joint space and are drawn at random:
        # expected, so not warned about per trial
        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=self.settings(space.study, trials)["startup"],
                                         warn_independent_sampling=False)
