"""Training losses over logits (B, C, H, W) and label maps (B, H, W)."""
from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..data.images import IGNORE


def soft_dice_loss(probs: torch.Tensor, onehot: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """1 - mean over channels of the batch-pooled soft Dice; (B, C, H, W) each."""
    dims = (0, 2, 3)
    inter = (probs * onehot).sum(dims)
    total = probs.sum(dims) + onehot.sum(dims)
    return 1 - ((2 * inter + eps) / (total + eps)).mean()


class SegmentationLoss(nn.Module):
    """``ce_dice``, ``bce_dice`` or ``weighted_ce`` (see :class:`bench.training.recipe.Recipe`).

    Single-channel logits are binary: sigmoid BCE + Dice whatever the name.
    """

    def __init__(self, kind: str, classes: int, class_weights: Optional[torch.Tensor] = None) -> None:
        super().__init__()
        self.kind, self.classes = kind, classes
        self.register_buffer("class_weights", class_weights)

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        valid = labels != IGNORE
        if not valid.all():  # outside a field-of-view mask: no term of the loss sees these pixels
            labels = labels.masked_fill(~valid, 0)
        mask = valid[:, None].float()
        if logits.shape[1] == 1:
            target = (labels > 0).float()[:, None]
            return F.binary_cross_entropy_with_logits(logits, target, weight=mask) + soft_dice_loss(
                torch.sigmoid(logits) * mask, target * mask)
        onehot = F.one_hot(labels, logits.shape[1]).permute(0, 3, 1, 2).float() * mask
        if self.kind == "bce_dice":
            return F.binary_cross_entropy_with_logits(logits, onehot, weight=mask.expand_as(onehot)) + soft_dice_loss(
                torch.sigmoid(logits)[:, 1:] * mask, onehot[:, 1:])
        ce = F.cross_entropy(logits, labels.masked_fill(~valid, IGNORE), weight=self.class_weights,
                             ignore_index=IGNORE)
        if self.kind == "weighted_ce":
            return ce
        return ce + soft_dice_loss(logits.softmax(1)[:, 1:] * mask, onehot[:, 1:])


def inverse_frequency_weights(labels: Sequence[torch.Tensor], classes: int) -> torch.Tensor:
    """Class weights proportional to 1 / frequency (ignored pixels not counted), normalised to
    mean 1; ``labels`` (H, W) each."""
    counts = torch.stack([torch.bincount(label.flatten().long(), minlength=256)[:classes] for label in labels]
                         ).sum(0).float().clamp(min=1)
    weights = counts.sum() / counts
    return weights / weights.mean()
