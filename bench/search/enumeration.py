"""Every sample of a finite space, as the Optuna parameters a trial of it would hold.

A tabulated benchmark trains each of them; a replay looks each sampled trial up by its
parameters. Parameter names are those :func:`bench.search.study.sample_overrides` suggests:
``<slot>.type`` for a block choice, ``<slot>.<block>.<param>`` for its conditional parameters,
and the config path for a plain value.
"""
from __future__ import annotations

import itertools
import json
from typing import Any, Optional

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
    per_entry = list(entry_values(space).values())
    return [dict(kv for part in combo for kv in part.items()) for combo in itertools.product(*per_entry)]


def sample_key(params: dict[str, Any]) -> str:
    """A canonical text of a parameter dict (sorted keys), to look samples up by."""
    return json.dumps(params, sort_keys=True, default=str)


def entry_values(space: SearchSpace) -> dict[str, list[dict[str, Any]]]:
    """Per entry of ``vary``, every partial sample it contributes (its parameters only)."""
    values: dict[str, list[dict[str, Any]]] = {}
    for path, dist in space.vary.items():
        if isinstance(dist, BlockChoice):
            options = []
            for block, params in dist.options.items():
                names = [f"{path}.{block}.{p}" for p in params]
                choices = [distribution_values(n, d) for n, d in zip(names, params.values())]
                options += [{f"{path}.type": block, **dict(zip(names, combo))} for combo in itertools.product(*choices)]
            values[path] = options
        else:
            values[path] = [{path: v} for v in distribution_values(path, dist)]
    return values


def one_at_a_time(space: SearchSpace, crossed: Optional[dict[str, tuple[str, ...]]] = None) -> list[dict[str, Any]]:
    """Samples that place every value of every entry at least once: from a base sample (each
    entry's first value), one entry changed at a time, each value crossed with every
    combination of the entries ``crossed`` names for it (those that change how its blocks are
    wired: the width, the up block that sets a decoder block's input channels). Far fewer than
    the whole space (sums of products, not the product of all); what a per-block table needs."""
    values = entry_values(space)
    crossed = crossed or {}
    base = {k: v for part in (vs[0] for vs in values.values()) for k, v in part.items()}
    samples: dict[str, dict[str, Any]] = {}
    for path, options in values.items():
        crossing = [values[c] for c in crossed.get(path, ()) if c in values and c != path] or [[{}]]
        for option in options:
            for combo in itertools.product(*crossing):
                sample = dict(base)
                for part in (option, *combo):
                    entry = next(iter(part)).removesuffix(".type") if part else None
                    sample = {k: v for k, v in sample.items() if entry is None or not _of_entry(k, entry)}
                    sample.update(part)
                samples.setdefault(sample_key(sample), sample)
    return list(samples.values())


def _of_entry(name: str, entry: str) -> bool:
    """Whether parameter ``name`` belongs to the ``vary`` entry ``entry``."""
    return name == entry or name.startswith(f"{entry}.")
