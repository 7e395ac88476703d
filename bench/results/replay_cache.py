"""Replays kept beside a table report, so that a report adds a strategy or repetitions without
replaying what it has: GP's replays take minutes each, and 30 of them per strategy take hours.

One JSON Lines file per strategy under ``<report>/replays/``, one line per repetition (its seed),
appended as each replay ends, so an interrupted report loses at most the replay under way. A line
holds the curve only (:class:`bench.search.replay.ReplayCurve`), with the table's fingerprint and
the simulated budget; a line of another table or budget is not used.
"""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Iterator

from ..search.benchmark_table import BenchmarkTable
from ..search.replay import ReplayCurve
from .table_analyses import Strategy

FOLDER = "replays"


def table_fingerprint(table: BenchmarkTable) -> str:
    """A short hash of the table's metadata (space, data, jobs done, build time) and size: two
    exports of one finished table agree, a table with other rows does not."""
    text = json.dumps(table.meta, sort_keys=True, default=str) + f"|{len(table.frame)}"
    return hashlib.sha256(text.encode()).hexdigest()[:12]


class ReplayCache:
    """Replays of one table, read and appended strategy by strategy."""

    def __init__(self, folder: Path, table: BenchmarkTable) -> None:
        self.folder = folder
        self.fingerprint = table_fingerprint(table)

    def path(self, strategy: Strategy) -> Path:
        return self.folder / f"{strategy.sampler}-{strategy.pruner}-{strategy.workers}w.jsonl"

    def load(self, strategy: Strategy, budget: float) -> dict[int, ReplayCurve]:
        """The kept replays of ``strategy`` with this budget, by seed (a damaged line is skipped)."""
        found: dict[int, ReplayCurve] = {}
        for line in self._lines(strategy):
            try:
                kept = json.loads(line)
                if kept["table"] != self.fingerprint or not math.isclose(kept["budget"], budget, rel_tol=1e-9):
                    continue
                found[int(kept["seed"])] = _curve(kept)
            except (ValueError, KeyError, TypeError):
                continue
        return found

    def add(self, strategy: Strategy, seed: int, replayed: ReplayCurve) -> ReplayCurve:
        """Append one replay (the file is created when missing); returns it as kept (times to the
        millisecond, shares to 1e-6), so a report reads the same figures whether it replayed or read."""
        self.folder.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"table": self.fingerprint, "seed": seed, "budget": replayed.budget,
                           "true_hypervolume": replayed.true_hypervolume, "missing": replayed.missing,
                           "ended": round(replayed.seconds, 3),
                           "curve": [[round(t, 3), round(s, 6)] for t, s in replayed.curve]})
        with open(self.path(strategy), "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
        return _curve(json.loads(line))

    def _lines(self, strategy: Strategy) -> Iterator[str]:
        path = self.path(strategy)
        if path.is_file():
            yield from (line for line in path.read_text(encoding="utf-8").splitlines() if line.strip())


def _curve(kept: dict) -> ReplayCurve:
    return ReplayCurve([(float(t), float(s)) for t, s in kept["curve"]], float(kept["true_hypervolume"]),
                       int(kept["missing"]), float(kept["budget"]), float(kept["ended"]))
