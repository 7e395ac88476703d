"""LM-Net's multi-branch depthwise module (Lu et al., "LM-Net: A Light-weight and Multi-scale
Network for Medical Image Segmentation", Computers in Biology and Medicine 2024), following the
published code (``ReparamConv``): four parallel depthwise conv-BN branches that deploy as one
depthwise conv. The published ``switch_to_deploy`` deletes the square, horizontal and vertical
branches but keeps ``large_conv`` (its 5x5 depthwise conv and BN); deploying here removes all
four. As in the code, the SE block's convs start from ``kaiming_normal_`` (fan-in, gain sqrt 2).
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from .conv_norm_act import ConvNormAct, check_odd_kernel, create_act
from .fusion import fold_bn, fused_conv, sum_branches
from .registry import ContractViolation
from .se import SqueezeExcite


class MultiBranchDW(nn.Module):
    """LM-Net's multi-branch module: 1x1 expand, parallel kxk/3x3/3x1/1x3 depthwise-BN, SE, 1x1
    projection plus a 1x1 shortcut; one depthwise kxk conv once deployed.

    (B, C_in, H, W) -> (B, C_out, H, W). The expanded width is ``expansion * C_out``.
    ``x1 = hardswish(BN(conv1x1(x)))``; ``y = sum_k BN(dw_k(x1))``;
    ``out = conv1x1(SE(GELU(y))) + conv1x1(x)``, no activation after the sum.

    Args:
        expansion: expanded width as a multiple of out_channels.
        large_kernel: the largest depthwise kernel (the deploy kernel).
        kernel_size: the square and the 1-D kernels' size.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        expansion: int = 2,
        large_kernel: int = 5,
        kernel_size: int = 3,
    ) -> None:
        super().__init__()
        self.check_contract(in_channels, out_channels, expansion, large_kernel, kernel_size)
        e = expansion * out_channels
        self.expand = ConvNormAct(in_channels, e, 1, act="hardswish", bias=True)
        k, s = large_kernel, kernel_size
        self.branches = nn.ModuleList(
            ConvNormAct(e, e, shape, groups=e, act=None) for shape in ((k, k), (s, s), (s, 1), (1, s))
        )
        self.fused: Optional[nn.Conv2d] = None
        self.act = create_act("gelu")
        self.se = SqueezeExcite(e, e, reduction=4, gate="hardsigmoid")
        for conv in (self.se.reduce, self.se.expand):  # LM-Net's SE (core/modules.py) starts so
            nn.init.kaiming_normal_(conv.weight)
        self.project = nn.Conv2d(e, out_channels, 1)
        self.shortcut = nn.Conv2d(in_channels, out_channels, 1)

    @staticmethod
    def check_contract(in_channels: int, out_channels: int, expansion: int = 2,
                       large_kernel: int = 5, kernel_size: int = 3, **_: object) -> None:
        if expansion < 1:
            raise ContractViolation(f"{expansion} must be at least 1.", param="expansion")
        check_odd_kernel(kernel_size)
        try:
            check_odd_kernel(large_kernel)
        except ContractViolation as exc:
            raise ContractViolation(str(exc), param="large_kernel") from None
        if large_kernel < kernel_size:
            raise ContractViolation(
                f"{large_kernel} is smaller than kernel_size {kernel_size}; the deploy kernel "
                "must hold every branch.", param="large_kernel",
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.expand(x)
        if self.fused is not None:
            y = self.fused(x1)
        else:
            y = sum(branch(x1) for branch in self.branches)
        return self.project(self.se(self.act(y))) + self.shortcut(x)

    def reparameterize(self) -> None:
        if self.fused is not None:
            return
        folded = [fold_bn(b.conv.weight, b.bn, b.conv.weight.shape) for b in self.branches]
        self.fused = fused_conv(self.branches[0].conv, *sum_branches(folded))
        del self.branches
