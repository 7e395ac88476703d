"""RepVGG block (Ding et al., "RepVGG: Making VGG-style ConvNets Great Again", CVPR 2021).

Trains with three parallel branches, 3x3 conv-BN + 1x1 conv-BN + identity BN (the last only when
shapes allow), and deploys as one 3x3 conv with bias. AL-Net's encoder is built from it.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from .conv_norm_act import ActName, ConvNormAct, create_act
from .fusion import fold_bn, fused_conv, sum_branches


class RepVGG(nn.Module):
    """RepVGG block: act(BN(conv3x3) + BN(conv1x1) + BN(x)), one 3x3 conv once deployed.

    (B, C_in, H, W) -> (B, C_out, H, W); any in/out channels (the identity branch exists only
    when they are equal).
    """

    stride = 1

    def __init__(self, in_channels: int, out_channels: int, act: ActName = "relu") -> None:
        super().__init__()
        self.conv3 = ConvNormAct(in_channels, out_channels, 3, stride=self.stride, act=None)
        self.conv1 = ConvNormAct(in_channels, out_channels, 1, stride=self.stride, act=None)
        keeps_shape = in_channels == out_channels and self.stride == 1
        self.identity = nn.BatchNorm2d(in_channels) if keeps_shape else None
        self.fused: Optional[nn.Conv2d] = None
        self.act = create_act(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fused is not None:
            return self.act(self.fused(x))
        y = self.conv3(x) + self.conv1(x)
        if self.identity is not None:
            y = y + self.identity(x)
        return self.act(y)

    def reparameterize(self) -> None:
        if self.fused is not None:
            return
        shape = self.conv3.conv.weight.shape
        branches = [
            fold_bn(self.conv3.conv.weight, self.conv3.bn, shape),
            fold_bn(self.conv1.conv.weight, self.conv1.bn, shape),
        ]
        if self.identity is not None:
            branches.append(fold_bn(None, self.identity, shape))
        self.fused = fused_conv(self.conv3.conv, *sum_branches(branches))
        del self.conv3, self.conv1
        self.identity = None


class RepVGGDown(RepVGG):
    """RepVGG block with stride 2 (the first block of a RepVGG stage); 3x3 + 1x1 branches."""

    stride = 2
