"""CMRF: cascaded multi-receptive-field block.

From TinyU-Net (Chen et al., "TinyU-Net: Lighter yet Better U-Net with Cascaded Multi-Receptive
Fields", MICCAI 2024), following the published code: Ultralytics-style conv-BN-act layers
(BN eps 1e-3, momentum 0.03) and a residual added when ``in_channels == out_channels``.
"""
from __future__ import annotations

import torch
from torch import nn

from .conv_norm_act import ActName, ConvNormAct
from .registry import ContractViolation

_BN = dict(bn_eps=1e-3, bn_momentum=0.03)


class CMRF(nn.Module):
    """TinyU-Net's cascaded multi-receptive-field block; out_channels divisible by 2N.

    (B, C_in, H, W) -> (B, C_out, H, W). A 1x1 conv squeezes to ``C_out / N`` channels, split by
    channel parity into ``a`` and ``b`` (``C_out / 2N`` each); ``N - 1`` depthwise 3x3 conv-BN
    layers run in cascade on ``b``, so each output sees a larger receptive field; ``[a + b, d_1,
    ..., d_{N-1}]`` (``C_out / 2`` channels) is expanded by a 1x1 conv back to ``C_out``.

    Args:
        N: number of groups; ``N - 1`` cascaded depthwise layers (the paper's best is 8).
        shortcut: add the input to the output when the channel counts are equal.
        act: activation after both 1x1 convs.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        N: int = 8,
        shortcut: bool = True,
        act: ActName = "gelu",
    ) -> None:
        super().__init__()
        self.check_contract(in_channels, out_channels, N)
        squeezed = out_channels // N
        group = squeezed // 2
        self.pw1 = ConvNormAct(in_channels, squeezed, 1, act=act, **_BN)
        self.cascade = nn.ModuleList(
            ConvNormAct(group, group, 3, groups=group, act=None, **_BN) for _ in range(N - 1)
        )
        self.pw2 = ConvNormAct(out_channels // 2, out_channels, 1, act=act, **_BN)
        self.residual = shortcut and in_channels == out_channels

    @staticmethod
    def check_contract(in_channels: int, out_channels: int, N: int = 8, **_: object) -> None:
        if N < 1:
            raise ContractViolation(f"{N} must be at least 1.", param="N")
        if out_channels % (2 * N):
            raise ContractViolation(
                f"{N} does not divide out_channels {out_channels}: CMRF splits out_channels into "
                f"2*N = {2 * N} equal groups. Choose N so that 2*N divides every width.",
                param="N",
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pw1(x)
        a, b = y[:, 0::2], y[:, 1::2]
        cascade = [b]
        for depthwise in self.cascade:
            cascade.append(depthwise(cascade[-1]))
        y = self.pw2(torch.cat([a + b, *cascade[1:]], dim=1))
        return x + y if self.residual else y
