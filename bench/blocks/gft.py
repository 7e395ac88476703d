"""GFT, LM-Net's global feature transformer: the whole encoder pyramid, pooled to the bottleneck
grid, mixed by one global pre-LN transformer layer."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .transformer import Mlp, SelfAttention, check_heads


class GlobalFeatureTransformer(nn.Module):
    """LM-Net's GFT: pool every encoder feature to the deepest grid, concatenate with the deepest
    map, 3x3 conv embedding, one global transformer layer, 1x1 conv to out_channels.

    (B, C_in, h, w) and the pyramid [(B, C_i, H_i, W_i)] -> (B, C_out, h, w). The transformer
    works on C_in + sum(C_i) channels (LM-Net: 192 + 12 + 24 + 48 + 96 = 372).

    Args:
        heads: attention heads (must divide the concatenated width).
        mlp_ratio: MLP hidden width as a multiple of the concatenated width.
        dropout: MLP dropout.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        pyramid_channels: list[int],
        heads: int = 12,
        mlp_ratio: int = 2,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.check_contract(in_channels, out_channels, pyramid_channels, heads)
        width = in_channels + sum(pyramid_channels)
        self.embed = nn.Conv2d(width, width, 3, padding=1)
        self.norm1 = nn.LayerNorm(width)
        self.attention = SelfAttention(width, heads)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = Mlp(width, mlp_ratio * width, dropout)
        self.project = nn.Conv2d(width, out_channels, 1)

    @staticmethod
    def check_contract(in_channels: int, out_channels: int, pyramid_channels: list[int],
                       heads: int = 12, **_: object) -> None:
        width = in_channels + sum(pyramid_channels)
        check_heads(width, heads, f"channels of the pooled pyramid ({in_channels} + "
                    f"{' + '.join(map(str, pyramid_channels))})")

    def forward(self, x: torch.Tensor, pyramid: list[torch.Tensor]) -> torch.Tensor:
        b, _, h, w = x.shape
        pooled = [F.adaptive_avg_pool2d(feature, (h, w)) for feature in pyramid]
        tokens = self.embed(torch.cat([*pooled, x], dim=1)).flatten(2).transpose(1, 2)  # (B, hw, C)
        tokens = tokens + self.attention(self.norm1(tokens))
        tokens = tokens + self.mlp(self.norm2(tokens))
        return self.project(tokens.transpose(1, 2).reshape(b, -1, h, w))
