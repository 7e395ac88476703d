"""The designs of a space that place every block it can place, at every wiring it meets: what a
per-block latency table (:mod:`bench.arch.latency_table`) must time, found from the wiring plans
alone (nothing is built).

An entry of ``vary`` that changes the channels or stride of another entry's blocks (the width
multiplier changes all of them; an up block that maps to the skip width changes the decoder
block's input) is crossed with that entry; every other entry is varied one at a time
(:func:`bench.search.enumeration.one_at_a_time`)."""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any, Callable, Optional

import optuna

from ..arch.assemble import Plan, plan_architecture
from ..arch.config import Architecture, resolve_architecture
from ..arch.latency_table import LatencyTable, block_key, constant_key
from ..core.errors import BenchError
from .enumeration import entry_values, one_at_a_time
from .space import SearchSpace
from .study import FixedTrial, sample_overrides


def sample_architecture(space: SearchSpace, sample: dict[str, Any]) -> Architecture:
    """The resolved architecture of one sample (the parameters a trial of ``space`` holds)."""
    return resolve_architecture(space.architecture, sample_overrides(FixedTrial(sample), space))


def _plan(space: SearchSpace, sample: dict[str, Any]) -> Optional[Plan]:
    try:
        return plan_architecture(sample_architecture(space, sample))
    except BenchError:  # a combination whose contract fails places nothing
        return None


def _owner(path: str, entries: list[str]) -> Optional[str]:
    """The ``vary`` entry that sets the block at config path ``path``, if one does."""
    return next((e for e in entries if e == path or e.startswith(f"{path}.") or path.startswith(f"{e}.")), None)


def crossings(space: SearchSpace, size: int) -> dict[str, tuple[str, ...]]:
    """For each entry, the entries that change how its blocks are wired (see the module
    docstring), found by changing one entry at a time from the base sample."""
    values = entry_values(space)
    entries = list(values)
    base = {k: v for part in (vs[0] for vs in values.values()) for k, v in part.items()}
    base_plan = _plan(space, base)
    if base_plan is None:
        raise BenchError(f"space {space.name!r}: its base sample (every entry's first value) cannot be planned")
    before = [(p.path, block_key(p, size)) for p in base_plan.placements()]
    crossed: dict[str, set[str]] = defaultdict(set)
    for entry, options in values.items():
        for option in options[1:]:
            sample = {k: v for k, v in base.items() if not (k == entry or k.startswith(f"{entry}."))} | option
            plan = _plan(space, sample)
            if plan is None:
                continue
            after = [(p.path, block_key(p, size)) for p in plan.placements()]
            if len(after) != len(before):  # depths changed: every slot is wired anew
                changed = {path for path, _ in after}
            else:
                changed = {path for (path, a), (_, b) in zip(after, before) if a != b}
            for path in changed:
                owner = _owner(path, entries)
                if owner is not None and owner != entry:
                    crossed[owner].add(entry)
    return {entry: tuple(e for e in entries if e in crossed[entry]) for entry in entries}


def block_cover(space: SearchSpace, size: int) -> list[Architecture]:
    """Architectures of ``space`` that together place every block it can place at ``size``
    (combinations whose contract fails are left out)."""
    found = []
    for sample in one_at_a_time(space, crossings(space, size)):
        try:
            arch = sample_architecture(space, sample)
            plan_architecture(arch)
        except BenchError:
            continue
        found.append(arch)
    return found


def random_designs(space: SearchSpace, size: int, count: int, seed: int, excluded: frozenset[str] = frozenset(),
                   accept: Callable[[Architecture], bool] = lambda arch: True) -> list[Architecture]:
    """Up to ``count`` distinct designs of ``space`` drawn at random (seeded) that plan, are not in
    ``excluded`` (config hashes) and that ``accept`` takes; fewer when the space holds fewer."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    found: dict[str, Architecture] = {}
    for _ in range(200 * count):
        arch = resolve_architecture(space.architecture, sample_overrides(study.ask(), space))
        if arch.hash in excluded or arch.hash in found:
            continue
        try:
            plan_architecture(arch)
        except BenchError:  # a combination whose contract fails
            continue
        if not accept(arch):
            continue
        found[arch.hash] = arch
        if len(found) == count:
            break
    return list(found.values())


def build_latency_table(space: SearchSpace, size: int, table: LatencyTable, calibration: int = 12, seed: int = 0,
                        progress: Callable[[int, int, int], None] = lambda done, total, added: None) -> list[Architecture]:
    """Time into ``table`` every block ``space`` can place at ``size`` that it lacks, with
    ``calibration`` random designs of each encoder width of the space timed whole beside them
    (for the scale and constants, :meth:`LatencyTable.add`). Returns the covering architectures."""
    archs = block_cover(space, size)
    table.add(archs, size, calibration_designs(space, size, archs, calibration, seed), progress)
    return archs


def calibration_designs(space: SearchSpace, size: int, archs: list[Architecture], count: int,
                        seed: int = 0) -> list[Architecture]:
    """``count`` random designs of ``space`` for each encoder width that ``archs`` place
    (:func:`bench.arch.latency_table.constant_key`)."""
    found = []
    for key in dict.fromkeys(constant_key(a, size) for a in archs):
        found += random_designs(space, size, count, seed, accept=lambda a, key=key: constant_key(a, size) == key)
    return found


def check_latency_table(path: Path, space: SearchSpace, size: int) -> LatencyTable:
    """The table at ``path``, checked to be this machine's and to predict every design of
    ``space`` at ``size``.

    Raises:
        BenchError: no table, another machine's, or one that lacks blocks or the constant, with the
            command that adds them.
    """
    table = LatencyTable.load(path)
    build = f"`bench latency-table build --space {space.source or space.name} --size {size}`"
    for arch in block_cover(space, size):
        plan = plan_architecture(arch)
        if table.missing(plan, size) or constant_key(arch, size) not in table.constants:
            raise BenchError(f"latency table {path} cannot predict space {space.name!r} at {size} px (it lacks "
                             f"blocks of {arch.name} or the constant {constant_key(arch, size)}); run {build}, "
                             "or use --latency measured.")
    return table
