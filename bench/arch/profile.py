"""The cost profile of a network: parameters, MACs and paper-FLOPs of its train and deploy forms,
and how they were counted."""
from __future__ import annotations

import copy
import platform
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from .counting import count_macs, count_params, counter_name
from .reparameterize import deploy
from ..core.errors import BenchError


@dataclass
class FormCost:
    """Cost of one form of a network. ``flops`` are paper-FLOPs, 2 x ``macs``.

    ``uncounted_ops`` lists operators (with call counts) that cost compute but were not counted;
    ``zero_cost_ops`` those counted as 0 by convention.
    """

    params: int
    macs: int
    flops: int
    macs_by_operator: dict[str, int]
    uncounted_ops: dict[str, int]
    zero_cost_ops: dict[str, int]


@dataclass
class CostProfile:
    """Cost figures of one network at one input shape; the top-level figures are the train form."""

    architecture: str
    config_hash: str
    input_shape: list[int]
    output_shape: list[int]
    train: FormCost
    deploy: FormCost
    counter: str
    torch: str
    python: str

    def to_dict(self) -> dict[str, Any]:
        record = asdict(self)
        train = record.pop("train")
        return {**{k: record[k] for k in ("architecture", "config_hash", "input_shape",
                                          "output_shape")},
                **train, "deploy": record["deploy"],
                **{k: record[k] for k in ("counter", "torch", "python")}}


def form_cost(model: nn.Module, inputs: torch.Tensor) -> FormCost:
    """Parameters and MACs of ``model`` on ``inputs``."""
    macs = count_macs(model, inputs)
    return FormCost(count_params(model), macs.total, 2 * macs.total, macs.by_operator,
                    macs.uncounted_ops, macs.zero_cost_ops)


def profile_model(
    model: nn.Module,
    name: str,
    config_hash: str,
    in_channels: int,
    size: int,
    batch: int = 1,
) -> CostProfile:
    """Count the cost of ``model`` and of its deploy form on a (batch, in_channels, size, size)
    input. ``model`` itself is left untouched.

    Raises:
        BenchError: the forward pass fails.
    """
    inputs = torch.randn(batch, in_channels, size, size)
    model.eval()
    try:
        with torch.no_grad():
            output_shape = list(model(inputs).shape)
    except RuntimeError as exc:
        raise BenchError(
            f"{name}: the forward pass on a {tuple(inputs.shape)} input failed: {exc}"
        ) from exc
    return CostProfile(
        architecture=name,
        config_hash=config_hash,
        input_shape=list(inputs.shape),
        output_shape=output_shape,
        train=form_cost(model, inputs),
        deploy=form_cost(deploy(copy.deepcopy(model)), inputs),
        counter=counter_name(),
        torch=str(torch.__version__),
        python=platform.python_version(),
    )
