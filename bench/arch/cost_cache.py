"""Counted costs kept once per machine: a design's cost profile (both forms counted by fvcore,
0.4 to 1.35 s) is stored under the hash of its resolved config, the input shape, the counter and
the torch version, so that a design seen by any earlier study or worker process is not counted
again. The counts are deterministic given that key; the stored profile carries them whole."""
from __future__ import annotations

from dataclasses import asdict
from typing import Optional

import torch
from torch import nn

from ..core.cache import JsonCache, key_of
from .counting import counter_name
from .profile import CostProfile, FormCost, profile_model

KIND = "costs"


def cost_key(config_hash: str, in_channels: int, size: int, batch: int = 1) -> str:
    """The cache key of a design's costs on a (batch, in_channels, size, size) input."""
    return key_of({"config_hash": config_hash, "input_shape": [batch, in_channels, size, size],
                   "counter": counter_name(), "torch": str(torch.__version__)})


def cached_profile(model: nn.Module, name: str, config_hash: str, in_channels: int, size: int,
                   cache: Optional[JsonCache] = None) -> CostProfile:
    """:func:`bench.arch.profile.profile_model` of ``model``, from the cache when this design was
    counted before on this machine (under its own ``name`` then: the hash ignores names)."""
    cache = cache or JsonCache(KIND)
    key = cost_key(config_hash, in_channels, size)
    stored = cache.get(key)
    if stored is not None:
        try:
            return _profile(stored, name)
        except (TypeError, KeyError):  # an entry of another layout: counted again, overwritten
            pass
    profile = profile_model(model, name, config_hash, in_channels, size)
    cache.put(key, asdict(profile))
    return profile


def _profile(stored: dict, name: str) -> CostProfile:
    forms = {form: FormCost(**stored[form]) for form in ("train", "deploy")}
    return CostProfile(**{**stored, **forms, "architecture": name})
