"""A network trained over seeds on one split, with its cost: what ``bench train`` and ``bench
compare`` produce, and what their tables and MLflow runs are made from."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Optional

from typing import TYPE_CHECKING

from ..core.stats import Estimate, estimate, mean_over_runs
from .runs import SeedRun, pooled_scores

if TYPE_CHECKING:  # types only: tables read a trained network without loading the builders
    from ..arch.config import Architecture
    from ..arch.profile import CostProfile


@dataclass
class TrainedNetwork:
    """``runs``: one :class:`SeedRun` per seed (each with its trained model); ``out_dirs``: the
    folder each run's files went to; ``latency``: the deploy form's timing, once measured
    (:meth:`bench.arch.latency.Latency.to_dict`, with ``ratio`` when timed against a reference).
    Cross-validated (:func:`cross_validated`): ``folds`` holds the network of each fold, and
    ``runs`` every fold's runs."""

    name: str
    arch: "Architecture"
    cost: "CostProfile"
    runs: list[SeedRun]
    out_dirs: list[Path] = field(default_factory=list)
    latency: Optional[dict[str, Any]] = None
    folds: list["TrainedNetwork"] = field(default_factory=list)

    @property
    def seeds(self) -> list[int]:
        return self.folds[0].seeds if self.folds else [run.seed for run in self.runs]

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
        """(seeds, images) per-image test foreground Dice of each seed, for paired comparisons;
        cross-validated, every image once, scored by the fold that held it out (folds in order)."""
        return pooled_scores(self.runs)

    def images_without_foreground(self) -> int:
        """Test images with no foreground (their Dice is a convention), over every fold."""
        if self.folds:
            return sum(fold.images_without_foreground() for fold in self.folds)
        return self.first.test_images_without_foreground


def cross_validated(folds: list[TrainedNetwork]) -> TrainedNetwork:
    """One network trained on each fold of a k-fold split, as one: figures over every fold and
    seed, per-image scores over every image once (each from the fold that held it out)."""
    first = folds[0]
    return TrainedNetwork(first.name, first.arch, first.cost,
                          [replace(run, fold=k) for k, fold in enumerate(folds) for run in fold.runs],
                          [folder for fold in folds for folder in fold.out_dirs], folds=folds)
