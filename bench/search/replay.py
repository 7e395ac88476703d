"""Replaying a search strategy against a tabulated benchmark instead of training: bench's own
sampler and pruner code, an in-memory Optuna study, and simulated time.

Each trial samples the space with the real sampler, looks its design up in the table, and reads
the row of a seed drawn for that trial (so seed noise is kept). Simulated time advances by the
recorded wall time of each step: building, counting, latency, every epoch's training and
validation, and the test pass. The pruner sees the recorded validation curve epoch by epoch and
may stop the trial there; a stopped trial's worker is free at that moment. ``workers`` trials
run at once, asynchronously, as syne-tune's simulator runs them: the next event in simulated
time is processed first, and a free worker asks the sampler for a trial at once (the sampler sees
the running trials, as Optuna's storage shows them to a real worker). A design drawn again costs
no time and is not counted, as in a sweep; as a sweep does, a replay stops when ``STALL`` draws
in a row added no design.

``Components`` switches recorded steps off to ask "what if counting were cached, or latency
predicted": a switched-off step adds no time.
"""
from __future__ import annotations

import heapq
import json
import math
import time
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import numpy as np
import optuna
from optuna.trial import TrialState

from ..core.errors import BenchError
from .benchmark_table import BenchmarkTable
from .enumeration import sample_key
from .pruners import Pruner
from .records import COMPLETE, PRUNED, RUNNING, TrialRecord
from .samplers import sampler_named
from .space import SearchSpace
from .study import STALL, sample_overrides
from .pareto import hypervolume
from .table_front import REFERENCE, TABLE_COLUMNS, design_values, true_front

optuna.logging.set_verbosity(optuna.logging.ERROR)


@dataclass(frozen=True)
class Components:
    """Which recorded steps cost simulated time."""

    build: bool = True
    count: bool = True
    latency: bool = True
    test: bool = True

    def setup_seconds(self, row: Any) -> float:
        """Time before the first epoch: building, and counting and timing the design."""
        return ((row["build_seconds"] if self.build else 0.0) + (row["count_seconds"] if self.count else 0.0)
                + (row["latency_seconds"] if self.latency else 0.0))


@dataclass
class ReplayTrial:
    """One simulated trial: the design and seed row it read, when it started and ended, how many
    epochs it trained, whether the pruner stopped it, and a duplicate's original."""

    number: int
    design: int
    seed: int
    start: float
    end: float = math.nan
    epochs: int = 0
    pruned: bool = False
    duplicate_of: Optional[int] = None


@dataclass
class ReplayCurve:
    """What the analyses read of a replay: ``curve`` holds (seconds, share of the table's
    true-front hypervolume) after every completed trial; ``seconds`` is when the last trial
    ended. Small enough to keep on disk (:mod:`bench.results.replay_cache`)."""

    curve: list[tuple[float, float]] = field(default_factory=list)
    true_hypervolume: float = 0.0
    missing: int = 0  # draws of designs the table does not hold (a table not fully built)
    budget: float = math.inf  # the simulated seconds it was given
    ended: float = 0.0

    @property
    def seconds(self) -> float:
        return self.ended

    def share_at(self, seconds: float) -> float:
        """The share of the true front's hypervolume found by ``seconds`` of simulated time."""
        found = 0.0
        for t, share in self.curve:
            if t > seconds:
                break
            found = share
        return found

    def time_to(self, share: float) -> float:
        """Simulated seconds until ``share`` of the true hypervolume was found (inf: never)."""
        return next((t for t, s in self.curve if s >= share - 1e-12), math.inf)


@dataclass
class ReplayResult(ReplayCurve):
    """A replay's trials, and its curve. ``wall_seconds`` holds the real seconds the replay had
    spent when each trained design completed, in order: nearly all of it the sampler's own
    compute, which the simulated time leaves out."""

    trials: list[ReplayTrial] = field(default_factory=list)
    wall_seconds: list[float] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return max((t.end for t in self.trials if not math.isnan(t.end)), default=0.0)

    def summary(self) -> ReplayCurve:
        """The curve without the trials."""
        return ReplayCurve(list(self.curve), self.true_hypervolume, self.missing, self.budget, self.seconds)


