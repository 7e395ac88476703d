"""Training a design over seeds: the one loop that ``bench train``, ``bench compare`` and sweeps
share. Run ``k`` uses seed ``recipe.seed + k`` (initial weights, batch order and augmentation
change; the split does not), keeps its best-validation weights, and is scored on the validation
and test splits. A listener may stop the first run after any epoch (a pruner) by raising
:class:`TrainingStopped`: that run is kept with its figures so far and no later seed trains.
"""
from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, NamedTuple, Optional

import torch
from torch import nn

from ..arch.assemble import build_model
from ..arch.config import Architecture
from ..data.dataset import SegmentationData
from .loop import Progress, evaluate, train_model
from .recipe import Recipe
from .runs import SeedRun

__all__ = ["SeedRun", "Splits", "TrainingStopped", "train_seed", "train_seeds"]


class TrainingStopped(Exception):
    """Raised by a progress callback to stop training after ``epoch`` (a pruner's decision)."""

    def __init__(self, epoch: int, val_dice: float, reason: str) -> None:
        super().__init__(reason)
        self.epoch, self.val_dice, self.reason = epoch, val_dice, reason


class Splits(NamedTuple):
    """The train, validation and test parts of one split of a dataset."""

    train: SegmentationData
    val: SegmentationData
    test: SegmentationData


def train_seed(arch: Architecture, model: nn.Module, data: Splits, recipe: Recipe,
               progress: Optional[Progress] = None, checkpoint: Optional[Path] = None,
               device: torch.device = torch.device("cpu")) -> SeedRun:
    """Train ``model`` (built from ``arch``) with ``recipe`` (its seed included) on ``device``,
    keep the best-validation weights, and score them on the validation and test splits."""
    classes = arch.config["classes"]
    history: list[dict[str, Any]] = []

    def watched(event: str, done: int, total: int, values: dict) -> None:
        if event == "epoch":
            history.append(values)
        if progress is not None:
            progress(event, done, total, values)

    try:
        result = train_model(model, data.train, data.val, recipe, classes, watched, checkpoint=checkpoint,
                             device=device)
    except TrainingStopped as stop:
        if checkpoint is not None:
            checkpoint.unlink(missing_ok=True)
        return SeedRun(recipe.seed, history, {"val_dice": stop.val_dice, "epochs_trained": stop.epoch},
                       device=str(device), stopped=stop.reason, model=model)
    test = evaluate(model, data.test, classes)
    summary = test.summary()
    metrics = {"val_dice": result.best_val_dice, "val_dice_all": result.best_val_dice_all,
               "test_dice": summary["dice_mean"], "test_dice_fg": summary["dice_mean_fg"],
               "test_iou": summary["iou_mean"], "test_hd95_fg": summary["hd95_mean_fg"],
               "best_epoch": result.best_epoch, "train_seconds": result.seconds}
    return SeedRun(recipe.seed, result.history, metrics, evaluate(model, data.val, classes).summary(), summary,
                   [float(v) for v in test.per_image_mean_fg_paired("dice")], test.images_without_foreground(),
                   str(device), model=model)


def train_seeds(arch: Architecture, data: Splits, recipe: Recipe, repeats: int,
                device: torch.device = torch.device("cpu"),
                progress: Callable[[int, int], AbstractContextManager[Optional[Progress]]] =
                lambda run, seed: nullcontext(),
                checkpoint_dir: Optional[Path] = None, first_model: Optional[nn.Module] = None) -> list[SeedRun]:
    """``repeats`` runs of :func:`train_seed` with seeds ``recipe.seed``, ``recipe.seed + 1``, ...

    ``progress(run, seed)`` gives a context manager yielding that run's epoch callback (or None).
    ``checkpoint_dir``: where each run keeps its state after every epoch
    (``<config hash>-seed<seed>.pt``), so that an interrupted run trains on from there.
    ``first_model``: the first seed's network, when the caller built it already (with that seed).
    A run stopped by :class:`TrainingStopped` ends the loop: it is the last one returned.
    """
    runs: list[SeedRun] = []
    for k in range(repeats):
        seed = recipe.seed + k
        model = first_model if k == 0 and first_model is not None else build_model(arch, seed=seed)
        checkpoint = checkpoint_dir / f"{arch.hash[:16]}-seed{seed}.pt" if checkpoint_dir is not None else None
        with progress(k, seed) as report:
            runs.append(train_seed(arch, model, data, replace(recipe, seed=seed), report, checkpoint, device))
        if not runs[-1].complete:
            break
    return runs
