"""The U-shaped network that every architecture config assembles into, and its U-decoder."""
from __future__ import annotations

import torch
from torch import nn


class UDecoder(nn.Module):
    """Decoder stages, deepest first: upsample, fuse with the matching skip, blocks.

    ``forward(x, skips, size)`` -> features at the resolution of the shallowest skip.
    ``fuse``: ``"concat"`` (``[up, skip]`` on channels, the order of TinyU-Net's and U-Lite's code,
    so that their state dicts map onto ours channel for channel), ``"concat_skip_first"``
    (``[skip, up]``, milesial's U-Net) or ``"add"``.
    """

    def __init__(self, ups: list[nn.Module], stages: list[nn.Module], fuse: str = "concat") -> None:
        super().__init__()
        if len(ups) != len(stages):
            raise ValueError("one up per decoder stage")
        self.ups = nn.ModuleList(ups)
        self.stages = nn.ModuleList(stages)
        self.fuse = fuse

    def forward(self, x: torch.Tensor, skips: list[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
        for up, stage, skip in zip(self.ups, self.stages, reversed(skips)):
            x = up(x)
            if self.fuse == "concat":
                x = torch.cat([x, skip], dim=1)
            elif self.fuse == "concat_skip_first":
                x = torch.cat([skip, x], dim=1)
            else:
                x = skip + x
            x = stage(x)
        return x


class SkipPaths(nn.Module):
    """What each decoder level receives from the encoder: its own stage output, or a gathering
    of neighbouring levels (``gathers``), then a per-level block (identity, LFT, ...)."""

    def __init__(self, gathers: list[nn.Module] | None, blocks: list[nn.Module]) -> None:
        super().__init__()
        self.gathers = nn.ModuleList(gathers) if gathers else None
        self.blocks = nn.ModuleList(blocks)

    def forward(self, pyramid: list[torch.Tensor]) -> list[torch.Tensor]:
        if self.gathers is not None:
            pyramid = [gather(pyramid) for gather in self.gathers]
        return [block(skip) for block, skip in zip(self.blocks, pyramid)]


class UNet(nn.Module):
    """Stem, encoder stages (each output kept as a skip, then downsampled), bottleneck, skip
    paths, decoder, head.

    (B, C_in, H, W) -> (B, classes, H, W); H and W must be multiples of ``stride``.
    A pyramid-aware bottleneck (``bottleneck_takes_pyramid``) also receives the skips.
    """

    def __init__(
        self,
        stem: nn.Module,
        encoder: list[nn.Module],
        downs: list[nn.Module],
        bottleneck: nn.Module,
        skips: SkipPaths,
        decoder: nn.Module,
        head: nn.Module,
        bottleneck_takes_pyramid: bool = False,
        stride: int = 1,
    ) -> None:
        super().__init__()
        if len(encoder) != len(downs):
            raise ValueError("one down per encoder stage")
        self.stem = stem
        self.encoder = nn.ModuleList(encoder)
        self.downs = nn.ModuleList(downs)
        self.bottleneck = bottleneck
        self.skips = skips
        self.decoder = decoder
        self.head = head
        self.bottleneck_takes_pyramid = bottleneck_takes_pyramid
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = tuple(x.shape[-2:])
        x = self.stem(x)
        pyramid = []
        for stage, down in zip(self.encoder, self.downs):
            x = stage(x)
            pyramid.append(x)
            x = down(x)
        x = self.bottleneck(x, pyramid) if self.bottleneck_takes_pyramid else self.bottleneck(x)
        x = self.decoder(x, self.skips(pyramid), size)
        return self.head(x)
