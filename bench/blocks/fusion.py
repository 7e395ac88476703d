"""Structural re-parameterisation: the arithmetic shared by every multi-branch block.

A conv (no bias) followed by eval-mode BN is one conv with kernel ``K * t`` and bias
``beta - mean * t``, ``t = gamma / sqrt(var + eps)``. Parallel branches of the same stride add
up: kernels are zero-padded to the largest size (centred) and summed, biases summed. Blocks own
their fusion (they know their branches); :func:`bench.deploy` walks a model and calls each
block's ``reparameterize()``.
"""
from __future__ import annotations

from typing import Iterable, Optional, Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import nn


@runtime_checkable
class Reparameterizable(Protocol):
    """A block with a training form and a fused deploy form.

    ``reparameterize()`` must be idempotent: after the first call the block is in deploy form
    and further calls do nothing.
    """

    def reparameterize(self) -> None: ...


def fold_bn(kernel: Optional[torch.Tensor], bn: nn.BatchNorm2d, shape: torch.Size) -> tuple[torch.Tensor, torch.Tensor]:
    """Kernel and bias of ``bn(conv(x))`` for a bias-free conv with ``kernel``.

    ``kernel=None`` means the identity map (a BN-only branch) for a conv of weight ``shape``
    ``(C_out, C_in / groups, kh, kw)`` with ``C_out == C_in``.
    """
    if kernel is None:
        kernel = identity_kernel(shape, bn.weight.device, bn.weight.dtype)
    t = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return kernel * t.reshape(-1, 1, 1, 1), bn.bias - bn.running_mean * t


def identity_kernel(shape: torch.Size, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """A ``(C, C / groups, kh, kw)`` kernel that maps each channel to itself (1 at the centre)."""
    channels, per_group, kh, kw = shape
    kernel = torch.zeros(shape, device=device, dtype=dtype)
    for c in range(channels):
        kernel[c, c % per_group, kh // 2, kw // 2] = 1.0
    return kernel


def pad_to(kernel: torch.Tensor, kh: int, kw: int) -> torch.Tensor:
    """``kernel`` zero-padded, centred, to ``kh x kw`` (both differences must be even)."""
    dh, dw = kh - kernel.shape[2], kw - kernel.shape[3]
    return F.pad(kernel, [dw // 2, dw - dw // 2, dh // 2, dh - dh // 2])


def sum_branches(branches: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum of (kernel, bias) pairs, each kernel centred in the largest kernel size."""
    branches = list(branches)
    kh = max(k.shape[2] for k, _ in branches)
    kw = max(k.shape[3] for k, _ in branches)
    kernel = sum(pad_to(k, kh, kw) for k, _ in branches)
    bias = sum(b for _, b in branches)
    return kernel, bias


def fused_conv(like: nn.Conv2d, kernel: torch.Tensor, bias: torch.Tensor) -> nn.Conv2d:
    """A conv with bias, the stride, dilation and groups of ``like``, holding ``kernel``/``bias``.

    Padding is set to keep ``like``'s output size for the (possibly larger) fused kernel.
    """
    kh, kw = kernel.shape[2:]
    conv = nn.Conv2d(
        kernel.shape[1] * like.groups,
        kernel.shape[0],
        (kh, kw),
        stride=like.stride,
        padding=(like.dilation[0] * (kh // 2), like.dilation[1] * (kw // 2)),
        dilation=like.dilation,
        groups=like.groups,
        bias=True,
    ).to(device=kernel.device, dtype=kernel.dtype)
    with torch.no_grad():
        conv.weight.copy_(kernel)
        conv.bias.copy_(bias)
    return conv
