"""A design: a network built from a resolved architecture for one input size, measured on demand.

Sweeps compute every before-training objective from a :class:`Design` (see
:mod:`bench.search.objectives`): its cost record (parameters, MACs and paper-FLOPs of the train and
deploy forms) and its counted peak memory, both kept in the machine's cost cache, and its latency, each
measured once, when first asked.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from torch import nn

from ..arch.assemble import build_checked
from ..arch.config import Architecture
from ..arch.cost_cache import cached_forward_peak_memory, cached_profile
from ..arch.latency import Latency, Protocol, measure_latency
from ..arch.memory import PeakMemory
from ..arch.profile import CostProfile


@dataclass
class Design:
    """``model`` built from ``arch`` for (1, in_channels, size, size) inputs."""

    arch: Architecture
    model: nn.Module
    size: int
    latency_protocol: Protocol = field(default_factory=Protocol)

    @classmethod
    def build(cls, arch: Architecture, size: int, seed: int | None = None,
              latency_protocol: Protocol | None = None) -> "Design":
        """Plan, check the input size, build (see :func:`bench.arch.assemble.build_checked`)."""
        return cls(arch, build_checked(arch, size, seed), size, latency_protocol or Protocol())

    @property
    def in_channels(self) -> int:
        return int(self.arch.config["in_channels"])

    @cached_property
    def cost(self) -> CostProfile:
        """Parameters, MACs and paper-FLOPs of the train and deploy forms (counted once per machine:
        :mod:`bench.arch.cost_cache`)."""
        return cached_profile(self.model, self.arch.name, self.arch.hash, self.in_channels, self.size)

    @cached_property
    def memory(self) -> PeakMemory:
        """Counted peak memory of one forward pass of the deploy form (counted once per machine,
        like :attr:`cost`)."""
        return cached_forward_peak_memory(self.model, self.arch.hash, self.in_channels, self.size)

    @cached_property
    def latency(self) -> Latency:
        """Latency of the deploy form under ``latency_protocol``."""
        return measure_latency(self.model, self.in_channels, self.size, protocol=self.latency_protocol)

    def measured(self, name: str) -> bool:
        """Whether ``cost``, ``memory`` or ``latency`` has been measured already."""
        return name in self.__dict__
