"""Deploy forms: fused outputs equal training outputs, parameters drop, deploying is idempotent."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import bench
from bench.arch.assemble import build_model
from bench.blocks import MultiBranchDW, RepVGG
from bench.blocks.repvgg import RepVGGDown
from bench.arch.config import resolve_architecture
from bench.arch.counting import count_macs, count_params


def randomize_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    """BN statistics and affine parameters far from their identity defaults."""
    g = torch.Generator().manual_seed(seed)
    for bn in model.modules():
        if isinstance(bn, nn.BatchNorm2d):
            bn.running_mean.copy_(torch.rand(bn.num_features, generator=g) * 2 - 1)
            bn.running_var.copy_(torch.rand(bn.num_features, generator=g) * 1.5 + 0.5)
            bn.weight.data.copy_(torch.rand(bn.num_features, generator=g) + 0.5)
            bn.bias.data.copy_(torch.rand(bn.num_features, generator=g) - 0.5)
    return model


def train_a_few_steps(model: nn.Module, shape: tuple, steps: int = 3) -> nn.Module:
    """Adam steps on a regression to random targets: weights move off their initialisation and
    BN running statistics come from the batches, as in real training."""
    torch.manual_seed(1)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    x = torch.randn(shape)
    target = torch.randn_like(model(x)).detach()
    for _ in range(steps):
        optimizer.zero_grad()
        nn.functional.mse_loss(model(x), target).backward()
        optimizer.step()
    return model.eval()


def max_deploy_diff(model: nn.Module, x: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        before = model(x)
        after = bench.deploy(copy.deepcopy(model))(x)
    return (before - after).abs().max().item()


BLOCKS = [
    (lambda: RepVGG(16, 16), 16),
    (lambda: RepVGG(8, 24), 8),
    (lambda: RepVGGDown(8, 24), 8),
    (lambda: MultiBranchDW(3, 12), 3),
    (lambda: MultiBranchDW(12, 12, large_kernel=7), 12),
]


@pytest.mark.parametrize("make,c_in", BLOCKS)
def test_block_deploy_matches_train_with_random_bn_statistics(make, c_in):
    block = randomize_bn(make())
    assert max_deploy_diff(block, torch.randn(2, c_in, 13, 11)) <= 1e-4


@pytest.mark.parametrize("make,c_in", BLOCKS)
def test_block_deploy_matches_train_after_optimiser_steps(make, c_in):
    block = train_a_few_steps(make(), (4, c_in, 12, 12))
    assert max_deploy_diff(block, torch.randn(2, c_in, 12, 12)) <= 1e-4


def test_repvgg_64_parameter_counts():
    block = RepVGG(64, 64)
    assert count_params(block) == 41_344
    bench.deploy(block)
    assert count_params(block) == 36_928
    assert not any(isinstance(m, nn.BatchNorm2d) for m in block.modules())


def test_deploy_removes_multibranch_training_branches_and_is_idempotent():
    block = randomize_bn(MultiBranchDW(12, 12)).eval()
    x = torch.randn(1, 12, 9, 9)
    bench.deploy(block)
    once = (count_params(block), block(x))
    bench.deploy(block)
    assert count_params(block) == once[0] == 2286 - 22 * 24
    assert torch.equal(block(x), once[1])
    assert not hasattr(block, "branches")


@pytest.mark.parametrize("name", ["alnet", "lmnet"])
def test_whole_network_deploy_matches_train_with_random_bn_statistics(name):
    model = randomize_bn(build_model(resolve_architecture(name)))
    assert max_deploy_diff(model, torch.randn(2, 3, 64, 64)) <= 1e-4


@pytest.mark.parametrize("name", ["alnet", "lmnet"])
def test_whole_network_deploy_matches_train_after_optimiser_steps(name):
    model = train_a_few_steps(build_model(resolve_architecture(name)), (2, 3, 64, 64))
    assert max_deploy_diff(model, torch.randn(2, 3, 64, 64)) <= 1e-4


def test_lmnet_reproduces_the_reference_counts():
    model = build_model(resolve_architecture("lmnet", ["classes=2"]))
    x = torch.randn(1, 3, 256, 256)
    train = count_macs(model, x)
    assert count_params(model) == 3_966_566
    assert abs(train.total - 5.393e9) / 5.393e9 <= 0.03 and train.uncounted_ops == {}
    bench.deploy(model)
    deployed = count_macs(model, x)
    assert count_params(model) == 3_934_886
    assert abs(deployed.total - 5.122e9) / 5.122e9 <= 0.03 and deployed.uncounted_ops == {}


def test_alnet_deploy_parameters_within_five_percent_of_the_paper():
    model = build_model(resolve_architecture("alnet", ["classes=2"]))
    backbone = lambda: sum(count_params(m) for m in (model.stem, model.encoder, model.downs))
    assert backbone() == 3_210_752  # half-width RepVGG-A1, train form (REFERENCE.md)
    bench.deploy(model)
    assert backbone() == 2_879_040
    assert abs(count_params(model) - 3.45e6) / 3.45e6 <= 0.05
