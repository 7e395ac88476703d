"""What a sampler is: a name, one line that says what it does, the budget-dependent settings it
reads from the space's ``study`` section, and the Optuna sampler it makes for a space and seed."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, ClassVar

import optuna

if TYPE_CHECKING:
    from ..space import SearchSpace


class Sampler:
    """A strategy that draws the next sample of a space.

    Subclasses name themselves (``name``), say in one line what they do (``summary``), list the
    ``study`` settings they read (``uses``: ``population``, ``startup``; ``auto`` is resolved
    from the budget by :meth:`settings`), and make the Optuna sampler (:meth:`make`). Register
    one with :func:`bench.search.samplers.register_sampler`.
    """

    name: ClassVar[str]
    summary: ClassVar[str]
    uses: ClassVar[tuple[str, ...]] = ()

    def settings(self, study: dict[str, Any], trials: int) -> dict[str, int]:
        """The settings this sampler reads, ``auto`` resolved from ``trials``: NSGA-II's
        population a third of the budget (4 to 50: at least three generations), TPE's random
        start a quarter of it (3 to 10)."""
        auto = {"population": min(50, max(4, math.ceil(trials / 3))), "startup": min(10, max(3, trials // 4))}
        return {key: auto[key] if study[key] == "auto" else int(study[key]) for key in self.uses}

    def make(self, space: "SearchSpace", seed: int, trials: int) -> optuna.samplers.BaseSampler:
        """The Optuna sampler for ``space``, seeded with ``seed``, for a budget of ``trials``.

        Raises:
            BenchError: a space this sampler cannot draw from.
        """
        raise NotImplementedError
