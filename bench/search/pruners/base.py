"""What a pruner is: its settings with their checks, one line that says what it does, the Optuna
pruner the study is created with, and what a trial asks it after every epoch."""
from __future__ import annotations

from typing import Any, ClassVar, Optional, Protocol, Sequence

import optuna

from ...core.errors import ConfigError
from ..records import TrialRecord


class EpochView(Protocol):
    """What a pruner sees of the trial that just finished an epoch (the sweep's trial provides it)."""

    record: TrialRecord  # the trial so far: its values known before training, its rung values
    objectives: dict[str, str]  # the study's objectives and directions
    epochs: int  # the recipe's epochs

    def report(self, value: float, epoch: int) -> bool:
        """Tell Optuna the trial's value at ``epoch``; whether Optuna's pruner would stop it."""

    def save(self) -> None:
        """Store the record now (other workers read rung values from it)."""

    def others(self) -> Sequence[TrialRecord]:
        """Every other trial of the study, as stored now."""


class Pruner:
    """A strategy that stops hopeless trials after an epoch of their first seed.

    Subclasses name themselves (``name``), say in one line what they do (``summary``), declare
    their settings with defaults and bounds (``settings``), and decide in :meth:`after_epoch`;
    ``single_objective`` pruners are refused for multi-objective studies. Register one with
    :func:`bench.search.pruners.register_pruner`.
    """

    name: ClassVar[str]
    summary: ClassVar[str]
    settings: ClassVar[dict[str, tuple[int, int, int]]] = {}  # setting -> (default, lowest, highest)
    single_objective: ClassVar[bool] = False

    def __init__(self, **values: int) -> None:
        self.values = {key: values.get(key, default) for key, (default, _, _) in self.settings.items()}

    def __getattr__(self, key: str) -> Any:
        values = self.__dict__.get("values", {})
        if key in values:
            return values[key]
        raise AttributeError(f"{type(self).__name__} has no setting {key!r}")

    @classmethod
    def from_config(cls, raw: dict[str, Any]) -> "Pruner":
        """The pruner with the settings of ``raw`` (a space's ``study.pruner`` less ``type``).

        Raises:
            ConfigError: a setting it does not have, or a value out of its bounds.
        """
        for key, value in raw.items():
            if key not in cls.settings:
                raise ConfigError(f"study.pruner.{key}", f"not a setting of the {cls.name} pruner.",
                                  hint=f"Its settings: {', '.join(cls.settings) or 'none'}.")
            _, low, high = cls.settings[key]
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise ConfigError(f"study.pruner.{key}", f"must be a whole number from {low} to {high:,}, got {value!r}.")
        return cls(**raw)

    @property
    def active(self) -> bool:
        return True

    def check(self, objectives: dict[str, str], epochs: int) -> None:
        """Refuse a study this pruner cannot serve (raises :class:`ConfigError`)."""
        if self.single_objective and len(objectives) > 1:
            raise ConfigError("study.pruner.type", f"Optuna's {self.name} pruner works on one objective; this study "
                              f"has {len(objectives)} ({', '.join(objectives)}).",
                              hint="Use mo_asha, which ranks by non-dominated sorting, or keep one objective.")

    def describe(self) -> str:
        """The pruner and its settings, in words."""
        return self.name

    def optuna_pruner(self, epochs: int) -> optuna.pruners.BasePruner:
        """The pruner the Optuna study is created with (bench's own pruners decide in
        :meth:`after_epoch` and give Optuna none)."""
        return optuna.pruners.NopPruner()

    def after_epoch(self, trial: EpochView, epoch: int, val_dice: float) -> Optional[str]:
        """After ``epoch`` of the first seed (best validation Dice so far ``val_dice``): why the
        trial stops, or None to go on."""
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.name, **self.values}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Pruner) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v}' for k, v in self.values.items())})"


class OptunaPruner(Pruner):
    """One of Optuna's pruners, through ``Trial.report`` and ``Trial.should_prune``."""

    single_objective = True

    def after_epoch(self, trial: EpochView, epoch: int, val_dice: float) -> Optional[str]:
        if trial.report(val_dice, epoch):
            return f"stopped after epoch {epoch} by Optuna's {self.name} pruner (best validation Dice so far {val_dice:.4f})"
        return None
