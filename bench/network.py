"""The U-shaped network that every architecture config assembles into."""
from __future__ import annotations

import torch
from torch import nn


class UNet(nn.Module):
    """Stem, encoder stages (each output kept as a skip, then downsampled), bottleneck, decoder
    stages (upsample, fuse with the matching skip, blocks), head.

    (B, C_in, H, W) -> (B, classes, H, W); H and W must be multiples of ``stride``.

    Args:
        stem: first block (``nn.Identity`` when the config has none).
        encoder: one ``nn.Sequential`` of feature blocks per stage.
        downs: one downsampling module per stage.
        bottleneck: context module at the deepest resolution.
        ups: one upsampling module per decoder stage, deepest first.
        decoder: one ``nn.Sequential`` of feature blocks per decoder stage, deepest first.
        head: maps the last decoder features to class logits.
        fuse: ``"concat"`` (``[skip, up]`` on channels) or ``"add"``.
    """

    def __init__(
        self,
        stem: nn.Module,
        encoder: list[nn.Module],
        downs: list[nn.Module],
        bottleneck: nn.Module,
        ups: list[nn.Module],
        decoder: list[nn.Module],
        head: nn.Module,
        fuse: str = "concat",
    ) -> None:
        super().__init__()
        if not len(encoder) == len(downs) == len(ups) == len(decoder):
            raise ValueError("encoder, downs, ups and decoder need one entry per stage")
        self.stem = stem
        self.encoder = nn.ModuleList(encoder)
        self.downs = nn.ModuleList(downs)
        self.bottleneck = bottleneck
        self.ups = nn.ModuleList(ups)
        self.decoder = nn.ModuleList(decoder)
        self.head = head
        self.fuse = fuse
        self.stride = 2 ** len(encoder)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        skips = []
        for stage, down in zip(self.encoder, self.downs):
            x = stage(x)
            skips.append(x)
            x = down(x)
        x = self.bottleneck(x)
        for up, stage, skip in zip(self.ups, self.decoder, reversed(skips)):
            x = up(x)
            x = torch.cat([skip, x], dim=1) if self.fuse == "concat" else skip + x
            x = stage(x)
        return self.head(x)
