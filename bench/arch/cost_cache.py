"""Counted costs kept once per machine: a design's cost profile (both forms counted by fvcore,
0.4 to 1.35 s) and its counted peak memory (a traced forward pass, 0.03 to 0.2 s) are stored under
the hash of its resolved config, the input shape, the counter and the torch version, so that a
design seen by any earlier study or worker process is not counted again. The counts are
deterministic given that key; the stored entries carry them whole."""
from __future__ import annotations

from dataclasses import asdict
from typing import Any, Callable, Optional, TypeVar

import torch
from torch import nn

from ..core.cache import JsonCache, key_of
from .counting import counter_name
from .memory import PeakMemory, forward_peak_memory
from .profile import CostProfile, FormCost, profile_model

KIND = "costs"
MEMORY_KIND = "memory"
T = TypeVar("T")


def cost_key(config_hash: str, in_channels: int, size: int, batch: int = 1) -> str:
    """The cache key of a design's costs on a (batch, in_channels, size, size) input."""
    return key_of({"config_hash": config_hash, "input_shape": [batch, in_channels, size, size],
                   "counter": counter_name(), "torch": str(torch.__version__)})


def cached_profile(model: nn.Module, name: str, config_hash: str, in_channels: int, size: int,
                   cache: Optional[JsonCache] = None) -> CostProfile:
    """:func:`bench.arch.profile.profile_model` of ``model``, from the cache when this design was
    counted before on this machine (under its own ``name`` then: the hash ignores names)."""
    return _cached(cache or JsonCache(KIND), cost_key(config_hash, in_channels, size),
                   lambda: profile_model(model, name, config_hash, in_channels, size), lambda s: _profile(s, name))


def cached_forward_peak_memory(model: nn.Module, config_hash: str, in_channels: int, size: int,
                               cache: Optional[JsonCache] = None) -> PeakMemory:
    """:func:`bench.arch.memory.forward_peak_memory` of ``model`` (deploy form, batch 1), from the
    cache when this design was counted before on this machine."""
    return _cached(cache or JsonCache(MEMORY_KIND), cost_key(config_hash, in_channels, size),
                   lambda: forward_peak_memory(model, in_channels, size),
                   lambda s: PeakMemory(**{k: int(s[k]) for k in ("peak_activation_bytes", "parameter_bytes",
                                                                   "input_bytes")}))


def _cached(cache: JsonCache, key: str, count: Callable[[], T], read: Callable[[Any], T]) -> T:
    stored = cache.get(key)
    if stored is not None:
        try:
            return read(stored)
        except (TypeError, KeyError, ValueError):  # an entry of another layout: counted again, overwritten
            pass
    counted = count()
    cache.put(key, asdict(counted))
    return counted


def _profile(stored: dict, name: str) -> CostProfile:
    forms = {form: FormCost(**stored[form]) for form in ("train", "deploy")}
    return CostProfile(**{**stored, **forms, "architecture": name})
