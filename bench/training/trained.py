"""A network trained over seeds on one split, with its cost: what ``bench train`` and ``bench
compare`` produce, and what their tables and MLflow runs are made from."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from typing import TYPE_CHECKING

from ..core.stats import Estimate, estimate, mean_over_runs
from .runs import SeedRun

if TYPE_CHECKING:  # types only: tables read a trained network without loading the builders
    from ..arch.config import Architecture
    from ..arch.profile import CostProfile


@dataclass
class TrainedNetwork:
    """``runs``: one :class:`SeedRun` per seed (each with its trained model); ``out_dirs``: the
    folder each run's files went to; ``latency``: the deploy form's timing, once measured
    (:meth:`bench.arch.latency.Latency.to_dict`, with ``ratio`` when timed against a reference)."""

    name: str
    arch: "Architecture"
    cost: "CostProfile"
    runs: list[SeedRun]
    out_dirs: list[Path] = field(default_factory=list)
    latency: Optional[dict[str, Any]] = None

    @property
    def seeds(self) -> list[int]:
        return [run.seed for run in self.runs]

    @property
    def first(self) -> SeedRun:
        return self.runs[0]

    def estimates(self) -> dict[str, Estimate]:
        """Every test metric, the best validation Dice (foreground and all classes) and the
        training time, over the seeds."""
        flat = [{**run.test, "best_val_dice": run.metrics["val_dice"], "best_val_dice_all": run.metrics["val_dice_all"],
                 "train_seconds": run.metrics["train_seconds"]} for run in self.runs]
        return {name: estimate([f[name] for f in flat]) for name in flat[0]}

    def scored(self, compute: Callable[[dict[str, float]], float]) -> Estimate:
        """An objective known after training (``compute`` from :meth:`SeedRun.scores`), over the seeds."""
        return estimate([float(compute(run.scores())) for run in self.runs])

    def per_image(self) -> list[float]:
        """Per-image test foreground Dice, averaged over the seeds (split order)."""
        return mean_over_runs(self.seed_scores())

    def seed_scores(self) -> list[list[float]]:
        """(runs, images) per-image test foreground Dice of each seed, for paired comparisons."""
        return [run.test_dice_fg_per_image for run in self.runs]