class _EpochView:
    """What the pruner sees of a replayed trial (:class:`bench.search.pruners.EpochView`)."""

    def __init__(self, trial: optuna.Trial, record: TrialRecord, records: list[TrialRecord],
                 objectives: dict[str, str], epochs: int) -> None:
        self._trial, self.record, self._records = trial, record, records
        self.objectives, self.epochs = objectives, epochs

    def report(self, value: float, epoch: int) -> bool:
        self._trial.report(value, epoch)
        return self._trial.should_prune()

    def save(self) -> None:
        pass  # one process: the record is shared already

    def others(self) -> Sequence[TrialRecord]:
        return self._records


def replay(table: BenchmarkTable, space: SearchSpace, sampler: str, pruner: Pruner, trials: int, workers: int = 1,
           seed: int = 0, components: Components = Components(), max_seconds: float = math.inf) -> ReplayResult:
    """Replay ``sampler`` (a name of :mod:`bench.search.samplers`) with ``pruner`` on ``table``
    for ``trials`` distinct designs (or until ``max_seconds`` of simulated time), ``workers``
    at once; ``seed`` seeds the sampler and the draw of each trial's seed row.

    Raises:
        BenchError: the sampler draws a design the table does not hold (another space).
    """
    started = time.perf_counter()
    rows, truth, true_hv, norm = _prepared(table, space.objectives)
    before = [n for n in space.objectives if n != "val_dice" and n in TABLE_COLUMNS]
    epochs = table.epochs
    rng = np.random.default_rng(seed)
    study_space = _with_study(space, sampler)
    study = optuna.create_study(directions=list(space.objectives.values()),
                                sampler=sampler_named(sampler).make(study_space, seed, trials),
                                pruner=pruner.optuna_pruner(epochs))
    records: list[TrialRecord] = []
    result = ReplayResult(trials=[], true_hypervolume=true_hv, budget=max_seconds)
    by_design: dict[int, int] = {}  # design -> the trial that trained it
    events: list[tuple[float, int, int, int]] = []  # (time, order, trial number, epoch; 0 = setup done)
    running: dict[int, tuple[optuna.Trial, Any, TrialRecord]] = {}
    completed: list[int] = []
    order = barren = 0
    front, found = _Front(len(space.objectives)), 0.0

    def start(now: float) -> bool:
        """Give a free worker its next trial at ``now``; False when the budget is spent."""
        nonlocal order, barren
        while True:
            if len(by_design) >= trials or now >= max_seconds or barren >= STALL:
                return False
            barren += 1  # until a new design is drawn
            trial = study.ask()
            sample_overrides(trial, space)
            design = _design_of(table, trial.params)
            if design is None:  # a design of the space the (partly built) table lacks: no cost, not counted
                result.missing += 1
                study.tell(trial, state=TrialState.FAIL)
                continue
            record = TrialRecord(trial.number, RUNNING, dict(trial.params))
            if design in by_design:  # a known design: its values, at no cost
                original = result.trials[by_design[design]]
                result.trials.append(ReplayTrial(trial.number, design, original.seed, now, now, 0, False,
                                                 original.number))
                record.duplicate_of = original.number
                records.append(record)
                if original.number in completed:
                    record.state = COMPLETE
                    study.tell(trial, _values(space, truth, design, rows[design][original.seed], before))
                else:
                    record.state = PRUNED
                    study.tell(trial, state=TrialState.PRUNED)
                continue
            barren = 0
            row_index = int(rng.integers(len(rows[design])))
            row = rows[design][row_index]
            by_design[design] = len(result.trials)
            result.trials.append(ReplayTrial(trial.number, design, row_index, now))
            record.values = {n: float(row[TABLE_COLUMNS[n]]) for n in before}
            records.append(record)
            running[trial.number] = (trial, row, record)
            heapq.heappush(events, (now + components.setup_seconds(row), order, trial.number, 0))
            order += 1
            return True

    for _ in range(workers):
        if not start(0.0):
            break
    while events:
        now, _, number, epoch = heapq.heappop(events)
        trial, row, record = running[number]
        replayed = result.trials[by_design[_design_of(table, trial.params)]]
        if epoch > 0:
            best = max(row["val_dice"][:epoch])
            view = _EpochView(trial, record, records, dict(space.objectives), epochs)
            if epoch < epochs and pruner.after_epoch(view, epoch, best) is not None:
                record.state, replayed.pruned, replayed.epochs, replayed.end = PRUNED, True, epoch, now
                record.pruned = {"epoch": epoch, "val_dice": best}
                study.tell(trial, state=TrialState.PRUNED)
                del running[number]
                start(now)
                continue
        if epoch < epochs:
            step = row["train_seconds"][epoch] + row["val_seconds"][epoch]
            heapq.heappush(events, (now + step, order, number, epoch + 1))
            order += 1
            continue
        end = now + (row["test_seconds"] if components.test else 0.0)
        record.state, replayed.epochs, replayed.end = COMPLETE, epochs, end
        record.values["val_dice"] = float(row["best_val_dice"])
        study.tell(trial, _values(space, truth, replayed.design, row, before))
        completed.append(number)
        if front.add(norm.loss(truth[replayed.design])):
            found = front.hypervolume()
        result.curve.append((end, found / true_hv))
        result.wall_seconds.append(time.perf_counter() - started)
        del running[number]
        start(end)
    result.curve.sort()
    best = 0.0
    result.curve = [(t, best := max(best, s)) for t, s in result.curve]
    return result


