"""Rungs of successive halving: the epochs at which a trial is ranked."""
from __future__ import annotations

from typing import Any

from ...core.errors import ConfigError
from .base import Pruner


def rung_epochs(min_epochs: int, eta: int, epochs: int) -> list[int]:
    """Epochs ``min_epochs * eta^k`` below ``epochs``: ``rung_epochs(1, 3, 9) == [1, 3]``."""
    rungs, epoch = [], min_epochs
    while epoch < epochs:
        rungs.append(epoch)
        epoch *= eta
    return rungs


def check_rungs(min_epochs: int, eta: int, epochs: int) -> None:
    """Refuse rungs that could never stop a trial: the first one not below the recipe's epochs."""
    if not rung_epochs(min_epochs, eta, epochs):
        raise ConfigError("study.pruner.min_epochs", f"the first rung (epoch {min_epochs}) is not below "
                          f"recipe.epochs {epochs}, so the pruner could never stop a trial.",
                          hint="Lower min_epochs, train for more epochs, or use pruner: none.")


class RungPruner(Pruner):
    """A pruner that ranks trials at rungs (successive halving): the top ``1/eta`` go on, rungs
    from epoch ``min_epochs``, a rung decides once ``min_trials`` trials (default ``eta``) reached it."""

    settings = {"eta": (3, 2, 1000), "min_epochs": (1, 1, 1000), "min_trials": (3, 1, 1000)}

    def __init__(self, **values: Any) -> None:
        super().__init__(**{"min_trials": values.get("eta", 3), **values})

    def check(self, objectives: dict[str, str], epochs: int) -> None:
        super().check(objectives, epochs)
        check_rungs(self.min_epochs, self.eta, epochs)

    def describe(self) -> str:
        return f"{self.name} (eta {self.eta}, rungs from epoch {self.min_epochs}, a rung decides from {self.min_trials} trials)"
