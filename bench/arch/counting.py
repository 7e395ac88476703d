"""Parameter and MAC counting, with the conventions written down.

MACs (multiply-accumulates) are counted by fvcore (its "flops" are MACs) with handles added for
the operators it skips; paper-FLOPs are 2 x MACs (the convention of the TinyU-Net and U-Lite
papers' tables). Conventions:

- convolutions and linear layers: output elements x (input channels / groups) x kernel area, no
  bias; ``aten::_convolution_mode`` (convs built with ``padding='same'``) counted like any conv
  (fvcore skips it).
- batch norm (eval mode): 2 per element with affine parameters (scale and shift), 1 without
  (fvcore's rule); BN that a deploy form fuses into a conv costs nothing there.
- interpolation: a separable filter, width pass then height pass, each costing its taps per
  element it writes (nearest 0, bilinear 2, bicubic 4 taps). fvcore skips bicubic and counts
  nearest as 1 and bilinear as 4 per output element; we replace those for one consistent rule.
- attention: ``scaled_dot_product_attention`` (skipped by fvcore) as its two matrix products,
  N_q x N_k x (d + d_v) per head; einsum and matmul (neighbourhood attention) by fvcore. Softmax
  and scaling are elementwise.
- elementwise operations (activations, additions, gating products, softmax) and max/avg
  pooling: 0, as in every published lightweight-network table; they are listed under
  ``zero_cost_ops``.

Anything else fvcore could not count goes to ``uncounted_ops``, which must stay empty for every
shipped block (a test checks it).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from importlib import metadata
from math import prod
from typing import Any, Callable

import torch
from fvcore.nn import FlopCountAnalysis
from fvcore.nn.jit_handles import get_shape
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

ZERO_COST_OPS = frozenset(
    f"aten::{op}"
    for op in (
        "gelu", "silu", "hardswish", "hardsigmoid", "sigmoid", "tanh", "softmax", "relu6",
        "add", "add_", "sub", "mul", "mul_", "div", "neg",
        "max_pool2d", "avg_pool2d",
    )
)

_INTERPOLATION_TAPS = {"nearest": 0, "bilinear": 2, "bicubic": 4}


def count_params(model: nn.Module) -> int:
    """Number of parameters (buffers such as BN running statistics excluded)."""
    return sum(p.numel() for p in model.parameters())


def _conv_mode_macs(inputs: list[Any], outputs: list[Any]) -> int:
    weight = get_shape(inputs[1])  # (C_out, C_in / groups, kh, kw)
    return prod(get_shape(outputs[0])) * prod(weight[1:])


def _interpolation_macs(taps: int) -> Callable[[list[Any], list[Any]], int]:
    def handle(inputs: list[Any], outputs: list[Any]) -> int:
        batch, channels, h_in, w_in = get_shape(inputs[0])
        h_out, w_out = get_shape(outputs[0])[2:]
        width_pass = batch * channels * h_in * w_out
        height_pass = batch * channels * h_out * w_out
        return taps * (width_pass + height_pass)

    return handle


def _attention_macs(inputs: list[Any], outputs: list[Any]) -> int:
    *batch, queries, dim = get_shape(inputs[0])  # q: (B, heads, N, d)
    keys = get_shape(inputs[1])[-2]
    dim_v = get_shape(inputs[2])[-1]
    return prod(batch) * queries * keys * (dim + dim_v)  # q k^T, then attention x v


HANDLES: dict[str, Callable[[list[Any], list[Any]], int]] = {
    "aten::_convolution_mode": _conv_mode_macs,
    "aten::scaled_dot_product_attention": _attention_macs,
    "aten::upsample_nearest2d": _interpolation_macs(_INTERPOLATION_TAPS["nearest"]),
    "aten::upsample_bilinear2d": _interpolation_macs(_INTERPOLATION_TAPS["bilinear"]),
    "aten::upsample_bicubic2d": _interpolation_macs(_INTERPOLATION_TAPS["bicubic"]),
}


def counter_name() -> str:
    """The counter and its version, as recorded with every figure."""
    return f"fvcore {metadata.version('fvcore')} + bench handles ({', '.join(sorted(HANDLES))})"


@dataclass
class MacCount:
    """MACs of one forward pass, by operator group, with what was not counted."""

    total: int
    by_operator: dict[str, int]
    uncounted_ops: dict[str, int] = field(default_factory=dict)
    zero_cost_ops: dict[str, int] = field(default_factory=dict)


def count_macs(model: nn.Module, inputs: torch.Tensor) -> MacCount:
    """MACs of ``model(inputs)`` in eval mode, traced by fvcore with :data:`HANDLES`.

    Args:
        model: the network; put in eval mode for the count and restored after.
        inputs: (B, C, H, W) example input.
    """
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            analysis = (
                FlopCountAnalysis(model, inputs)
                .set_op_handle(**HANDLES)
                .unsupported_ops_warnings(False)
                .uncalled_modules_warnings(False)
                .tracer_warnings("none")
            )
            total = int(analysis.total())
            by_operator = {k: int(v) for k, v in analysis.by_operator().items() if v}
            skipped = Counter(analysis.unsupported_ops())
    finally:
        model.train(was_training)
    return MacCount(
        total=total,
        by_operator=by_operator,
        uncounted_ops={k: n for k, n in skipped.items() if k not in ZERO_COST_OPS},
        zero_cost_ops={k: n for k, n in skipped.items() if k in ZERO_COST_OPS},
    )


def flop_counter_macs(model: nn.Module, inputs: torch.Tensor) -> dict[str, int]:
    """MACs by ATen operator from PyTorch's own ``FlopCounterMode`` (which counts 2 per MAC).

    An independent second counter, used to cross-check fvcore's convolution and matmul counts.
    """
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as mode:
            model(inputs)
    finally:
        model.train(was_training)
    return {str(op): int(n) // 2 for op, n in mode.get_flop_counts()["Global"].items()}
