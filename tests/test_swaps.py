"""Every feature block swaps into TinyU-Net's block slots, every context module into the
bottleneck of TinyU-Net and U-Lite: each builds, runs at 64x64 and is fully counted."""
from __future__ import annotations

import pytest
import torch

from bench.arch.assemble import build_model
from bench.blocks import BLOCKS
from bench.blocks.registry import CONTEXT, FEATURE
from bench.arch.config import resolve_architecture
from bench.core.errors import ConfigError
from bench.arch.counting import count_macs

# Parameters that fit the swapped-into widths, where a default does not (heads must divide
# 64..512 for LFT, and the pooled pyramid for GFT); written as --set values.
FITTING = {"lft": ["heads=8"], "gft": ["heads=8"], "axial_dw": None, "se": None}


def swap_sets(slot: str, name: str) -> list[str]:
    return [f"{slot}.type={name}"] + [f"{slot}.{p}" for p in FITTING.get(name) or []]


def builds_runs_and_counts(arch_name: str, overrides: list[str]) -> None:
    arch = resolve_architecture(arch_name, overrides)
    model = build_model(arch).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert model(x).shape == (1, arch.config["classes"], 64, 64)
    assert count_macs(model, x).uncounted_ops == {}


# Channel-keeping blocks (axial_dw, se) cannot map 3 -> 64 and are refused by contract instead.
FEATURE_SWAPS = [n for n in BLOCKS.names([FEATURE]) if FITTING.get(n, []) is not None]


@pytest.mark.parametrize("name", FEATURE_SWAPS)
@pytest.mark.parametrize("slot", ["encoder.block", "decoder.block"])
def test_feature_block_swaps_into_tinyunet(name, slot):
    # encoder.block carries the decoder through its tie; decoder.block.type unties the decoder
    builds_runs_and_counts("tinyunet", swap_sets(slot, name))


@pytest.mark.parametrize("name", BLOCKS.names([CONTEXT]))
@pytest.mark.parametrize("arch", ["tinyunet", "ulite"])
def test_context_module_fills_the_bottleneck(arch, name):
    builds_runs_and_counts(arch, swap_sets("bottleneck", name))


def test_channel_keeping_blocks_are_refused_where_channels_change():
    with pytest.raises(ConfigError, match="keeps the channel count"):
        build_model(resolve_architecture("tinyunet", ["encoder.block.type=se"]))


@pytest.mark.parametrize("skip_block", ["identity", "lft"])
def test_skip_paths_swap_into_tinyunet(skip_block):
    builds_runs_and_counts(
        "tinyunet", ["skips.gather=multiscale", *swap_sets("skips.block", skip_block)]
    )
