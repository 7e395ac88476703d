"""LM-Net's multi-scale skip: each decoder level's skip gathered from the neighbouring encoder
levels (the "local feature pyramid" that feeds LFT)."""
from __future__ import annotations

import torch
from torch import nn

from .conv_norm_act import ConvNormAct


class MultiScaleSkip(nn.Module):
    """Skip for pyramid ``level``: levels level-1, level, level+1 (those that exist) resized to
    this level, each by a 3x3 conv, concatenated, fused by 3x3 conv-BN-GELU.

    A larger map (level - 1) is brought down by a stride-2 conv; a smaller one (level + 1) is
    upsampled x2 (bilinear, align_corners=True) before its conv. Output: (B, C_level, H_l, W_l).
    """

    def __init__(self, widths: list[int], level: int) -> None:
        super().__init__()
        self.level = level
        c = widths[level]
        self.sources = [i for i in (level - 1, level, level + 1) if 0 <= i < len(widths)]
        resize = {}
        for i in self.sources:
            if i < level:
                resize[str(i)] = nn.Conv2d(widths[i], c, 3, stride=2, padding=1)
            elif i == level:
                resize[str(i)] = nn.Conv2d(c, c, 3, padding=1)
            else:
                resize[str(i)] = nn.Sequential(
                    nn.Upsample(scale_factor=2.0, mode="bilinear", align_corners=True),
                    nn.Conv2d(widths[i], c, 3, padding=1),
                )
        self.resize = nn.ModuleDict(resize)
        self.fuse = ConvNormAct(len(self.sources) * c, c, 3, act="gelu", bias=True)

    def forward(self, pyramid: list[torch.Tensor]) -> torch.Tensor:
        return self.fuse(torch.cat([self.resize[str(i)](pyramid[i]) for i in self.sources], dim=1))
