"""Down- and up-sampling operators between U-Net stages (always by a factor of 2).

Down: (B, C_in, H, W) -> (B, C_out, H/2, W/2). Up: (B, C_in, H, W) -> (B, C_out, 2H, 2W).
Pools and interpolation keep the channel count (registered ``same_channels``); the others map
any ``C_in`` to any ``C_out``.
"""
from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from .conv_norm_act import ActName, ConvNormAct, check_odd_kernel, create_act
from .upsample2x import upsample2x


class MaxPool(nn.MaxPool2d):
    """2x2 max-pooling, stride 2 (U-Net, TinyU-Net)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(kernel_size=2, stride=2)


class AvgPool(nn.AvgPool2d):
    """2x2 average pooling, stride 2."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(kernel_size=2, stride=2)


class StridedConv(ConvNormAct):
    """Strided k x k conv-BN-act, stride 2; any in/out channels."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        norm: bool = True,
        act: ActName = "relu",
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride=2, norm=norm, act=act)

    @staticmethod
    def check_contract(in_channels: int, out_channels: int, kernel_size: int = 3, **_: object) -> None:
        check_odd_kernel(kernel_size)


class ConvPoolAct(nn.Module):
    """1x1 conv (with bias), 2x2 max-pool, activation: U-Lite's downsampling; any in/out channels."""

    def __init__(self, in_channels: int, out_channels: int, act: ActName = "gelu") -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 1)
        self.pool = nn.MaxPool2d(2, 2)
        self.act = create_act(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.pool(self.conv(x)))


class Interpolate(nn.Module):
    """x2 interpolation: nearest (U-Lite), bilinear, or bicubic (TinyU-Net); keeps channels."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        mode: Literal["nearest", "bilinear", "bicubic"] = "bilinear",
        align_corners: bool = False,
    ) -> None:
        super().__init__()
        self.mode = mode
        self.align_corners = None if mode == "nearest" else align_corners

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode != "nearest" and not self.align_corners:
            return upsample2x(x, self.mode)
        return F.interpolate(
            x, scale_factor=2.0, mode=self.mode, align_corners=self.align_corners
        )

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}, align_corners={self.align_corners}"


class InterpolateConv(nn.Module):
    """x2 interpolation then a 3x3 conv with bias (LM-Net's decoder up); any in/out channels."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        mode: Literal["nearest", "bilinear", "bicubic"] = "bilinear",
        align_corners: bool = True,
    ) -> None:
        super().__init__()
        self.up = Interpolate(in_channels, in_channels, mode, align_corners)
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.up(x))


class ConvTranspose(nn.ConvTranspose2d):
    """2x2 transposed conv, stride 2, with bias (U-Net's "up-conv"); any in/out channels."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(in_channels, out_channels, kernel_size=2, stride=2)
