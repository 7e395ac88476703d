"""The cost profile of an architecture: parameters, MACs, paper-FLOPs, and how they were counted."""
from __future__ import annotations

import platform
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from .counting import count_macs, count_params, counter_name
from .errors import BenchError


@dataclass
class CostProfile:
    """Cost figures of one network at one input shape.

    ``flops`` are paper-FLOPs, 2 x ``macs``. ``uncounted_ops`` lists operators (with call counts)
    that cost compute but were not counted; ``zero_cost_ops`` those counted as 0 by convention.
    """

    architecture: str
    config_hash: str
    input_shape: list[int]
    output_shape: list[int]
    params: int
    macs: int
    flops: int
    macs_by_operator: dict[str, int]
    uncounted_ops: dict[str, int]
    zero_cost_ops: dict[str, int]
    counter: str
    torch: str
    python: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_input_size(model: nn.Module, size: int) -> None:
    """Raises BenchError if ``size`` is not a positive multiple of the network's total stride."""
    stride = getattr(model, "stride", 1)
    if size < stride or size % stride:
        raise BenchError(
            f"input size {size} is not a multiple of {stride}: the network downsamples "
            f"{stride.bit_length() - 1} times. Use --size {max(stride, size - size % stride)} "
            f"or another multiple of {stride}."
        )


def profile_model(
    model: nn.Module,
    name: str,
    config_hash: str,
    in_channels: int,
    size: int,
    batch: int = 1,
) -> CostProfile:
    """Count the cost of ``model`` on a (batch, in_channels, size, size) input.

    Raises:
        BenchError: the input size does not fit the network's stride, or the forward pass fails.
    """
    check_input_size(model, size)
    inputs = torch.randn(batch, in_channels, size, size)
    model.eval()
    try:
        with torch.no_grad():
            output_shape = list(model(inputs).shape)
    except RuntimeError as exc:
        raise BenchError(
            f"{name}: the forward pass on a {tuple(inputs.shape)} input failed: {exc}"
        ) from exc
    macs = count_macs(model, inputs)
    return CostProfile(
        architecture=name,
        config_hash=config_hash,
        input_shape=list(inputs.shape),
        output_shape=output_shape,
        params=count_params(model),
        macs=macs.total,
        flops=2 * macs.total,
        macs_by_operator=macs.by_operator,
        uncounted_ops=macs.uncounted_ops,
        zero_cost_ops=macs.zero_cost_ops,
        counter=counter_name(),
        torch=torch.__version__,
        python=platform.python_version(),
    )
