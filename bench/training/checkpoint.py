"""Checkpoints: weights plus the resolved config that rebuilds the network, never a pickled module.

Loaded with ``torch.load(weights_only=True)``, so a checkpoint cannot run code.
"""
from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..arch.assemble import build_model
from ..arch.config import Architecture, architecture_from_config
from ..core.errors import BenchError
from ..core.files import atomic

FORMAT = "bench-checkpoint/1"


def save_checkpoint(path: Path, model: nn.Module, arch: Architecture, record: dict[str, Any]) -> None:
    """Write ``model``'s weights, ``arch``'s resolved config and ``record`` (recipe, data, split
    hash, metrics: plain values only) to ``path``."""
    with atomic(path) as tmp:  # a full disk or a kill leaves no half-written checkpoint
        torch.save({"format": FORMAT, "name": arch.name, "config": arch.config, "record": record,
                    "state_dict": model.state_dict()}, tmp)


def load_checkpoint(path: Path) -> tuple[nn.Module, Architecture, dict[str, Any]]:
    """The network rebuilt from the stored config with its weights, the architecture and the record.

    Raises:
        BenchError: not a readable bench checkpoint (empty, truncated, another kind of file,
            Python objects beyond tensors and plain values, a config that is not valid, or
            weights that do not fit the network the config describes), naming the file.
    """
    fix = "Give a model.pt written by bench train, bench compare or a sweep."
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "global" in str(exc).lower():  # it names Python code to call: refused, never run
            raise BenchError(f"{path}: refused: it holds Python objects beyond tensors and plain values, which "
                             f"bench never loads (they could run code). {fix}") from None
        raise BenchError(f"{path}: not a PyTorch checkpoint ({str(exc).splitlines()[0][:120]}). {fix}") from None
    except Exception as exc:  # torch.load reports other files every way: EOFError, IndexError, RuntimeError ...
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}" if str(exc) else type(exc).__name__
        raise BenchError(f"{path}: not a readable checkpoint (empty, truncated or another kind of file; "
                         f"{reason}). {fix}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise BenchError(f"{path}: not a bench checkpoint (expected format {FORMAT}). {fix}")
    if not isinstance(payload.get("state_dict"), dict):
        raise BenchError(f"{path}: the checkpoint has no weights (state_dict). {fix}")
    arch = architecture_from_config(payload.get("config"), path, payload.get("name"))
    model = build_model(arch)
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        detail = " ".join(str(exc).split())[:300]
        raise BenchError(f"{path}: its weights do not fit the network its config describes ({detail}); was it "
                         f"edited, or put together from two checkpoints? {fix}") from None
    record = payload.get("record")
    return model.eval(), arch, record if isinstance(record, dict) else {}
