"""Rungs of successive halving: the epochs at which a trial is ranked."""
from __future__ import annotations

from ...core.errors import ConfigError


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
