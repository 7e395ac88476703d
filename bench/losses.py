"""Training losses over logits (B, C, H, W) and label maps (B, H, W)."""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn


def soft_dice_loss(probs: torch.Tensor, onehot: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """1 - mean over channels of the batch-pooled soft Dice; (B, C, H, W) each."""
    dims = (0, 2, 3)
    inter = (probs * onehot).sum(dims)
    total = probs.sum(dims) + onehot.sum(dims)
    return 1 - ((2 * inter + eps) / (total + eps)).mean()


class SegmentationLoss(nn.Module):
    """``ce_dice``, ``bce_dice`` or ``weighted_ce`` (see :class:`bench.recipe.Recipe`).

    Single-channel logits are binary: sigmoid BCE + Dice whatever the name.
    """

    def __init__(self, kind: str, classes: int, class_weights: Optional[torch.Tensor] = None) -> None:
        super().__init__()
        self.kind, self.classes = kind, classes
        self.register_buffer("class_weights", class_weights)

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if logits.shape[1] == 1:
            target = (labels > 0).float()[:, None]
            return F.binary_cross_entropy_with_logits(logits, target) + soft_dice_loss(
                torch.sigmoid(logits), target)
        onehot = F.one_hot(labels, logits.shape[1]).permute(0, 3, 1, 2).float()
        if self.kind == "bce_dice":
            return F.binary_cross_entropy_with_logits(logits, onehot) + soft_dice_loss(
                torch.sigmoid(logits)[:, 1:], onehot[:, 1:])
        if self.kind == "weighted_ce":
            return F.cross_entropy(logits, labels, weight=self.class_weights)
        return F.cross_entropy(logits, labels) + soft_dice_loss(
            logits.softmax(1)[:, 1:], onehot[:, 1:])


def inverse_frequency_weights(labels: torch.Tensor, classes: int) -> torch.Tensor:
    """Class weights proportional to 1 / frequency, normalised to mean 1."""
    counts = torch.bincount(labels.flatten(), minlength=classes).float().clamp(min=1)
    weights = counts.sum() / counts
    return weights / weights.mean()
