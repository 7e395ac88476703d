"""Hypervolume on a tabulated benchmark, comparable across replays: every objective normalised
over the whole table (cost objectives on a log scale, as they span orders of magnitude), turned
into a loss in [0, 1], and measured against one fixed reference point (1.1 in every objective).
A per-run reference point would make runs incomparable (automl/jahs_bench_201, issue 19).

The truth of a design is its mean over the table's seeds; the true front is the exact Pareto
front of every design of the table under those means.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import pandas as pd

from ..core.errors import BenchError
from .pareto import MAXIMIZE, hypervolume, pareto_front

# objective name (as spaces name them) -> the design column of the table holding its truth
TABLE_COLUMNS = {"val_dice": "best_val_dice", "test_dice": "test_dice_fg", "params": "params", "macs": "macs",
                 "flops": "flops", "latency_ms": "latency_norm_ms"}
LOG_SCALED = {"params", "macs", "flops", "latency_ms"}
REFERENCE = 1.1


@dataclass(frozen=True)
class Normalisation:
    """Objectives (name -> direction) with their range over a whole table."""

    objectives: tuple[tuple[str, str], ...]
    low: tuple[float, ...]
    high: tuple[float, ...]

    @classmethod
    def of_designs(cls, designs: pd.DataFrame, objectives: Mapping[str, str]) -> "Normalisation":
        """The ranges of ``objectives`` over ``designs`` (:meth:`BenchmarkTable.design_frame`)."""
        lows, highs = [], []
        for name in objectives:
            values = [_scaled(name, v) for v in truth_column(designs, name)]
            lows.append(min(values))
            highs.append(max(values))
        return cls(tuple(objectives.items()), tuple(lows), tuple(highs))

    def loss(self, values: Mapping[str, float]) -> list[float]:
        """A point's normalised losses: 0 the table's best, 1 its worst, per objective."""
        out = []
        for (name, direction), low, high in zip(self.objectives, self.low, self.high):
            x = (_scaled(name, values[name]) - low) / (high - low) if high > low else 0.0
            out.append(1.0 - x if direction == MAXIMIZE else x)
        return out

    def hypervolume(self, points: Sequence[Mapping[str, float]]) -> float:
        """Hypervolume of ``points`` (objective values) against the fixed reference point."""
        losses = [self.loss(p) for p in points]
        reference = [REFERENCE] * len(self.objectives)
        front = [losses[i] for i in pareto_front(losses, ["minimize"] * len(reference))] if losses else []
        return hypervolume(front, reference) if front else 0.0


def truth_column(designs: pd.DataFrame, name: str) -> list[float]:
    """The values of objective ``name`` for every design of ``designs``.

    Raises:
        BenchError: an objective the table does not hold.
    """
    column = TABLE_COLUMNS.get(name)
    if column is None or column not in designs.columns:
        raise BenchError(f"objective {name!r} is not in the table; it holds {', '.join(TABLE_COLUMNS)}.")
    return [float(v) for v in designs[column]]


def design_values(designs: pd.DataFrame, objectives: Mapping[str, str]) -> dict[int, dict[str, float]]:
    """Design number -> its true value of every objective."""
    columns = {name: truth_column(designs, name) for name in objectives}
    return {int(d): {name: columns[name][i] for name in objectives} for i, d in enumerate(designs.index)}


def true_front(designs: pd.DataFrame, objectives: Mapping[str, str]) -> tuple[list[int], float, Normalisation]:
    """The exact front of the table (design numbers), its hypervolume, and the normalisation."""
    norm = Normalisation.of_designs(designs, objectives)
    values = design_values(designs, objectives)
    ids = list(values)
    losses = [norm.loss(values[d]) for d in ids]
    front = [ids[i] for i in pareto_front(losses, ["minimize"] * len(objectives))]
    return front, norm.hypervolume([values[d] for d in front]), norm


def _scaled(name: str, value: float) -> float:
    if name in LOG_SCALED:
        if value <= 0:
            raise BenchError(f"{name} = {value}: a cost must be positive to be compared on a log scale.")
        return math.log10(value)
    return float(value)
