"""Neighbourhood attention in plain PyTorch (Hassani et al., "Neighborhood Attention Transformer",
CVPR 2023), reproducing the ``natten`` package's ``NeighborhoodAttention2D`` (the API LM-Net
used) without its compiled kernels.

Each query attends to the k x k keys around it; near a border the window is shifted, not
cropped, so it stays k x k inside the map. A learned relative position bias per head is indexed
by ``key - query + (k - 1)`` in each axis.
"""
from __future__ import annotations

import torch
from torch import nn

from .transformer import check_heads


def window_starts(length: int, kernel_size: int, device: torch.device) -> torch.Tensor:
    """First index of each position's window, clamped so the window stays inside: (length,)."""
    starts = torch.arange(length, device=device) - kernel_size // 2
    return starts.clamp(0, length - kernel_size)


class NeighborhoodAttention2D(nn.Module):
    """k x k neighbourhood multi-head attention: (B, H, W, C) -> (B, H, W, C); H, W >= k."""

    def __init__(self, channels: int, heads: int, kernel_size: int = 3) -> None:
        super().__init__()
        check_heads(channels, heads)
        self.heads, self.kernel_size = heads, kernel_size
        self.scale = (channels // heads) ** -0.5
        self.qkv = nn.Linear(channels, 3 * channels)
        self.rpb = nn.Parameter(torch.zeros(heads, 2 * kernel_size - 1, 2 * kernel_size - 1))
        nn.init.trunc_normal_(self.rpb, std=0.02)
        self.proj = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, c = x.shape
        k = self.kernel_size
        q, key, v = (
            self.qkv(x).reshape(b, h, w, 3, self.heads, c // self.heads).permute(3, 0, 4, 1, 2, 5)
        )  # each (B, heads, H, W, d)
        rows = window_starts(h, k, x.device)[:, None] + torch.arange(k, device=x.device)  # (H, k)
        cols = window_starts(w, k, x.device)[:, None] + torch.arange(k, device=x.device)  # (W, k)
        r, s = rows[:, None, :, None], cols[None, :, None, :]  # broadcast to (H, W, k, k)
        keys, values = key[:, :, r, s], v[:, :, r, s]  # (B, heads, H, W, k, k, d)
        logits = torch.einsum("bnijd,bnijxyd->bnijxy", q * self.scale, keys)
        dr = rows - torch.arange(h, device=x.device)[:, None] + k - 1  # key - query + (k - 1)
        dc = cols - torch.arange(w, device=x.device)[:, None] + k - 1
        logits = logits + self.rpb[:, dr[:, None, :, None], dc[None, :, None, :]]
        attn = logits.reshape(b, self.heads, h, w, k * k).softmax(dim=-1).reshape(logits.shape)
        y = torch.einsum("bnijxy,bnijxyd->bnijd", attn, values)  # (B, heads, H, W, d)
        return self.proj(y.permute(0, 2, 3, 1, 4).reshape(b, h, w, c))
