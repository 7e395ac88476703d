"""Double 3x3 convolution, the feature block of U-Net (Ronneberger et al., MICCAI 2015).

Padded ("same") convolutions, as in every widely used PyTorch U-Net, so that skips need no
cropping; the 2015 paper used unpadded ones and no batch norm (``norm: false`` restores the
latter).
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from .conv_norm_act import ActName, ConvNormAct


class DoubleConv(nn.Module):
    """U-Net's feature block: two 3x3 conv-BN-ReLU layers, any in/out channels.

    (B, C_in, H, W) -> (B, C_out, H, W).

    Args:
        mid_channels: width between the two convs (default ``out_channels``).
        norm: batch norm after each conv (the conv then has no bias).
        act: activation after each conv-BN.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        mid_channels: Optional[int] = None,
        norm: bool = True,
        act: ActName = "relu",
    ) -> None:
        super().__init__()
        mid = mid_channels or out_channels
        self.conv1 = ConvNormAct(in_channels, mid, 3, norm=norm, act=act)
        self.conv2 = ConvNormAct(mid, out_channels, 3, norm=norm, act=act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.conv1(x))
