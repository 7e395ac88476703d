"""The simplest blocks: a plain convolution (stems), the 1x1 head, and identity (no bottleneck)."""
from __future__ import annotations

from torch import nn

from .conv_norm_act import check_odd_kernel, same_padding


class Conv(nn.Conv2d):
    """Plain k x k convolution with bias, size-preserving; any in/out channels (e.g. U-Lite's stem)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3) -> None:
        super().__init__(in_channels, out_channels, kernel_size, padding=same_padding(kernel_size))

    @staticmethod
    def check_contract(in_channels: int, out_channels: int, kernel_size: int = 3, **_: object) -> None:
        check_odd_kernel(kernel_size)


class Conv1x1Head(nn.Conv2d):
    """1x1 convolution with bias from the last decoder width to the class logits."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(in_channels, out_channels, kernel_size=1)


class Identity(nn.Identity):
    """No operation: the deepest features pass straight to the decoder (TinyU-Net)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