class _Front:
    """The non-dominated normalised losses found so far, kept as points arrive."""

    def __init__(self, dimensions: int) -> None:
        self.points: list[list[float]] = []
        self.reference = [REFERENCE] * dimensions

    def add(self, point: list[float]) -> bool:
        """Add ``point``; whether the front changed."""
        if any(all(q <= p for q, p in zip(other, point)) for other in self.points):
            return False
        self.points = [q for q in self.points if not all(p <= x for p, x in zip(point, q))] + [point]
        return True

    def hypervolume(self) -> float:
        return hypervolume(self.points, self.reference)


def _values(space: SearchSpace, truth: dict[int, dict[str, float]], design: int, row: Any,
            before: Sequence[str]) -> list[float]:
    """What the sampler is told: the seed row's validation Dice and the design's costs."""
    return [float(row["best_val_dice"]) if n == "val_dice" else float(row[TABLE_COLUMNS[n]]) if n in before
            else truth[design][n] for n in space.objectives]


def _prepared(table: BenchmarkTable, objectives: dict[str, str]):
    """The table's rows by design, the designs' true values, the true front's hypervolume and
    the normalisation: the same for every replay of a table, so computed once."""
    cache = table.__dict__.setdefault("_replay_cache", {})
    key = tuple(objectives.items())
    if key not in cache:
        rows = {int(d): [r for _, r in group.iterrows()] for d, group in table.frame.groupby("design")}
        designs = table.design_frame()
        _, true_hv, norm = true_front(designs, objectives)
        cache[key] = rows, design_values(designs, objectives), true_hv, norm
    return cache[key]


def _design_of(table: BenchmarkTable, params: dict[str, Any]) -> Optional[int]:
    """The table's design of a sample, or None when the table lacks it (not built yet).

    Raises:
        BenchError: a sample whose parameters the table's samples never use (another space).
    """
    index = table.__dict__.get("_by_sample")
    if index is None:  # built once per table: a replay looks up every sampled trial
        index = table.__dict__["_by_sample"] = {
            sample_key(json.loads(s)): int(d) for s, d in zip(table.frame["sample"], table.frame["design"])}
    key = sample_key(params)
    if key in index:
        return index[key]
    known = set().union(*(json.loads(k) for k in index))
    if not set(params) <= known:
        raise BenchError(f"the sampler drew {params}, with parameters the table's designs never have: replay a "
                         "table with the space it was built from.")
    return None


def _with_study(space: SearchSpace, sampler: str) -> SearchSpace:
    from dataclasses import replace

    return replace(space, study={**space.study, "sampler": sampler})
