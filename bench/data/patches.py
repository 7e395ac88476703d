"""Random training patches from images kept at native size, with foreground oversampling as
nnU-Net does it: a share of the patches is centred on a random foreground pixel, so that thin or
rare structures (vessels, nuclei) are seen often enough."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from .dataset import SegmentationData, as_float
from .images import IGNORE


def random_patches(data: SegmentationData, rows: Sequence[int], patch: int, oversample: float,
                   g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """One ``patch`` x ``patch`` crop of each sample ``rows``: float images (B, C, P, P) in
    [0, 1] and int64 labels (B, P, P). Images smaller than the patch are padded with zeros,
    their labels with IGNORE (left out of the loss)."""
    images, labels = [], []
    for row in rows:
        image, label = _padded(data.images[row], data.labels[row], patch)
        top, left = _corner(label, patch, oversample, g)
        images.append(image[:, top:top + patch, left:left + patch])
        labels.append(label[top:top + patch, left:left + patch])
    return as_float(torch.stack(images)), torch.stack(labels).long()


def _padded(image: torch.Tensor, label: torch.Tensor, patch: int) -> tuple[torch.Tensor, torch.Tensor]:
    h, w = label.shape
    if h >= patch and w >= patch:
        return image, label
    pad = (0, max(0, patch - w), 0, max(0, patch - h))
    return F.pad(image, pad), F.pad(label, pad, value=IGNORE)


def _corner(label: torch.Tensor, patch: int, oversample: float, g: torch.Generator) -> tuple[int, int]:
    h, w = label.shape
    if float(torch.rand(1, generator=g)) < oversample:
        foreground = torch.nonzero((label > 0) & (label != IGNORE))
        if len(foreground):
            y, x = foreground[int(torch.randint(len(foreground), (1,), generator=g))].tolist()
            return min(max(0, y - patch // 2), h - patch), min(max(0, x - patch // 2), w - patch)
    return int(torch.randint(h - patch + 1, (1,), generator=g)), int(torch.randint(w - patch + 1, (1,), generator=g))
