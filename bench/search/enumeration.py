"""Every sample of a finite space, as the Optuna parameters a trial of it would hold.

A tabulated benchmark trains each of them; a replay looks each sampled trial up by its
parameters. Parameter names are those :func:`bench.search.study.sample_overrides` suggests:
``<slot>.type`` for a block choice, ``<slot>.<block>.<param>`` for its conditional parameters,
and the config path for a plain value.
"""
from __future__ import annotations

import itertools
import json
from typing import Any

from ..core.errors import BenchError
from .space import BlockChoice, Distribution, SearchSpace


def distribution_values(name: str, dist: Distribution) -> list[Any]:
    """Every value ``dist`` can draw, in order.

    Raises:
        BenchError: a float range without a step (not finite).
    """
    if dist.kind == "choices":
        return list(dict.fromkeys(dist.choices))
    if dist.kind == "int":
        step = int(dist.step or 1)
        if dist.log and step == 1:
            return list(range(int(dist.low), int(dist.high) + 1))
        return list(range(int(dist.low), int(dist.high) + 1, step))
    if dist.step is None:
        raise BenchError(f"{name}: a float range without a step has no end of values; give it a step or "
                         "choices to enumerate the space.")
    count = int((dist.high - dist.low) / dist.step + 1e-9) + 1
    return [round(dist.low + i * dist.step, 12) for i in range(count)]


def enumerate_samples(space: SearchSpace) -> list[dict[str, Any]]:
    """Every sample of ``space``, each the parameter dict of the trial that draws it, in a fixed
    order (the space file's order, the last entry varying fastest).

    Raises:
        BenchError: a range that cannot be enumerated (a float range without a step).
    """
    per_entry: list[list[dict[str, Any]]] = []
    for path, dist in space.vary.items():
        if isinstance(dist, BlockChoice):
            options = []
            for block, params in dist.options.items():
                names = [f"{path}.{block}.{p}" for p in params]
                values = [distribution_values(n, d) for n, d in zip(names, params.values())]
                options += [{f"{path}.type": block, **dict(zip(names, combo))} for combo in itertools.product(*values)]
            per_entry.append(options)
        else:
            per_entry.append([{path: v} for v in distribution_values(path, dist)])
    return [dict(kv for part in combo for kv in part.items()) for combo in itertools.product(*per_entry)]


def sample_key(params: dict[str, Any]) -> str:
    """A canonical text of a parameter dict (sorted keys), to look samples up by."""
    return json.dumps(params, sort_keys=True, default=str)
