"""Peak memory of a forward pass and of a training step, as a cost figure.

Counted, not sampled: a dispatch mode sees every tensor an operator returns, and the bytes of
the storages still alive after each operator are summed; the peak of that sum is the figure.
It is the memory a framework must hold between operators, independent of the allocator, the
machine and the process's other allocations; scratch space inside one kernel (im2col, a
convolution algorithm's workspace) is not seen. Parameters and the input are reported apart.
"""
from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from typing import Any, Callable, Optional

import torch
from torch import Tensor, nn
from torch.multiprocessing.reductions import StorageWeakRef
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from .reparameterize import deploy


class _LiveStorages(TorchDispatchMode):
    """Tracks the bytes of storages created by operators and still referenced somewhere."""

    def __init__(self, ignore: set[int]) -> None:
        super().__init__()
        self.ignore = ignore  # parameters, buffers, the input: views of them allocate nothing
        self.live: dict[int, tuple[StorageWeakRef, int]] = {}
        self.current = 0
        self.peak = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        self._forget_freed()
        for t in tree_flatten(out)[0]:
            if isinstance(t, Tensor) and t.device.type != "meta":
                storage = t.untyped_storage()
                key = storage._cdata
                if key not in self.live and key not in self.ignore:
                    self.live[key] = (StorageWeakRef(storage), storage.nbytes())
                    self.current += storage.nbytes()
        self.peak = max(self.peak, self.current)
        return out

    def _forget_freed(self) -> None:
        for key, (ref, nbytes) in list(self.live.items()):
            if ref.expired():
                del self.live[key]
                self.current -= nbytes


def _storages(tensors) -> dict[int, int]:
    """Bytes per distinct storage."""
    return {t.untyped_storage()._cdata: t.untyped_storage().nbytes() for t in tensors}


@dataclass(frozen=True)
class PeakMemory:
    """Bytes: the peak of operator outputs alive at once (activations, and gradients in a
    training step), beside the parameters and buffers and the input, which exist throughout."""

    peak_activation_bytes: int
    parameter_bytes: int
    input_bytes: int

    @property
    def total_bytes(self) -> int:
        return self.peak_activation_bytes + self.parameter_bytes + self.input_bytes

    def to_dict(self) -> dict[str, int]:
        return {**asdict(self), "total_bytes": self.total_bytes}


def _peak(model: nn.Module, x: Tensor, step: Callable[[nn.Module, Tensor], Any]) -> PeakMemory:
    held, given = _storages(list(model.parameters()) + list(model.buffers())), _storages([x])
    tracker = _LiveStorages(set(held) | set(given))
    with tracker:
        step(model, x)
    return PeakMemory(tracker.peak, sum(held.values()), sum(given.values()))


def forward_peak_memory(model: nn.Module, in_channels: int, size: int, batch: int = 1,
                        form: str = "deploy") -> PeakMemory:
    """Peak memory of one inference forward pass on a (batch, in_channels, size, size) input,
    of the deploy form by default (``model`` is untouched)."""
    net = copy.deepcopy(model).eval()
    if form == "deploy":
        net = deploy(net)

    def forward(m: nn.Module, x: Tensor) -> None:
        with torch.inference_mode():
            m(x)

    return _peak(net, torch.zeros(batch, in_channels, size, size), forward)


def train_step_peak_memory(model: nn.Module, in_channels: int, size: int, batch: int = 2,
                           loss: Optional[Callable[[Tensor], Tensor]] = None) -> PeakMemory:
    """Peak memory of one training step (train mode, forward, loss, backward) on the train form;
    gradients count as activations, optimiser state (which depends on the optimiser) does not.
    ``loss`` maps the output to a scalar (default: its mean)."""
    net = copy.deepcopy(model).train()
    net.zero_grad(set_to_none=True)

    def step(m: nn.Module, x: Tensor) -> None:
        out = m(x)
        (loss(out) if loss is not None else out.mean()).backward()

    return _peak(net, torch.zeros(batch, in_channels, size, size), step)
