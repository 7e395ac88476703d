"""Samplers: strategies that draw a sweep's next sample (``study.sampler``, or ``--sampler``).

``bench list samplers`` lists them. A new sampler is a subclass of :class:`Sampler` in its own
module and one line in :data:`SAMPLERS` (or :func:`register_sampler` from your own code). Each
process draws with a seed of its own (:class:`bench.search.study.FreshSeedSampler`).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ...core.errors import ConfigError, did_you_mean
from .base import Sampler
from .gp import GPSampler
from .grid import GridSampler
from .nsga2 import NSGA2Sampler
from .random import RandomSampler
from .tpe import TPESampler

if TYPE_CHECKING:
    from ..space import SearchSpace

__all__ = ["SAMPLERS", "Sampler", "register_sampler", "sampler_named", "sampler_settings"]

SAMPLERS: dict[str, type[Sampler]] = {cls.name: cls for cls in (NSGA2Sampler, TPESampler, GPSampler, RandomSampler,
                                                                 GridSampler)}


def register_sampler(cls: type[Sampler]) -> type[Sampler]:
    """Add a sampler under ``cls.name`` (usable as a class decorator); a name taken is refused."""
    if cls.name in SAMPLERS and SAMPLERS[cls.name] is not cls:
        raise ValueError(f"a sampler named {cls.name!r} is registered already ({SAMPLERS[cls.name].__name__})")
    SAMPLERS[cls.name] = cls
    return cls


def sampler_named(name: object, where: str = "study.sampler") -> Sampler:
    """The registered sampler ``name``.

    Raises:
        ConfigError: no sampler of that name (at ``where``), with the names there are.
    """
    if not isinstance(name, str) or name not in SAMPLERS:
        raise ConfigError(where, f"unknown sampler {name!r}.",
                          hint=f"{did_you_mean(str(name), list(SAMPLERS))} Samplers: {', '.join(SAMPLERS)}.".lstrip())
    return SAMPLERS[name]()


def sampler_settings(space: "SearchSpace", trials: int) -> dict[str, int]:
    """The budget-dependent settings of the space's sampler, ``auto`` resolved from ``trials``."""
    return sampler_named(space.study["sampler"]).settings(space.study, trials)
