"""Squeeze-and-excitation channel gating (Hu et al., "Squeeze-and-Excitation Networks", CVPR 2018)."""
from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from .registry import ContractViolation

_GATES = {"sigmoid": nn.Sigmoid, "hardsigmoid": nn.Hardsigmoid}


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation: x * gate(fc(relu(fc(avgpool(x))))); keeps channels.

    (B, C, H, W) -> (B, C, H, W). The bottleneck has ``C // reduction`` channels; both 1x1
    convs have a bias. LM-Net uses ``gate: hardsigmoid``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        reduction: int = 4,
        gate: Literal["sigmoid", "hardsigmoid"] = "sigmoid",
    ) -> None:
        super().__init__()
        self.check_contract(in_channels, out_channels, reduction)
        squeezed = in_channels // reduction
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Conv2d(in_channels, squeezed, 1)
        self.act = nn.ReLU()
        self.expand = nn.Conv2d(squeezed, in_channels, 1)
        self.gate = _GATES[gate]()

    @staticmethod
    def check_contract(in_channels: int, out_channels: int, reduction: int = 4, **_: object) -> None:
        if reduction < 1 or in_channels // reduction < 1:
            raise ContractViolation(
                f"{reduction} leaves no channels: {in_channels} // {reduction} = 0.", param="reduction"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(self.expand(self.act(self.reduce(self.pool(x)))))
