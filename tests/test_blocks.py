"""Blocks in isolation: exact parameter counts, shapes, contracts, equivalences."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from bench.blocks import BLOCKS, CMRF, AxialDW, ContractViolation, DoubleConv, ULiteBottleneck
from bench.blocks.registry import DOWN, FEATURE, UP
from bench.arch.counting import count_params


def test_cmrf_parameter_count_follows_the_recipe():
    # pw1 3->8 (+BN 16); 7 depthwise 3x3 on 4 channels (36 + BN 8 each); pw2 32->64 (+BN 128)
    assert count_params(CMRF(3, 64, N=8)) == (24 + 16) + 7 * (36 + 8) + (2048 + 128)


def test_cmrf_cascade_runs_on_odd_channels_and_keeps_size():
    block = CMRF(8, 32, N=4).eval()
    seen = {}
    block.cascade[0].register_forward_hook(lambda m, i, o: seen.setdefault("in", i[0]))
    x = torch.randn(2, 8, 9, 7)
    assert block(x).shape == (2, 32, 9, 7)
    squeezed = block.pw1(x)
    assert torch.equal(seen["in"], squeezed[:, 1::2])


def test_cmrf_residual_only_when_channels_match():
    assert CMRF(32, 32, N=4).residual and not CMRF(16, 32, N=4).residual
    assert not CMRF(32, 32, N=4, shortcut=False).residual


@pytest.mark.parametrize("N,out", [(3, 64), (0, 64), (8, 72)])
def test_cmrf_contract_names_N(N, out):
    with pytest.raises(ContractViolation) as info:
        CMRF.check_contract(16, out, N=N)
    assert info.value.param == "N"


def test_axial_dw_matches_same_padding_reference():
    torch.manual_seed(0)
    for dilation in (1, 2, 3):
        block = AxialDW(6, 6, kernel_size=3, dilation=dilation).eval()
        h = nn.Conv2d(6, 6, (3, 1), padding="same", dilation=dilation, groups=6)
        w = nn.Conv2d(6, 6, (1, 3), padding="same", dilation=dilation, groups=6)
        h.load_state_dict(block.dw_h.state_dict())
        w.load_state_dict(block.dw_w.state_dict())
        x = torch.randn(1, 6, 11, 13)
        torch.testing.assert_close(block(x), x + h(x) + w(x))


def test_axial_dw_counts():
    assert count_params(AxialDW(16, 16, kernel_size=7)) == 2 * (16 * 7 + 16)
    assert count_params(AxialDW(16, 16, kernel_size=7, norm=True)) == 2 * (16 * 7 + 16) + 32


def test_ulite_bottleneck_count():
    # pw1 512->128 (+b); 3 axial 3-tap on 128 (2 x (384 + 128) each); BN 512; pw2 512->512 (+b)
    expected = (512 * 128 + 128) + 3 * 2 * (128 * 3 + 128) + 2 * 512 + (512 * 512 + 512)
    assert count_params(ULiteBottleneck(512, 512)) == expected


def test_double_conv_with_and_without_norm():
    assert count_params(DoubleConv(3, 64)) == 3 * 9 * 64 + 128 + 64 * 9 * 64 + 128
    assert count_params(DoubleConv(3, 64, norm=False)) == 3 * 9 * 64 + 64 + 64 * 9 * 64 + 64


SMALL_PARAMS = {"cmrf": {"N": 4}, "lft": {"heads": 2}}  # defaults sized for real widths


@pytest.mark.parametrize("name", BLOCKS.names([FEATURE]))
@pytest.mark.parametrize("channels", [(8, 8), (6, 16)])
def test_every_feature_block_keeps_size_for_allowed_channels(name, channels):
    entry = BLOCKS.get(name, "test")
    c_in, c_out = channels
    if entry.same_channels and c_in != c_out:
        with pytest.raises(ContractViolation):
            entry.check(c_in, c_out, entry.resolve_params({}, "test"))
        return
    params = entry.resolve_params(SMALL_PARAMS.get(name, {}), "test")
    entry.check(c_in, c_out, params)
    block = entry.build(c_in, c_out, params).eval()
    assert block(torch.randn(2, c_in, 10, 6)).shape == (2, c_out, 10, 6)


@pytest.mark.parametrize("name", BLOCKS.names([DOWN, UP]))
def test_sampling_operators_scale_by_two(name):
    entry = BLOCKS.get(name, "test")
    c_out = 8 if entry.same_channels else 12
    block = entry.build(8, c_out, entry.resolve_params({}, "test")).eval()
    y = block(torch.randn(1, 8, 8, 12))
    factor = 0.5 if entry.kind == DOWN else 2
    assert y.shape == (1, c_out, int(8 * factor), int(12 * factor))


def test_registry_lists_every_block_once_with_a_summary():
    names = BLOCKS.names()
    assert len(names) == len(set(names))
    assert {"double_conv", "cmrf", "axial_dw", "axial_block", "ulite_bottleneck", "maxpool",
            "strided_conv", "interpolate", "conv_transpose", "conv1x1", "identity"} <= set(names)
    assert all(entry.summary for entry in BLOCKS)


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
@pytest.mark.parametrize("shape", [(2, 3, 1, 1), (2, 3, 1, 5), (2, 3, 2, 3), (1, 4, 9, 16)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_fast_upsampling_backward_equals_pytorchs(mode, shape, channels_last):
    import torch.nn.functional as F

    from bench.blocks.upsample2x import upsample2x

    x = torch.randn(*shape, dtype=torch.float64)
    x = x.contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    x.requires_grad_()
    ours = upsample2x(x, mode)
    assert ours.grad_fn.name().endswith("_Upsample2xBackward")  # the fast backward, not PyTorch's
    theirs = F.interpolate(x, scale_factor=2.0, mode=mode, align_corners=False)
    assert torch.equal(ours, theirs)  # the forward is PyTorch's own
    g = torch.randn_like(ours)
    (ours_grad,), (their_grad,) = torch.autograd.grad(ours, x, g), torch.autograd.grad(theirs, x, g)
    torch.testing.assert_close(ours_grad, their_grad, rtol=0, atol=1e-12)


def test_fast_upsampling_keeps_the_input_dtype_under_autocast_and_steps_aside_when_tracing():
    from bench.blocks.upsample2x import upsample2x

    x = torch.randn(1, 2, 4, 4, dtype=torch.bfloat16, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        upsample2x(x, "bicubic").float().sum().backward()
    assert x.grad.dtype == torch.bfloat16 and x.grad.shape == x.shape
    traced = torch.jit.trace(lambda t: upsample2x(t, "bilinear"), torch.randn(1, 2, 4, 4, requires_grad=True))
    assert "aten::upsample_bilinear2d" in str(traced.graph)  # cost counting and export see PyTorch's op


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
def test_fast_upsampling_backward_sums_in_float32_under_bf16_as_pytorchs_kernel_does(mode):
    """Against float64: the fast backward's error must not exceed PyTorch's own bf16 kernel's
    (before: 0.038 / 0.068 against 0.015 / 0.016, from summing in bf16)."""
    import torch.nn.functional as F

    from bench.blocks.upsample2x import pytorch_backward, upsample2x

    torch.manual_seed(0)
    x, weights = torch.randn(2, 8, 24, 24), torch.randn(2, 8, 48, 48)
    exact = x.double().requires_grad_()
    (F.interpolate(exact, scale_factor=2.0, mode=mode, align_corners=False) * weights.double()).sum().backward()
    errors = []
    for context in (lambda: torch.autocast("cpu", dtype=torch.bfloat16), pytorch_backward):
        leaf = x.clone().requires_grad_()
        with context():
            with torch.autocast("cpu", dtype=torch.bfloat16):
                (upsample2x(leaf.to(torch.bfloat16), mode).float() * weights).sum().backward()
        errors.append(float((leaf.grad.double() - exact.grad).abs().max()))
    ours, pytorchs = errors
    assert ours <= pytorchs * 1.1 + 1e-3, (ours, pytorchs)


def test_fast_upsampling_works_under_forward_mode_ad_and_torch_func():
    import torch.autograd.forward_ad as forward_ad
    import torch.nn.functional as F
    from torch.func import grad, jvp, vmap

    from bench.blocks.upsample2x import upsample2x

    torch.manual_seed(1)
    x, tangent = torch.randn(1, 2, 5, 6, dtype=torch.float64), torch.randn(1, 2, 5, 6, dtype=torch.float64)
    weights = torch.randn(1, 2, 10, 12, dtype=torch.float64)
    reference = lambda t: F.interpolate(t, scale_factor=2.0, mode="bicubic", align_corners=False)
    loss = lambda t: (upsample2x(t, "bicubic") * weights).sum()
    leaf = x.clone().requires_grad_()
    expected = torch.autograd.grad((reference(leaf) * weights).sum(), leaf)[0]
    assert torch.allclose(grad(loss)(x.detach().requires_grad_()), expected, atol=1e-12)
    _, pushed = jvp(lambda t: upsample2x(t, "bicubic"), (x.detach().requires_grad_(),), (tangent,))
    assert torch.equal(pushed, reference(tangent))
    with forward_ad.dual_level():
        dual = forward_ad.make_dual(x.detach().requires_grad_(), tangent)
        assert torch.equal(forward_ad.unpack_dual(upsample2x(dual, "bicubic")).tangent, reference(tangent))
    batch = torch.randn(3, 1, 2, 5, 6, dtype=torch.float64, requires_grad=True)
    assert vmap(grad(loss))(batch).shape == batch.shape
