"""Axial depthwise convolution and the U-Lite blocks built on it.

From U-Lite (Dinh et al., "1M parameters are enough? A lightweight CNN-based model for medical
image segmentation", APSIPA 2023), following the published code. The code pads with
``padding='same'``; we write the equivalent symmetric padding out (same outputs, and cost
counters see an ordinary convolution).
"""
from __future__ import annotations

import torch
from torch import nn

from .conv_norm_act import ActName, check_odd_kernel, create_act, same_padding
from .registry import ContractViolation


class AxialDW(nn.Module):
    """Axial depthwise conv x + dw_kx1(x) + dw_1xk(x), optionally followed by BN; keeps channels.

    (B, C, H, W) -> (B, C, H, W). Both depthwise convs have a bias and the given dilation.
    ``norm: true`` is the skip branch of a U-Lite encoder stage, ``BN(AxialDW_7(x))``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 7,
        dilation: int = 1,
        norm: bool = False,
    ) -> None:
        super().__init__()
        self.check_contract(in_channels, out_channels, kernel_size)
        pad = same_padding(kernel_size, dilation)
        self.dw_h = nn.Conv2d(
            in_channels, in_channels, (kernel_size, 1), padding=(pad, 0),
            dilation=dilation, groups=in_channels,
        )
        self.dw_w = nn.Conv2d(
            in_channels, in_channels, (1, kernel_size), padding=(0, pad),
            dilation=dilation, groups=in_channels,
        )
        self.bn = nn.BatchNorm2d(in_channels) if norm else nn.Identity()

    @staticmethod
    def check_contract(in_channels: int, out_channels: int, kernel_size: int = 7, **_: object) -> None:
        check_odd_kernel(kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(x + self.dw_h(x) + self.dw_w(x))


class AxialBlock(nn.Module):
    """U-Lite's decoder block: 1x1 conv-BN, axial depthwise, 1x1 conv, GELU; any in/out channels.

    (B, C_in, H, W) -> (B, C_out, H, W).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 7,
        act: ActName = "gelu",
    ) -> None:
        super().__init__()
        self.check_contract(in_channels, out_channels, kernel_size)
        self.pw1 = nn.Conv2d(in_channels, out_channels, 1)
        self.bn = nn.BatchNorm2d(out_channels)
        self.axial = AxialDW(out_channels, out_channels, kernel_size)
        self.pw2 = nn.Conv2d(out_channels, out_channels, 1)
        self.act = create_act(act)

    @staticmethod
    def check_contract(in_channels: int, out_channels: int, kernel_size: int = 7, **_: object) -> None:
        check_odd_kernel(kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.pw2(self.axial(self.bn(self.pw1(x)))))


class ULiteBottleneck(nn.Module):
    """U-Lite's bottleneck: axial depthwise convs at dilations 1, 2, 3 side by side.

    (B, C_in, H, W) -> (B, C_out, H, W). A 1x1 conv squeezes to ``C_out / 4`` channels; the
    squeezed map and three axial depthwise 3x3 convs of it (dilations 1, 2, 3) are concatenated,
    normalised, expanded by a 1x1 conv to ``C_out`` and passed through GELU.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        act: ActName = "gelu",
    ) -> None:
        super().__init__()
        self.check_contract(in_channels, out_channels, kernel_size)
        squeezed = out_channels // 4
        self.pw1 = nn.Conv2d(in_channels, squeezed, 1)
        self.dilated = nn.ModuleList(
            AxialDW(squeezed, squeezed, kernel_size, dilation=d) for d in (1, 2, 3)
        )
        self.bn = nn.BatchNorm2d(4 * squeezed)
        self.pw2 = nn.Conv2d(4 * squeezed, out_channels, 1)
        self.act = create_act(act)

    @staticmethod
    def check_contract(in_channels: int, out_channels: int, kernel_size: int = 3, **_: object) -> None:
        check_odd_kernel(kernel_size)
        if out_channels % 4:
            raise ContractViolation(
                f"ulite_bottleneck needs out_channels divisible by 4 (four branches), got {out_channels}."
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pw1(x)
        x = torch.cat([x, *(branch(x) for branch in self.dilated)], dim=1)
        return self.act(self.pw2(self.bn(x)))
