"""Zero-cost proxies: scores of an untrained network that are said to rank networks the way
training would, as NASLib defines them (Abdelfattah et al. 2021, "Zero-Cost Proxies for
Lightweight NAS"; Mellor et al. 2021, "Neural Architecture Search without Training").

Each takes the untrained network and one batch of images ``x`` (B, C, H, W) with labels ``y``
(B, H, W), works on a copy, and returns one number (higher = predicted better, except where the
literature ranks otherwise: the analysis reports the signed rank correlation).
"""
from __future__ import annotations

import copy
import math
from typing import Callable

import torch
from torch import nn

from .losses import SegmentationLoss

WEIGHTED = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)  # the layers NASLib scores
ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.Hardswish, nn.Mish)


def grad_norm(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Sum over weighted layers of the L2 norm of the loss gradient of their weights."""
    net = copy.deepcopy(model).train()
    net.zero_grad()
    loss = SegmentationLoss("ce_dice", 2)(net(x), y)
    loss.backward()
    return float(sum(m.weight.grad.norm() for m in net.modules()
                     if isinstance(m, WEIGHTED) and m.weight.grad is not None))


def synflow(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """SynFlow (Tanaka et al. 2020) as NASLib scores it: every weight made positive, a forward
    pass of an all-ones input in float64 (normalisation layers in eval mode at their initial
    statistics, so they pass values through), the sum of the output back-propagated, then the sum
    over weighted layers of |w * dL/dw|. Returned as its natural log (the raw score overflows
    easily and ranks the same)."""
    net = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        for p in net.parameters():
            p.abs_()
    net.zero_grad()
    out = net(torch.ones((1, *x.shape[1:]), dtype=torch.float64))
    out.sum().backward()
    total = sum(float((m.weight * m.weight.grad).abs().sum().detach()) for m in net.modules()
                if isinstance(m, WEIGHTED) and m.weight.grad is not None)
    return math.log(total) if total > 0 else -math.inf


def naswot(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """NASWOT (Mellor et al. 2021): the binary codes of which activation units are positive for
    each image of the batch; the log-determinant of the Hamming-similarity kernel
    K = C C^T + (1 - C)(1 - C)^T."""
    net = copy.deepcopy(model).train()
    codes: list[torch.Tensor] = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: codes.append((out.detach() > 0).flatten(1).double()))
             for m in net.modules() if isinstance(m, ACTIVATIONS)]
    try:
        with torch.no_grad():
            net(x)
    finally:
        for h in hooks:
            h.remove()
    if not codes:
        return -math.inf
    c = torch.cat(codes, dim=1)
    kernel = c @ c.T + (1 - c) @ (1 - c).T
    sign, logdet = torch.linalg.slogdet(kernel)
    return float(logdet) if sign > 0 else -math.inf


def jacob_cov(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Jacobian covariance (Mellor et al., 2020 version): the correlation matrix of the
    per-image input gradients of the summed output, scored as -sum(log(v + k) + 1/(v + k)) over
    its eigenvalues v, k = 1e-5."""
    net = copy.deepcopy(model).train()
    inputs = x.clone().requires_grad_(True)
    net(inputs).sum().backward()
    jacobians = inputs.grad.flatten(1).double()
    corr = torch.corrcoef(jacobians)
    if not torch.isfinite(corr).all():
        return -math.inf
    v = torch.linalg.eigvalsh(corr).clamp_min(0)
    k = 1e-5
    return float(-(torch.log(v + k) + 1.0 / (v + k)).sum())


PROXIES: dict[str, Callable[[nn.Module, torch.Tensor, torch.Tensor], float]] = {
    "synflow": synflow, "naswot": naswot, "grad_norm": grad_norm, "jacob_cov": jacob_cov}


def zero_cost_scores(model: nn.Module, x: torch.Tensor, y: torch.Tensor, seed: int = 0) -> dict[str, float]:
    """Every proxy of :data:`PROXIES` for ``model`` on the batch ``x`` (B, C, H, W), ``y``
    (B, H, W); the random state is fixed by ``seed`` and restored afterwards."""
    state = torch.get_rng_state()
    try:
        scores = {}
        for name, proxy in PROXIES.items():
            torch.manual_seed(seed)
            scores[name] = proxy(model, x, y)
        return scores
    finally:
        torch.set_rng_state(state)
