"""MAC counting: the handles, the conventions, and a cross-check against a second counter."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from bench.arch.assemble import build_model
from bench.blocks import Interpolate
from bench.arch.config import builtin_architectures, resolve_architecture
from bench.arch.counting import count_macs, flop_counter_macs


class ConvNet(nn.Module):
    """Conv-only model with every conv flavour the blocks use."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1),
            nn.Conv2d(16, 16, 5, padding="same", groups=4),  # traces to _convolution_mode
            nn.Conv2d(16, 16, (7, 1), padding="same", dilation=2, groups=16),
            nn.Conv2d(16, 32, 3, stride=2, padding=1, bias=False),
            nn.ConvTranspose2d(32, 8, 2, stride=2),
            nn.Conv2d(8, 2, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def test_fvcore_with_handles_agrees_with_flop_counter_mode_on_conv_only_models():
    model, x = ConvNet(), torch.randn(2, 3, 24, 20)
    ours = count_macs(model, x)
    theirs = flop_counter_macs(model, x)
    assert ours.total == sum(theirs.values()) > 0
    assert ours.uncounted_ops == {}


@pytest.mark.parametrize("name", sorted(builtin_architectures()))
def test_convolution_macs_of_every_builtin_agree_between_counters(name):
    model, x = build_model(resolve_architecture(name)), torch.randn(1, 3, 64, 64)
    assert count_macs(model, x).by_operator["conv"] == flop_counter_macs(model, x)["aten.convolution"]


@pytest.mark.parametrize("mode,taps", [("nearest", 0), ("bilinear", 2), ("bicubic", 4)])
def test_interpolation_is_counted_as_a_separable_filter(mode, taps):
    up, x = Interpolate(5, 5, mode=mode), torch.randn(1, 5, 6, 4)
    width_pass, height_pass = 5 * 6 * 8, 5 * 12 * 8  # (C, H_in, W_out), (C, H_out, W_out)
    count = count_macs(up, x)
    assert count.total == taps * (width_pass + height_pass)
    assert count.uncounted_ops == {}


def test_batch_norm_counts_two_per_element_with_affine_one_without():
    x = torch.randn(2, 4, 5, 5)
    affine = nn.Sequential(nn.BatchNorm2d(4))
    assert count_macs(affine, x).total == 2 * x.numel()
    assert affine.training  # the mode is restored
    assert count_macs(nn.BatchNorm2d(4, affine=False), x).total == x.numel()


def test_operators_nobody_counts_are_reported_not_hidden():
    class Cumsum(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.relu(x).sigmoid().cumsum(dim=1)

    count = count_macs(Cumsum(), torch.randn(1, 3, 4, 4))
    assert count.uncounted_ops == {"aten::cumsum": 1}
    assert count.zero_cost_ops == {"aten::sigmoid": 1}
