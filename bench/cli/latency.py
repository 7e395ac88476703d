"""``bench latency-table``: build this machine's table of measured block latencies for a space, and
show what a table holds (see :mod:`bench.arch.latency_table`)."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import click

from ..core.errors import BenchError
from .common import SIZE, cli, console


@cli.group("latency-table")
def latency_table() -> None:
    """Latency predicted from measured blocks: a table per machine, built once, read by sweeps
    run with --latency predicted."""


def _path(table: Optional[str]) -> Path:
    from ..arch.latency_table import default_path

    return Path(table) if table else default_path()


@latency_table.command("build")
@click.option("--space", "space_ref", required=True, help="Search space whose blocks to time (built-in or path).")
@click.option("--size", type=SIZE, default=None, help="Input size in pixels (default: the space's data.size).")
@click.option("--table", default=None, help="Table file (default: this machine's, in the bench cache folder).")
def build(space_ref: str, size: Optional[int], table: Optional[str]) -> None:
    """Time every block SPACE can place (alone, on the input it meets in the network) and 12 random
    designs of each of its encoder widths whole, all interleaved in one session; fit the scale of
    its architecture family and a constant per width on the whole networks. Blocks already in the
    table are not timed again."""
    from ..arch.latency_table import LatencyTable
    from ..search.block_cover import build_latency_table
    from ..search.space import load_space

    space = load_space(space_ref)
    size = size or int(space.data.get("size") or space.data.get("patch") or 64)
    path = _path(table)
    found = LatencyTable.load(path) if path.exists() else LatencyTable()
    started = time.perf_counter()

    def progress(done: int, total: int, added: int) -> None:
        if done == total or done % 20 == 0:
            console.print(f"{done}/{total} designs prepared, {added} blocks to time, {time.perf_counter() - started:.0f} s")

    archs = build_latency_table(space, size, found, progress=progress)
    found.save(path)
    networks = sum(len(kept) for kept in found.calibration.values())
    console.print(f"{path}: {len(found.blocks)} blocks; {len(archs)} designs of {space.name} cover its blocks at "
                  f"{size} px; fitted on {networks} whole networks: "
                  + "; ".join(f"scale {k} {v:.3f}" for k, v in found.scales.items()) + "; constants "
                  + ", ".join(f"{k} {v:.3f} ms" for k, v in found.constants.items()))


@latency_table.command("show")
@click.option("--table", default=None, help="Table file (default: this machine's).")
def show(table: Optional[str]) -> None:
    """What a table holds: the machine it describes, its blocks, scales and constants."""
    from ..arch.latency_table import LatencyTable

    path = _path(table)
    if not path.exists():
        raise BenchError(f"no latency table at {path}; build one with `bench latency-table build --space SPACE`.")
    found = LatencyTable.load(path, check_machine=False)
    console.print(f"{path}\nmachine: " + ", ".join(f"{k} {v}" for k, v in found.machine.items()))
    console.print(f"{len(found.blocks)} blocks, {sum(found.blocks.values()):.2f} ms in all")
    for key, value in found.scales.items():
        console.print(f"scale {key}: {value:.3f} x the blocks")
    for key, value in found.constants.items():
        console.print(f"constant {key}: {value:.3f} ms (from {len(found.calibration.get(key, []))} networks)")
