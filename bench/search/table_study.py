"""The study behind a tabulated benchmark: one trial per (design, seed) job, enqueued in build
order when the study is created, taken by any number of workers (Optuna hands each the oldest
waiting trial), each finished trial holding its row as a user attribute.

Build order: every design with the first seed, then the calibration designs' extra seeds, then
the remaining seeds round by round, so that a table cut short still covers every design, and
its calibration subset, evenly. A trial whose worker died (silent past the heartbeat grace) or
was interrupted is put back in the queue; a resumed build goes on where it stopped.
"""
from __future__ import annotations

import random
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import optuna
from optuna.trial import TrialState

from ..core.errors import BenchError
from .enumeration import enumerate_samples
from .space import SearchSpace
from .storage import make_storage, retry_race, store_lock
from .table_spec import TableSpec

optuna.logging.set_verbosity(optuna.logging.ERROR)


@dataclass(frozen=True)
class Job:
    """Train design number ``design`` (its index in the enumeration) with seed index ``seed``
    (the recipe's seed plus ``seed``)."""

    design: int
    seed: int


def table_jobs(designs: int, spec: TableSpec, seed: int) -> tuple[list[Job], list[int]]:
    """Every job of a table of ``designs`` designs, in build order, and the calibration designs
    (a subset drawn with ``seed``)."""
    calibration = sorted(random.Random(seed).sample(range(designs), min(spec.calibration_designs, designs)))
    chosen = set(calibration)
    jobs = [Job(d, 0) for d in range(designs)]
    jobs += [Job(d, s) for d in calibration for s in range(1, max(spec.seeds, spec.calibration_seeds))]
    jobs += [Job(d, s) for s in range(1, spec.seeds) for d in range(designs) if d not in chosen]
    return jobs, calibration


class TableStudy:
    """The Optuna study of a table named ``name`` in ``storage``, for ``space`` (which has a
    ``table:`` section). A trial's value is its job's best validation Dice; everything else is
    in its row."""

    def __init__(self, space: SearchSpace, name: str, storage: str, heartbeat: int = 10, grace: int = 60) -> None:
        if space.table is None:
            raise BenchError(f"{space.source}: this space has no table: section, so it cannot be tabulated.",
                             "Add one (see search_spaces/tabular.yaml), e.g. table: {seeds: 5}.")
        self.space, self.name, self.storage = space, name, storage
        self.samples = enumerate_samples(space)
        self.jobs, self.calibration = table_jobs(len(self.samples), space.table, int(space.study["seed"]))
        with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna 5
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=3)
        rdb = make_storage(storage, heartbeat, grace, retry)
        with store_lock(storage):
            self.study = retry_race(lambda: optuna.create_study(
                study_name=name, storage=rdb, direction="maximize", load_if_exists=True),
                f"opening study {name!r}")
            settings = {"space": space.name, "designs": len(self.samples), "jobs": len(self.jobs),
                        "table": space.table.to_dict(), "calibration": self.calibration}
            known = self.study.user_attrs.get("table")
            if known is None:
                self.study.set_user_attr("table", settings)
                for job in self.jobs:
                    self.study.enqueue_trial(self.samples[job.design], user_attrs={"job": [job.design, job.seed]},
                                             skip_if_exists=False)
            elif known != settings:
                raise BenchError(f"study {name!r} in {storage} tabulates another space or settings ({known}); "
                                 f"this one is {settings}. Use another --study name, or the same space file.")

    def run_next(self, work: Callable[[Job], dict[str, Any]], values: Callable[[dict[str, Any]], Sequence[float]],
                 catch: tuple[type[BaseException], ...]) -> Optional[tuple[Job, Optional[dict], Optional[str]]]:
        """Run the next waiting job through ``work`` (its row) inside an Optuna trial with
        heartbeats; the trial's values are ``values(row)``. A job raising one of ``catch`` fails
        with its reason; an interrupted one is failed and put back in the queue. Returns the job,
        its row (None if it failed) and the failure's reason, or None when no job waits."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(self.study)
        if not self.study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
            return None
        outcome: dict[str, Any] = {}

        def objective(trial: optuna.Trial) -> Sequence[float]:
            job = trial.user_attrs.get("job")
            if job is None:  # another worker took the last waiting trial between the check and the ask
                raise optuna.TrialPruned("no job left")
            outcome["job"] = Job(*job)
            try:
                row = work(outcome["job"])
            except KeyboardInterrupt:
                trial.set_user_attr("fail_reason", "interrupted")
                self.study.enqueue_trial(trial.params, user_attrs={"job": job}, skip_if_exists=False)
                raise
            except catch as exc:
                outcome["error"] = f"{type(exc).__name__}: {exc}"
                trial.set_user_attr("fail_reason", outcome["error"])
                raise
            trial.set_user_attr("row", row)
            outcome["row"] = row
            return list(values(row))

        self.study.optimize(objective, n_trials=1, catch=catch)
        if "job" not in outcome:
            return None
        return outcome["job"], outcome.get("row"), outcome.get("error")

    def progress(self) -> dict[str, int]:
        """Jobs done, failed, running and waiting."""
        done = {tuple(t.user_attrs["job"]) for t in self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                if "job" in t.user_attrs}
        states = [t.state for t in self.study.get_trials(deepcopy=False)]
        return {"jobs": len(self.jobs), "done": len(done),
                "failed": sum(s == TrialState.FAIL for s in states),
                "running": sum(s == TrialState.RUNNING for s in states),
                "waiting": sum(s == TrialState.WAITING for s in states)}

    def rows(self) -> list[dict[str, Any]]:
        """The rows of every finished job, in build order, one per job (the first finished
        trial of a job that ran twice)."""
        rows: dict[tuple[int, int], dict[str, Any]] = {}
        for t in self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            if "row" in t.user_attrs:
                rows.setdefault(tuple(t.user_attrs["job"]), t.user_attrs["row"])
        order = {(j.design, j.seed): i for i, j in enumerate(self.jobs)}
        return [rows[k] for k in sorted(rows, key=lambda k: order.get(k, len(order)))]

    def failures(self) -> list[dict[str, Any]]:
        """Jobs whose trial failed for a reason other than an interrupt, with the reason."""
        return [{"design": t.user_attrs["job"][0], "seed": t.user_attrs["job"][1],
                 "reason": t.user_attrs.get("fail_reason", "")}
                for t in self.study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
                if "job" in t.user_attrs and t.user_attrs.get("fail_reason") not in (None, "interrupted")]
