"""One training run of a design with one seed, as records keep it: plain values, light to import
(trial records, reports and MLflow tracking read it without loading the training loop)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional, Sequence

if TYPE_CHECKING:
    from torch import nn


@dataclass
class SeedRun:
    """One training run of a design with one seed.

    ``metrics``: the selection and test figures a sweep records (``val_dice``, ``val_dice_all``,
    ``test_dice``, ``test_dice_fg``, ``test_iou``, ``test_hd95_fg``, ``best_epoch``,
    ``train_seconds``; a stopped run has ``val_dice`` and ``epochs_trained`` only). ``val`` and
    ``test``: every metric on those splits (:meth:`bench.training.metrics.SegmentationMetrics.summary`).
    ``test_dice_fg_per_image``: per-image foreground Dice on the test split (split order), for
    paired comparisons. ``fold``: the fold (from 0) it trained on, in a cross-validated study.
    ``model`` (the trained network) is not stored.
    """

    seed: int
    history: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    val: dict[str, float] = field(default_factory=dict)
    test: dict[str, float] = field(default_factory=dict)
    test_dice_fg_per_image: list[float] = field(default_factory=list)
    test_images_without_foreground: int = 0
    device: Optional[str] = None
    stopped: Optional[str] = None  # why a listener stopped it (a pruner), if one did
    fold: Optional[int] = None
    model: Optional["nn.Module"] = field(default=None, repr=False, compare=False)

    @property
    def complete(self) -> bool:
        return self.stopped is None

    @property
    def label(self) -> str:
        """``seed_0``, or ``fold_2/seed_0`` in a cross-validated study: its folder and metric suffix."""
        return f"seed_{self.seed}" if self.fold is None else f"fold_{self.fold + 1}/seed_{self.seed}"

    def scores(self) -> dict[str, float]:
        """What an objective known after training computes from: ``metrics``, and every
        validation metric as ``val_<name>`` (``val_hd95_mean_fg``, ``val_iou_mean``, ...)."""
        return {**{f"val_{k}": v for k, v in self.val.items()}, **self.metrics}

    def to_dict(self) -> dict[str, Any]:
        """JSON-plain, without the model (what a trial record stores)."""
        plain = {"seed": self.seed, "history": self.history, "metrics": self.metrics, "val": self.val,
                 "test": self.test, "test_dice_fg_per_image": self.test_dice_fg_per_image,
                 "test_images_without_foreground": self.test_images_without_foreground}
        plain.update({k: v for k, v in (("device", self.device), ("stopped", self.stopped), ("fold", self.fold))
                      if v is not None})
        return plain

    @classmethod
    def from_dict(cls, plain: dict[str, Any]) -> "SeedRun":
        """From :meth:`to_dict` (or a record stored before ``val``/``test`` existed)."""
        known = {"seed", "history", "metrics", "val", "test", "test_dice_fg_per_image",
                 "test_images_without_foreground", "device", "stopped", "fold"}
        return cls(**{k: v for k, v in plain.items() if k in known})


def pooled_scores(runs: Sequence[SeedRun]) -> list[list[float]]:
    """(seeds, images) per-image test foreground Dice of each seed, for paired comparisons; over k
    folds, every image once, scored by the fold that held it out (folds in order, then split order)."""
    folds: dict[Optional[int], list[SeedRun]] = {}
    for run in runs:
        folds.setdefault(run.fold, []).append(run)
    seeds = min(len(fold) for fold in folds.values())
    return [[v for fold in folds.values() for v in fold[k].test_dice_fg_per_image] for k in range(seeds)]
