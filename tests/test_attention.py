"""Attention blocks: neighbourhood attention against a brute-force reference, and their contracts."""
from __future__ import annotations

import math

import pytest
import torch

from bench.arch.assemble import build_model
from bench.blocks.multibranch import MultiBranchDW
from bench.blocks.neighborhood_attention import NeighborhoodAttention2D
from bench.arch.config import resolve_architecture
from bench.core.errors import ConfigError


def brute_force_neighborhood_attention(na: NeighborhoodAttention2D, x: torch.Tensor) -> torch.Tensor:
    """One query at a time: the k x k window shifted inside the map, bias at key - query + k - 1."""
    b, h, w, c = x.shape
    k, heads = na.kernel_size, na.heads
    d = c // heads
    q, key, v = na.qkv(x).reshape(b, h, w, 3, heads, d).unbind(3)
    out = torch.zeros(b, h, w, heads, d)
    for i in range(h):
        for j in range(w):
            i0 = min(max(i - k // 2, 0), h - k)
            j0 = min(max(j - k // 2, 0), w - k)
            for n in range(heads):
                logits = torch.zeros(b, k, k)
                for a in range(k):
                    for s in range(k):
                        ki, kj = i0 + a, j0 + s
                        logits[:, a, s] = (q[:, i, j, n] * na.scale * key[:, ki, kj, n]).sum(-1) \
                            + na.rpb[n, ki - i + k - 1, kj - j + k - 1]
                attn = logits.reshape(b, k * k).softmax(-1).reshape(b, k, k)
                window = v[:, i0:i0 + k, j0:j0 + k, n]  # (B, k, k, d)
                out[:, i, j, n] = (attn[..., None] * window).sum((1, 2))
    return na.proj(out.reshape(b, h, w, c))


@pytest.mark.parametrize("k,h,w", [(3, 5, 7), (5, 7, 6), (3, 3, 3)])
def test_neighborhood_attention_matches_brute_force_at_borders(k, h, w):
    torch.manual_seed(0)
    na = NeighborhoodAttention2D(8, heads=2, kernel_size=k)
    with torch.no_grad():
        na.rpb.normal_()  # a bias large enough that a wrong index shows
        x = torch.randn(2, h, w, 8)
        torch.testing.assert_close(na(x), brute_force_neighborhood_attention(na, x), atol=1e-6, rtol=1e-5)


def contract_error(name, overrides) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        build_model(resolve_architecture(name, overrides))
    return info.value


def test_attention_heads_must_divide_channels():
    error = contract_error("lmnet", ["bottleneck.heads=5"])
    assert error.path == "bottleneck.heads"
    assert "5 attention heads do not divide the 372 channels of the pooled pyramid" in str(error)
    error = contract_error("lmnet", ["skips.block.heads=5"])
    assert error.path == "skips.block.heads" and "12 -> 12 channels" in str(error)


def test_context_module_refused_where_its_pooling_cannot_work(run_cli):
    result = run_cli("profile", "alnet", "--size", "256", "--set", "bottleneck.pool=large_kernel")
    assert result.exit_code == 2
    assert "'lraspp' needs a feature map of at least 49x49" in result.output
    assert "(stride 32) a 256 px input gives 8x8" in result.output
    assert "Use --size 1568 or more" in result.output


def test_neighborhood_window_larger_than_the_map_is_refused(run_cli):
    result = run_cli("profile", "lmnet", "--size", "64", "--set", "skips.block.kernel_size=9")
    assert result.exit_code == 2
    assert result.output.startswith("Error: --set skips.block.kernel_size=9: skips.block:")
    assert "at skip level 4 (stride 8) a 64 px input gives 8x8" in result.output


def test_lmnet_starts_from_the_reference_initialisation():
    """LM-Net's code initialises its SE convs with kaiming_normal_ and its global attention with
    trunc_normal_(std=.02) and zero biases; training from scratch depends on it."""
    model = build_model(resolve_architecture("lmnet"), seed=0)
    widest = max((m for m in model.modules() if isinstance(m, MultiBranchDW)), key=lambda m: m.se.reduce.weight.numel())
    for conv in (widest.se.reduce, widest.se.expand):
        fan_in = conv.weight.shape[1]
        assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / fan_in), rel=0.05)  # PyTorch's: 2.45x less
    attention = model.bottleneck.attention
    for linear in (attention.qkv, attention.proj):
        assert linear.weight.std().item() == pytest.approx(0.02, rel=0.05)  # PyTorch's default: 0.030
        assert linear.weight.abs().max().item() <= 2.0 and torch.count_nonzero(linear.bias) == 0
