"""ASPP context module (Chen et al., "Rethinking Atrous Convolution for Semantic Image
Segmentation" (DeepLabV3), 2017), the baseline AL-Net and LM-Net ablate against."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .conv_norm_act import ConvNormAct
from .registry import ContractViolation


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling: 1x1, dilated 3x3 at each rate, and image pooling, in
    parallel (each conv-BN-ReLU to out_channels), concatenated and projected by 1x1 conv-BN-ReLU.

    (B, C_in, H, W) -> (B, C_out, H, W). The image-pooling branch has no BN (a BN over a 1x1 map
    fails in training with batch 1); torchvision's dropout after the projection is left out.

    Args:
        rates: dilation rates of the 3x3 branches (DeepLabV3 at output stride 16: 6, 12, 18).
    """

    def __init__(self, in_channels: int, out_channels: int, rates: list[int] = [6, 12, 18]) -> None:
        super().__init__()
        self.check_contract(in_channels, out_channels, rates)
        self.branches = nn.ModuleList(
            [ConvNormAct(in_channels, out_channels, 1)]
            + [ConvNormAct(in_channels, out_channels, 3, dilation=r) for r in rates]
        )
        self.image_pool = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Conv2d(in_channels, out_channels, 1), nn.ReLU()
        )
        self.project = ConvNormAct((len(rates) + 2) * out_channels, out_channels, 1)

    @staticmethod
    def check_contract(in_channels: int, out_channels: int, rates: list[int] = [6, 12, 18],
                       **_: object) -> None:
        if not rates or any(r < 1 for r in rates):
            raise ContractViolation(f"{rates} must be a non-empty list of positive rates.", param="rates")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = F.interpolate(self.image_pool(x), size=x.shape[-2:], mode="nearest")
        return self.project(torch.cat([b(x) for b in self.branches] + [pooled], dim=1))
