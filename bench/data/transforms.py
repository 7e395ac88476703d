"""Augmentations applied to image and label maps together, per sample, from a seeded generator.

The set (a stated part of every recipe with ``augment: true``): horizontal and vertical flips
(p = 0.5 each), a rotation by a multiple of 90 degrees (of 180 degrees where the batch is not
square: a quarter turn would swap its height and width), a small affine (rotation +-15 degrees,
scale 0.9-1.1, shift +-5 %; labels resampled nearest, images bilinear, borders reflected) with
p = 0.5, rigid in pixels whatever the aspect, and intensity jitter (brightness +-0.1, contrast
x0.9-1.1).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

DESCRIPTION = ("flips, rot90, affine (+-15 deg, x0.9-1.1, +-5 %, p=0.5), "
               "brightness +-0.1, contrast x0.9-1.1")


def augment(images: torch.Tensor, labels: torch.Tensor, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Augmented copies of images (B, C, H, W) and labels (B, H, W), of any aspect."""
    b, (h, w) = images.shape[0], images.shape[-2:]
    images, labels = images.clone(), labels.clone()
    flips = torch.rand(b, 2, generator=g) < 0.5
    turns = torch.randint(0, 4, (b,), generator=g)
    for i in range(b):
        dims = [d for d, flip in zip((-1, -2), flips[i]) if flip]
        if dims:
            images[i], labels[i] = images[i].flip(dims), labels[i].flip(dims)
        if h != w:
            turns[i] = turns[i] // 2 * 2  # the same draw, kept to half turns
        if turns[i]:
            images[i] = images[i].rot90(int(turns[i]), (-2, -1))
            labels[i] = labels[i].rot90(int(turns[i]), (-2, -1))
    apply = torch.rand(b, generator=g) < 0.5
    angle = (torch.rand(b, generator=g) * 2 - 1) * math.radians(15)
    scale = 0.9 + 0.2 * torch.rand(b, generator=g)
    shift = (torch.rand(b, 2, generator=g) * 2 - 1) * 0.1  # grid units: 0.1 = 5 % of the side
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    # affine_grid works in coordinates normalised per axis: a rotation in pixels becomes
    # diag(2/W, 2/H) R diag(W/2, H/2) there, which is R itself only for square inputs
    theta[apply, 0, 0], theta[apply, 0, 1], theta[apply, 1, 0], theta[apply, 1, 1] = (
        cos[apply], -sin[apply], sin[apply], cos[apply])
    if h != w:
        theta[:, 0, 1] *= h / w
        theta[:, 1, 0] *= w / h
    theta[apply, :, 2] = shift[apply]
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    images = F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    labels = F.grid_sample(labels[:, None].float(), grid, mode="nearest", padding_mode="reflection",
                           align_corners=False)[:, 0].long()
    brightness = (torch.rand(b, 1, 1, 1, generator=g) * 2 - 1) * 0.1
    contrast = 0.9 + 0.2 * torch.rand(b, 1, 1, 1, generator=g)
    mean = images.mean((1, 2, 3), keepdim=True)
    images = ((images - mean) * contrast + mean + brightness).clamp(0, 1)
    return images, labels
