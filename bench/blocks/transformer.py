"""Transformer parts shared by the attention blocks: the MLP and global multi-head self-attention.

Tokens are (B, N, C). Attention runs through ``F.scaled_dot_product_attention``; its cost is
counted by a handle in :mod:`bench.arch.counting`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .registry import ContractViolation


def check_heads(channels: int, heads: int, what: str = "channels") -> None:
    """Contract check: ``heads`` must divide ``channels``."""
    if heads < 1 or channels % heads:
        raise ContractViolation(
            f"{heads} attention heads do not divide the {channels} {what}. Choose heads that "
            f"divide {channels}.",
            param="heads",
        )


class Mlp(nn.Module):
    """Linear, GELU, dropout, linear, dropout: (B, ..., C) -> (B, ..., C)."""

    def __init__(self, channels: int, hidden: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(channels, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, channels)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class SelfAttention(nn.Module):
    """Global multi-head self-attention with a qkv bias: (B, N, C) -> (B, N, C).

    Initialised as LM-Net's ``GlobalAttention``: qkv and projection weights from a normal
    distribution with std 0.02 truncated to [-2, 2], biases zero."""

    def __init__(self, channels: int, heads: int) -> None:
        super().__init__()
        check_heads(channels, heads)
        self.heads = heads
        self.qkv = nn.Linear(channels, 3 * channels)
        self.proj = nn.Linear(channels, channels)
        for linear in (self.qkv, self.proj):  # LM-Net's GlobalAttention (timm's ViT init)
            nn.init.trunc_normal_(linear.weight, std=0.02)
            nn.init.zeros_(linear.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v)  # (B, heads, N, C / heads)
        return self.proj(y.transpose(1, 2).reshape(b, n, c))
