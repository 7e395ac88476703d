"""Segmentation metrics: label maps in, numbers out. Pure functions; conventions below.

Conventions (following nnU-Net and MONAI):

- Every metric is computed per image and per class (background is class 0 and is reported
  too), then averaged over the images where it is defined (**per-image mean**, the default).
  ``pooled`` figures sum true/false positives/negatives over the whole set first.
- Empty masks, for Dice and IoU (as nnU-Net): a class absent from both the ground truth and the
  prediction of an image is undefined there (NaN) and that image is left out of the class's mean;
  absent from the ground truth but predicted gives 0; present but not predicted gives 0.
  MONAI differs in one cell each way: ``ignore_empty=True`` gives NaN whenever the ground truth
  lacks the class, so it skips the "predicted but absent" images that we count as 0;
  ``ignore_empty=False`` gives 1 where both lack it, where we give NaN. Where both define a
  value, ours equals MONAI's ``compute_dice``/``compute_iou`` to float rounding (a test compares
  them on random masks). Precision is undefined without predicted pixels, recall without
  ground-truth pixels.
- HD95: the larger of the two directed 95th percentiles of distances between the boundary
  pixels of prediction and ground truth, in pixels unless ``spacing`` is given; where both
  masks hold the structure it equals MONAI's ``compute_hausdorff_distance(percentile=95)``. A
  structure present on one side only gets the worst case, the image diagonal (in the same
  unit), where MONAI gives NaN (so MONAI's mean skips the images ours counts as worst); absent
  from both, NaN in both.
- Paired comparisons (:meth:`SegmentationMetrics.per_image_mean_fg_paired`) need a score on every
  image, and must count a false positive on an image without the structure against its design:
  there a class absent from both ground truth and prediction scores 1 (MONAI's
  ``ignore_empty=False``), predicted but absent 0.
- Accuracy is the fraction of correctly labelled pixels of each image (all classes at once).
- Ignored pixels (target value 255, outside a field-of-view mask) count in no metric.
- "mean" over classes averages the per-class figures, background included (as the TinyU-Net
  paper's tables); "mean_fg" leaves the background out.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np
import torch
from scipy import ndimage

from ..data.images import IGNORE

PER_CLASS = ("dice", "iou", "precision", "recall", "hd95")


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.maximum(den, 1), np.nan)


def confusion(pred: Sequence[torch.Tensor], target: Sequence[torch.Tensor], classes: int,
              ignore_index: int = IGNORE) -> np.ndarray:
    """(N, classes, 3) true positives, false positives, false negatives per image and class,
    from label maps (H, W) (or a stack (N, H, W)); target pixels equal to ``ignore_index`` are
    left out."""
    out = np.zeros((len(pred), classes, 3), dtype=np.int64)
    for i, (p, t) in enumerate(zip(pred, target)):
        valid = t != ignore_index
        p, t = p[valid], t[valid]
        for c in range(classes):
            pc, tc = p == c, t == c
            out[i, c] = [int((pc & tc).sum()), int((pc & ~tc).sum()), int((~pc & tc).sum())]
    return out


def overlap_scores(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> dict[str, np.ndarray]:
    """Dice, IoU, precision and recall, NaN where undefined (see the module docstring)."""
    return {
        "dice": _ratio(2 * tp, 2 * tp + fp + fn),
        "iou": _ratio(tp, tp + fp + fn),
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, tp + fn),
    }


def _boundary(mask: np.ndarray) -> np.ndarray:
    return mask & ~ndimage.binary_erosion(mask, border_value=0)


def hd95(pred: np.ndarray, target: np.ndarray, spacing: Optional[tuple[float, float]] = None) -> float:
    """95th-percentile Hausdorff distance between two boolean masks (H, W); see conventions."""
    spacing = spacing or (1.0, 1.0)
    if not pred.any() and not target.any():
        return math.nan
    if not pred.any() or not target.any():
        return math.hypot(pred.shape[0] * spacing[0], pred.shape[1] * spacing[1])
    pred_edge, target_edge = _boundary(pred), _boundary(target)
    to_target = ndimage.distance_transform_edt(~target_edge, sampling=spacing)[pred_edge]
    to_pred = ndimage.distance_transform_edt(~pred_edge, sampling=spacing)[target_edge]
    return float(max(np.percentile(to_target, 95), np.percentile(to_pred, 95)))


CONVENTIONS = "per-image mean; empty-in-both excluded; HD95 in pixels"  # recorded with every score


@dataclass
class SegmentationMetrics:
    """Per-image, per-class values (``per_image[name]`` is (N, classes)), plus accuracy (N,)
    and the pooled confusion (classes, 3)."""

    classes: int
    per_image: dict[str, np.ndarray]
    accuracy: np.ndarray
    pooled_confusion: np.ndarray
    conventions: str = field(default=CONVENTIONS)
    target_pixels: Optional[np.ndarray] = None  # (N, classes) ground-truth pixels of each class

    def per_class(self, name: str) -> np.ndarray:
        """(classes,) mean over the images where ``name`` is defined (NaN if nowhere)."""
        values = self.per_image[name]
        with np.errstate(invalid="ignore"):
            counts = (~np.isnan(values)).sum(0)
            sums = np.nansum(values, 0)
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)

    def per_image_mean_fg(self, name: str = "dice") -> np.ndarray:
        """(N,) per-image mean of ``name`` over the foreground classes defined in that image
        (NaN where none is); for two classes, the foreground class's per-image values."""
        values = self.per_image[name][:, 1:] if self.classes > 1 else self.per_image[name]
        with np.errstate(invalid="ignore"):
            counts = (~np.isnan(values)).sum(1)
            sums = np.nansum(values, 1)
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)

    def per_image_mean_fg_paired(self, name: str = "dice") -> np.ndarray:
        """(N,) per-image mean of ``name`` over the foreground classes, a class absent from both
        ground truth and prediction scoring 1 (see the conventions): a value on every image."""
        values = self.per_image[name][:, 1:] if self.classes > 1 else self.per_image[name]
        return np.where(np.isnan(values), 1.0, values).mean(1)

    def images_without_foreground(self) -> int:
        """Images whose ground truth holds no foreground pixel."""
        if self.target_pixels is None:
            return 0
        foreground = self.target_pixels[:, 1:] if self.classes > 1 else self.target_pixels
        return int((foreground.sum(1) == 0).sum())

    def pooled(self) -> dict[str, np.ndarray]:
        tp, fp, fn = (self.pooled_confusion[:, i] for i in range(3))
        return overlap_scores(tp, fp, fn)

    def summary(self) -> dict[str, float]:
        """Flat record: ``dice_c1``, ``dice_mean``, ``dice_mean_fg``, ..., ``accuracy``,
        ``dice_pooled_mean``."""
        record: dict[str, float] = {}
        for name in PER_CLASS:
            values = self.per_class(name)
            for c, v in enumerate(values):
                record[f"{name}_c{c}"] = float(v)
            record[f"{name}_mean"] = _nanmean(values)
            record[f"{name}_mean_fg"] = _nanmean(values[1:]) if self.classes > 1 else float(values[0])
        for name, values in self.pooled().items():
            record[f"{name}_pooled_mean"] = _nanmean(values)
        record["accuracy"] = _nanmean(self.accuracy)
        return record


