"""The deploy form of a model: every re-parameterisable block fused, its training branches gone."""
from __future__ import annotations

from torch import nn

from ..blocks.fusion import Reparameterizable


def deploy(model: nn.Module) -> nn.Module:
    """Fuse, in place, every block of ``model`` that has a deploy form; returns ``model``.

    Fusion folds BN running statistics into the convs, so outputs match the training form in
    eval mode. Idempotent: deploying a deployed model changes nothing.
    """
    for module in list(model.modules()):
        if isinstance(module, Reparameterizable):
            module.reparameterize()
    return model
