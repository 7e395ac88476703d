"""Convolution + batch norm + activation, the layer every CNN block here is built from.

One definition (as timm's ``ConvNormAct``) so that padding, bias and norm conventions, and later
conv-BN fusion, live in one place.
"""
from __future__ import annotations

from typing import Literal, Optional

from torch import nn

from .registry import ContractViolation

ActName = Literal["relu", "gelu", "silu", "hardswish", "identity"]

_ACTIVATIONS = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "hardswish": nn.Hardswish,
    "identity": nn.Identity,
}


def create_act(name: Optional[str]) -> nn.Module:
    """The activation module called ``name`` (``None`` means identity)."""
    if name is None:
        return nn.Identity()
    try:
        return _ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; known: {sorted(_ACTIVATIONS)}") from None


def same_padding(kernel_size: int, dilation: int = 1) -> int:
    """Symmetric padding that keeps the spatial size for an odd ``kernel_size`` at stride 1.

    Written out instead of ``padding='same'`` because that form traces to
    ``aten::_convolution_mode``, which cost counters and exporters treat less well.
    """
    if kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be odd for symmetric padding, got {kernel_size}")
    return dilation * (kernel_size - 1) // 2


def check_odd_kernel(kernel_size: int) -> None:
    """Contract check shared by blocks whose ``kernel_size`` parameter must pad symmetrically."""
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ContractViolation(
            f"{kernel_size} must be a positive odd number (the padding keeps the size).",
            param="kernel_size",
        )


class ConvNormAct(nn.Sequential):
    """``act(bn(conv(x)))``: (B, C_in, H, W) -> (B, C_out, H / stride, W / stride).

    ``kernel_size`` may be rectangular, ``(kh, kw)``; both must be odd.

    The conv has a bias only when there is no norm to absorb it, unless ``bias`` says otherwise.
    ``bn_eps`` / ``bn_momentum`` exist because some papers' code (TinyU-Net, via Ultralytics)
    uses non-default values.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int] = 1,
        stride: int = 1,
        groups: int = 1,
        dilation: int = 1,
        norm: bool = True,
        act: Optional[str] = "relu",
        bias: Optional[bool] = None,
        bn_eps: float = 1e-5,
        bn_momentum: float = 0.1,
    ) -> None:
        super().__init__()
        kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
        self.conv = nn.Conv2d(
            in_channels,
            out_channels,
            (kh, kw),
            stride=stride,
            padding=(same_padding(kh, dilation), same_padding(kw, dilation)),
            dilation=dilation,
            groups=groups,
            bias=(not norm) if bias is None else bias,
        )
        self.bn = (
            nn.BatchNorm2d(out_channels, eps=bn_eps, momentum=bn_momentum) if norm else nn.Identity()
        )
        self.act = create_act(act)
