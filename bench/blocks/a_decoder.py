"""AL-Net's asymmetric decoder (A-Decoder), reconstructed from the paper (no code was published).

The paper gives ``out = C1(F_low + F_high)``, ``F_low = C1(C3(C3(F1 + F2 + F3 + F4)))`` and
``F_high = C1(Up16(Up2(F5)))`` with F1..F4 the encoder stage outputs, F5 the context module's
output and C3 / C1 3x3 / 1x1 convolutions. Our choices, where the paper is silent:

- F1..F4 are matched in channels by a 1x1 conv each (to ``out_channels``) and in resolution by
  bilinear resizing to F1's grid, then summed;
- C3 is conv-BN-ReLU; the C1s are plain 1x1 convs with bias;
- F_low is resized bilinearly from F1's grid to the input resolution (F_high's ``Up16(Up2(.))``
  reaches it from stride 32), so the output is at the input resolution.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .conv_norm_act import ConvNormAct
from .upsample2x import upsample2x


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class AsymmetricDecoder(nn.Module):
    """AL-Net's A-Decoder: C1(F_low + F_high), fusing all encoder stages and the context output.

    ``forward(x, pyramid, size)``: x = F5 (B, C_in, h, w); pyramid = [F1..F4]; returns
    (B, C_out, *size).
    """

    def __init__(self, in_channels: int, out_channels: int, pyramid_channels: list[int]) -> None:
        super().__init__()
        self.lateral = nn.ModuleList(nn.Conv2d(c, out_channels, 1) for c in pyramid_channels)
        self.low = nn.Sequential(
            ConvNormAct(out_channels, out_channels, 3),
            ConvNormAct(out_channels, out_channels, 3),
            nn.Conv2d(out_channels, out_channels, 1),
        )
        self.high = nn.Conv2d(in_channels, out_channels, 1)
        self.out = nn.Conv2d(out_channels, out_channels, 1)

    def forward(self, x: torch.Tensor, pyramid: list[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
        grid = pyramid[0].shape[-2:]
        low = sum(_resize(lateral(f), grid) for lateral, f in zip(self.lateral, pyramid))
        low = _resize(self.low(low), size)
        up2 = upsample2x(x, "bilinear")
        high = self.high(_resize(up2, size))
        return self.out(low + high)