def _nanmean(values: np.ndarray) -> float:
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else math.nan


def segmentation_metrics(pred: Sequence[torch.Tensor], target: Sequence[torch.Tensor], classes: int,
                         spacing: Optional[tuple[float, float]] = None, distances: bool = True,
                         ignore_index: int = IGNORE) -> SegmentationMetrics:
    """All metrics of label maps ``pred`` and ``target``, (H, W) each (images may differ in
    size; a stack (N, H, W) works too), with ``classes`` classes. Target pixels equal to
    ``ignore_index`` (outside a field-of-view mask) count nowhere: not in the overlap figures,
    not as boundary pixels for HD95, not in accuracy.

    ``distances=False`` skips HD95 (left NaN), the one costly metric.
    """
    counts = confusion(pred, target, classes, ignore_index)
    per_image = overlap_scores(counts[..., 0], counts[..., 1], counts[..., 2])
    hd, accuracy = np.full((len(pred), classes), math.nan), np.zeros(len(pred))
    for i, (p, t) in enumerate(zip(pred, target)):
        p, t = p.numpy(), t.numpy()
        valid = t != ignore_index
        accuracy[i] = (p == t)[valid].mean() if valid.any() else math.nan
        if distances:
            hd[i] = [hd95((p == c) & valid, (t == c) & valid, spacing) for c in range(classes)]
    per_image["hd95"] = hd
    return SegmentationMetrics(classes, per_image, accuracy, counts.sum(0),
                               target_pixels=counts[..., 0] + counts[..., 2])
