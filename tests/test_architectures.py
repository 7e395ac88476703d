"""The shipped architectures reproduce the papers' parameter counts and FLOPs."""
from __future__ import annotations

import pytest
import torch

from bench.arch.assemble import build_model
from bench.arch.config import builtin_architectures, resolve_architecture
from bench.arch.counting import count_macs, count_params


def params_of(name, overrides=()):
    return count_params(build_model(resolve_architecture(name, overrides)))


@pytest.mark.parametrize(
    "name,overrides,expected",
    [
        ("tinyunet", ["classes=2"], 481_170),
        ("tinyunet", ["classes=4"], 481_300),
        ("ulite", ["classes=1"], 878_417),
        ("ulite", ["classes=2"], 878_434),
        ("unet", ["classes=2"], 31_037_698),
    ],
)
def test_reference_parameter_counts_exactly(name, overrides, expected):
    assert params_of(name, overrides) == expected


@pytest.mark.parametrize("N,reference", [(1, 1_311_000), (2, 837_000), (4, 600_000), (16, 422_000)])
def test_cmrf_N_sweep_matches_the_reference_within_half_a_thousand(N, reference):
    assert abs(params_of("tinyunet", [f"encoder.block.N={N}"]) - reference) <= 500


@pytest.mark.parametrize(
    "name,classes,paper_flops",
    [("tinyunet", 2, 3.33e9), ("ulite", 1, 1.52e9)],
)
def test_paper_flops_within_three_percent(name, classes, paper_flops):
    model = build_model(resolve_architecture(name, [f"classes={classes}"]))
    macs = count_macs(model, torch.randn(1, 3, 256, 256))
    assert abs(2 * macs.total - paper_flops) / paper_flops <= 0.03
    assert macs.uncounted_ops == {}
    assert not any("conv" in op for op in macs.zero_cost_ops)


@pytest.mark.parametrize("name", sorted(builtin_architectures()))
def test_every_builtin_runs_forward_at_64px(name):
    model = build_model(resolve_architecture(name)).eval()
    classes = resolve_architecture(name).config["classes"]
    with torch.no_grad():
        assert model(torch.randn(2, 3, 64, 64)).shape == (2, classes, 64, 64)


SWAPS = [
    {"encoder.block": "{type: double_conv}"},
    {"encoder.block": "{type: axial_block, kernel_size: 7}"},
    {"encoder.block": "{type: axial_block}", "decoder.block": "{type: double_conv}"},
]


@pytest.mark.parametrize("swap", SWAPS)
def test_swapping_cmrf_out_of_tinyunet_by_file_and_by_set_builds_the_same(swap, write_yaml):
    lines = ["base: tinyunet", *(f"{slot}: {block}" for slot, block in swap.items())]
    by_file = resolve_architecture(write_yaml("swap.yaml", "\n".join(lines) + "\n"))
    by_set = resolve_architecture("tinyunet", [f"{slot}={block}" for slot, block in swap.items()])
    assert by_file.hash == by_set.hash
    model = build_model(by_file).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 64, 64)).shape == (1, 2, 64, 64)


def test_depths_repeat_a_stage_block_at_its_width():
    extra = params_of("tinyunet", ["encoder.depths=[2, 1, 1, 1]"]) - params_of("tinyunet")
    assert extra == (64 * 8 + 16) + 7 * (4 * 9 + 8) + (32 * 64 + 128)  # one CMRF(64, 64, N=8)


def test_width_multiplier_turns_lmnet_into_its_C16_variant():
    arch = resolve_architecture(
        "lmnet", ["width_multiplier=1.3333333", "bottleneck.heads=8", "skips.block.heads=8"]
    )
    model = build_model(arch)
    assert model.bottleneck.project.out_channels == 256  # 192 * 4/3
    assert count_params(model.bottleneck) == 4_315_456  # REFERENCE.md: the C = 16 GFT


def test_width_multiplier_scales_every_width():
    half = build_model(resolve_architecture("tinyunet", ["width_multiplier=0.5"]))
    assert [stage[0].pw2.conv.out_channels for stage in half.encoder] == [32, 64, 128, 256]
    assert half.head.in_channels == 32


@pytest.mark.parametrize("fuse, first", [("concat", "up"), ("concat_skip_first", "skip")])
def test_decoder_concatenation_order(fuse, first):
    """TinyU-Net's and U-Lite's code concatenate [upsampled, skip] (``concat``), milesial's U-Net
    [skip, upsampled]: the authors' state dicts then map onto ours channel for channel."""
    import torch
    from torch import nn

    from bench.arch.network import UDecoder

    seen = []
    decoder = UDecoder([nn.Identity()], [nn.Identity()], fuse=fuse)
    decoder.stages[0].register_forward_hook(lambda m, args, out: seen.append(args[0]))
    up, skip = torch.full((1, 2, 4, 4), 1.0), torch.full((1, 3, 4, 4), 2.0)
    decoder(up, [skip], (4, 4))
    fused = seen[0][0, :, 0, 0].tolist()
    assert fused == ([1.0, 1.0, 2.0, 2.0, 2.0] if first == "up" else [2.0, 2.0, 2.0, 1.0, 1.0])


def test_shipped_architectures_concatenate_in_their_codes_order():
    assert resolve_architecture("tinyunet").config["decoder"]["fuse"] == "concat"
    assert resolve_architecture("ulite").config["decoder"]["fuse"] == "concat"
    assert resolve_architecture("unet").config["decoder"]["fuse"] == "concat_skip_first"
