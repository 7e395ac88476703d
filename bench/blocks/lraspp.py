"""LR-ASPP context module (Howard et al., "Searching for MobileNetV3", ICCV 2019), as used by
AL-Net; torchvision's ``LRASPPHead`` without its classifier convs, which belong to the head."""
from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from .conv_norm_act import ConvNormAct

_GATES = {"sigmoid": torch.sigmoid, "hardsigmoid": F.hardsigmoid}


class LRASPP(nn.Module):
    """LR-ASPP: 1x1 conv-BN-ReLU(x) gated by gate(1x1 conv(pool(x))); any in/out channels.

    (B, C_in, H, W) -> (B, C_out, H, W).

    Args:
        gate: sigmoid (torchvision) or hardsigmoid (AL-Net's text).
        pool: global average pooling (torchvision), or the MobileNetV3 paper's large average
            pool (``pool_kernel``, stride ``pool_stride``) whose gate map is upsampled back.
        pool_kernel: size of the large pooling window; the feature map must be at least this big.
        pool_stride: stride of the large pooling window.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        gate: Literal["sigmoid", "hardsigmoid"] = "sigmoid",
        pool: Literal["global", "large_kernel"] = "global",
        pool_kernel: int = 49,
        pool_stride: int = 16,
    ) -> None:
        super().__init__()
        self.branch = ConvNormAct(in_channels, out_channels, 1, act="relu")
        self.pool = (
            nn.AdaptiveAvgPool2d(1) if pool == "global" else nn.AvgPool2d(pool_kernel, pool_stride)
        )
        self.gate_conv = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.gate = _GATES[gate]

    @staticmethod
    def min_feature_size(pool: str = "global", pool_kernel: int = 49, **_: object) -> int:
        return pool_kernel if pool == "large_kernel" else 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = self.gate(self.gate_conv(self.pool(x)))
        if gate.shape[-2:] != (1, 1):
            gate = F.interpolate(gate, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return self.branch(x) * gate
