"""No pruning: every feasible design trains all its epochs."""
from __future__ import annotations

from .base import Pruner


class NoPruner(Pruner):
    name = "none"
    summary = "every feasible design trains all its epochs"

    @property
    def active(self) -> bool:
        return False

    def describe(self) -> str:
        return "none"
