"""The built-in synthetic dataset: the zero-download default for training, sweeps and tests.

Procedural and seeded: each image is a smooth textured background with one to four textured
shapes, blurred and noisy, so that intensity alone does not separate the classes. Class 1 is
ellipses; with more classes, class k draws a different shape family (rectangles, rings).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

SHAPES = ("ellipse", "rectangle", "ring")


def _smooth_noise(g: torch.Generator, channels: int, size: int, cells: int) -> torch.Tensor:
    coarse = torch.rand(1, channels, cells, cells, generator=g)
    return F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)[0]


def _shape_mask(g: torch.Generator, kind: str, size: int) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    cy, cx = (torch.rand(2, generator=g) * 1.2 - 0.6).tolist()
    a, b = (torch.rand(2, generator=g) * 0.3 + 0.12).tolist()
    angle = float(torch.rand(1, generator=g)) * math.pi
    u = (xx - cx) * math.cos(angle) + (yy - cy) * math.sin(angle)
    v = -(xx - cx) * math.sin(angle) + (yy - cy) * math.cos(angle)
    if kind == "rectangle":
        return (u.abs() <= a) & (v.abs() <= b)
    radius = (u / a) ** 2 + (v / b) ** 2
    return (radius <= 1) & (radius >= 0.45) if kind == "ring" else radius <= 1


def synthetic_sample(index: int, size: int, classes: int = 2, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Image (3, size, size) in [0, 1] and labels (size, size) int64 of sample ``index``."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + index)
    image = 0.35 + 0.3 * _smooth_noise(g, 3, size, 4) + 0.1 * _smooth_noise(g, 3, size, max(2, size // 4))
    labels = torch.zeros(size, size, dtype=torch.int64)
    for _ in range(int(torch.randint(1, 5, (1,), generator=g))):
        cls = int(torch.randint(1, classes, (1,), generator=g))
        mask = _shape_mask(g, SHAPES[(cls - 1) % len(SHAPES)], size)
        contrast = 0.12 + 0.15 * float(torch.rand(1, generator=g))
        texture = 0.15 * _smooth_noise(g, 3, size, max(2, size // 3))
        shade = torch.rand(3, 1, 1, generator=g) * 0.5 + 0.75
        image = torch.where(mask, image + contrast * shade + texture - 0.075, image)
        labels[mask] = cls
    blur = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16
    kernel = (blur[:, None] * blur[None, :]).expand(3, 1, 5, 5)
    image = F.conv2d(image[None], kernel, padding=2, groups=3)[0]
    image = image + 0.06 * torch.randn(image.shape, generator=g)
    return image.clamp(0, 1), labels
