"""Grid: every combination of a space's choices, in a seeded order (plain choices only)."""
from __future__ import annotations

from typing import TYPE_CHECKING

import optuna

from ...core.errors import BenchError
from .base import Sampler

if TYPE_CHECKING:
    from ..space import SearchSpace


class GridSampler(Sampler):
    name = "grid"
    summary = "every combination of plain choices, in a seeded order"

    def make(self, space: "SearchSpace", seed: int, trials: int) -> optuna.samplers.BaseSampler:
        from ..space import BlockChoice

        grid = {}
        for path, dist in space.vary.items():
            if isinstance(dist, BlockChoice) and any(dist.options.values()):
                raise BenchError(f"{space.source}: the grid sampler needs plain choices; {path} has "
                                 "conditional parameters. Use nsga2, tpe or random.")
            if isinstance(dist, BlockChoice):
                grid[f"{path}.type"] = list(dist.options)
            elif dist.kind != "choices":
                raise BenchError(f"{space.source}: the grid sampler needs choices; {path} is a range.")
            else:
                grid[path] = list(dist.choices)
        return optuna.samplers.GridSampler(grid, seed=seed)
