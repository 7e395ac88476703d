"""Checkpoints: weights plus the resolved config that rebuilds the network, never a pickled module.

Loaded with ``torch.load(weights_only=True)``, so a checkpoint cannot run code.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from .assemble import build_model
from .config import Architecture
from .errors import BenchError

FORMAT = "bench-checkpoint/1"


def save_checkpoint(path: Path, model: nn.Module, arch: Architecture, record: dict[str, Any]) -> None:
    """Write ``model``'s weights, ``arch``'s resolved config and ``record`` (recipe, data, split
    hash, metrics: plain values only) to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": FORMAT, "name": arch.name, "config": arch.config, "record": record,
                "state_dict": model.state_dict()}, path)


def load_checkpoint(path: Path) -> tuple[nn.Module, Architecture, dict[str, Any]]:
    """The network rebuilt from the stored config with its weights, the architecture and the record.

    Raises:
        BenchError: not a readable bench checkpoint.
    """
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError) as exc:
        raise BenchError(f"{path}: cannot read this checkpoint ({exc}).") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise BenchError(f"{path}: not a bench checkpoint (expected format {FORMAT}).")
    arch = Architecture(payload["name"], payload["config"], Path(path))
    model = build_model(arch)
    model.load_state_dict(payload["state_dict"])
    return model.eval(), arch, payload["record"]
