"""Limits checked before work starts, so that a hostile or mistaken input is refused with its
figure instead of exhausting memory or time. Each can be raised through the environment.

======================  ==================================  ==========================
limit                   what it bounds                      environment variable
======================  ==================================  ==========================
yaml_bytes              size of an architecture/space file   BENCH_MAX_YAML_BYTES
yaml_aliases            YAML aliases (``*name``) in a file   BENCH_MAX_YAML_ALIASES
yaml_nodes              YAML nodes once aliases are expanded BENCH_MAX_YAML_NODES
yaml_depth              nesting depth of a YAML file         BENCH_MAX_YAML_DEPTH
params                  parameters of a network              BENCH_MAX_PARAMS
blocks                  blocks of a network (depths summed)  BENCH_MAX_BLOCKS
activation_bytes        activations of one forward pass      BENCH_MAX_ACTIVATION_BYTES
image_pixels            pixels of one image                  BENCH_MAX_IMAGE_PIXELS
======================  ==================================  ==========================
"""
from __future__ import annotations

import os

from .errors import BenchError

DEFAULTS = {
    "yaml_bytes": 1_000_000,
    "yaml_aliases": 100,
    "yaml_nodes": 100_000,
    "yaml_depth": 40,
    "params": 200_000_000,  # 0.8 GB of float32 weights; the seed networks have 0.5 to 31 M
    "blocks": 1_000,  # encoder and decoder blocks; the seed networks have under 30
    "activation_bytes": 8 * 2**30,  # one forward pass of the train form at the input size
    "image_pixels": 60_000_000,  # a 7746 x 7746 image; decoded RGB, 180 MB
}


def env_name(name: str) -> str:
    return f"BENCH_MAX_{name.upper()}"


def limit(name: str) -> int:
    """The limit ``name``, from its environment variable or the default.

    Raises:
        BenchError: the variable is set but not a positive whole number.
    """
    raw = os.environ.get(env_name(name))
    if raw is None:
        return DEFAULTS[name]
    try:
        value = int(float(raw))
    except (ValueError, OverflowError):  # "inf", "1e400", "nan"
        value = 0
    if value < 1:
        raise BenchError(f"{env_name(name)}={raw!r} is not a positive whole number; unset it, or set e.g. "
                         f"{env_name(name)}={2 * DEFAULTS[name]}.")
    return value


def how_to_raise(name: str, needed: int) -> str:
    """The sentence that tells a user how to allow more."""
    return f"If that is what you want, set {env_name(name)}={needed} (the limit is {limit(name):,})."
