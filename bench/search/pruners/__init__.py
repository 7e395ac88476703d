"""Pruners: strategies that stop hopeless trials after an epoch of their first seed.

A space chooses ``study.pruner`` (``--pruner NAME`` gives one with its default settings)::

    study: {pruner: mo_asha}                                  # eta 3, first rung after epoch 1
    study: {pruner: {type: mo_asha, eta: 3, min_epochs: 1, min_trials: 3}}
    study: {pruner: {type: median, startup_trials: 5, warmup_epochs: 1}}   # one objective only

``bench list pruners`` lists them. A new pruner is a subclass of :class:`Pruner` in its own
module and one line in :data:`PRUNERS` (or :func:`register_pruner` from your own code).
"""
from __future__ import annotations

from typing import Any

from ...core.errors import ConfigError, did_you_mean
from .base import EpochView, OptunaPruner, Pruner
from .hyperband import HyperbandPruner
from .median import MedianPruner
from .mo_asha import MoAshaPruner, RungDecision, mo_asha_decision
from .none import NoPruner
from .rungs import rung_epochs
from .successive_halving import SuccessiveHalvingPruner

__all__ = ["PRUNERS", "Pruner", "OptunaPruner", "EpochView", "register_pruner", "parse_pruner", "mo_asha_decision",
           "RungDecision", "rung_epochs"]

PRUNERS: dict[str, type[Pruner]] = {cls.name: cls for cls in (
    NoPruner, MoAshaPruner, MedianPruner, SuccessiveHalvingPruner, HyperbandPruner)}


def register_pruner(cls: type[Pruner]) -> type[Pruner]:
    """Add a pruner under ``cls.name`` (usable as a class decorator); a name taken is refused."""
    if cls.name in PRUNERS and PRUNERS[cls.name] is not cls:
        raise ValueError(f"a pruner named {cls.name!r} is registered already ({PRUNERS[cls.name].__name__})")
    PRUNERS[cls.name] = cls
    return cls


def parse_pruner(raw: Any, objectives: dict[str, str], epochs: int) -> Pruner:
    """A space's ``study.pruner``: a name, or a mapping with ``type`` and settings, checked
    against the study's ``objectives`` and the recipe's ``epochs``.

    Raises:
        ConfigError: an unknown pruner or setting, a bad value, or a pruner the study cannot use.
    """
    if raw is None:
        raw = "none"
    if isinstance(raw, str):
        raw = {"type": raw}
    if not isinstance(raw, dict) or "type" not in raw:
        raise ConfigError("study.pruner", f"expected a pruner name or {{type: NAME, ...}}, got {raw!r}.",
                          hint=f"Pruners: {', '.join(PRUNERS)}.")
    kind = raw["type"]
    if kind not in PRUNERS:
        raise ConfigError("study.pruner.type", f"unknown pruner {kind!r}.",
                          hint=f"{did_you_mean(str(kind), list(PRUNERS))} Pruners: {', '.join(PRUNERS)}.".lstrip())
    pruner = PRUNERS[kind].from_config({k: v for k, v in raw.items() if k != "type"})
    pruner.check(objectives, epochs)
    return pruner
