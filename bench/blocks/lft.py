"""LFT, LM-Net's local feature transformer: conv embedding, then a pre-LN transformer layer whose
attention is k x k neighbourhood attention (LM-Net's code uses natten; ours is plain PyTorch)."""
from __future__ import annotations

import torch
from torch import nn

from .neighborhood_attention import NeighborhoodAttention2D
from .transformer import Mlp, check_heads


class LocalFeatureTransformer(nn.Module):
    """LM-Net's LFT: 3x3 conv embedding, neighbourhood attention and MLP, each pre-LN + residual.

    (B, C_in, H, W) -> (B, C_out, H, W); H and W must be at least ``kernel_size``.

    Args:
        heads: attention heads (must divide out_channels).
        kernel_size: neighbourhood size.
        mlp_ratio: MLP hidden width as a multiple of out_channels.
        dropout: MLP dropout.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        heads: int = 12,
        kernel_size: int = 3,
        mlp_ratio: int = 2,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.check_contract(in_channels, out_channels, heads)
        self.embed = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm1 = nn.LayerNorm(out_channels)
        self.attention = NeighborhoodAttention2D(out_channels, heads, kernel_size)
        self.norm2 = nn.LayerNorm(out_channels)
        self.mlp = Mlp(out_channels, mlp_ratio * out_channels, dropout)

    @staticmethod
    def check_contract(in_channels: int, out_channels: int, heads: int = 12, **_: object) -> None:
        check_heads(out_channels, heads, "out_channels")

    @staticmethod
    def min_feature_size(kernel_size: int = 3, **_: object) -> int:
        return kernel_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x).permute(0, 2, 3, 1)  # (B, H, W, C)
        x = x + self.attention(self.norm1(x))
        x = x + self.mlp(self.norm2(x))
        return x.permute(0, 3, 1, 2).contiguous()
