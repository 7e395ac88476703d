"""Sweeps from Python: a search space becomes an Optuna study whose trials build, measure and
train networks. ``bench run`` is a thin layer over this::

    from bench.run.sweep import Sweep

    sweep = Sweep("cmrf_swap", study="dsb", data="../shared/data/dsb2018_96", size=96, trials=40)
    result = sweep.run()                  # SweepResult: every trial's record, the front
    for record in sweep.front():          # TrialRecord: sample, config, cost, values, metrics ...
        print(record.number, record.sample, record.values)
    sweep.report("reports/dsb")           # tables and plots

One trial: sample the space -> resolve the architecture -> plan, check the input size, build
(:class:`bench.search.design.Design`) -> the objectives known before training and the constraints
(:mod:`bench.search.objectives`) -> train on the study's fixed split unless a constraint is violated
(then the trial ends PRUNED, "not trained", with no accuracy) or the same network was trained
already (its results are copied) -> the objectives known after training. A trial that raises (a
contract the combination breaks, a NaN loss) ends FAILED with its reason; the sweep goes on.

Progress and tracking are listeners (:mod:`bench.search.listeners`); the MLflow tracker is added when
``tracking_uri`` is given. Many workers, in this process's children (``workers``) or on other
machines (the same study and storage), share one study; see :mod:`bench.search.study`.
"""
from __future__ import annotations

import math
import multiprocessing
import os
import re
import time
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Optional, Sequence

import torch

from ..arch.assemble import build_model, check_budget, check_input_size, plan_architecture
from ..training.checkpoint import save_checkpoint
from ..arch.config import Architecture, get_path, resolve_architecture
from ..core.defaults import DEFAULT_STORAGE, DEFAULT_TRACKING
from ..data.dataset import SegmentationData
from ..data.source import DataSource, source_from_space
from ..data.split import Split, make_split
from ..search.design import Design
from ..core.device import resolve_device, set_deterministic, worker_device
from ..core.errors import BenchError
from ..results.evidence import weigh_front
from .experiment import check_classes
from ..core import interrupts
from ..core.files import ensure_writable, plain_name
from ..arch.latency import Candidate, Protocol, measure
from ..search.listeners import Listeners, SweepListener
from ..results.membership import front_membership
from ..search.objectives import OBJECTIVES, Objective
from ..search.pareto import front_records, hypervolume
from ..search.records import INTERRUPTED, StudyInfo, SweepResult, TrialRecord
from ..search.space import SearchSpace, describe, load_space, space_size
from ..core.stats import estimate, mean_over_runs
from ..search.storage import JOURNAL, redact
from ..search.samplers import sampler_settings
from ..search.study import (WORKER, FixedTrial, RecordWriter, TrialPruned, ahead, all_under_way, bind, drawn, evaluated,
                    TrialEpochs, enqueue, front_latency, open_study, optimize_one, reap, sample_overrides, sampler_seed,
                    set_constraint, stock_sample, study_info, trained_by)
from ..search.study import records as study_records
from ..training.seeds import Splits, TrainingStopped, train_seeds

SWEEP_LATENCY = Protocol(max_seconds=3.0)  # per trial; the front is timed again, interleaved
CATCH = (BenchError, RuntimeError, ValueError)  # a trial raising these fails; the sweep goes on
DUPLICATED = ("cost", "memory", "latency", "values", "violations", "trained", "metrics", "estimates", "seeds",
              "per_image", "skipped", "pruned", "rungs")  # what a trial of an already evaluated network copies
STALL = 100  # samples in a row that add no network: the space holds no more (see _run_trials)
BLOCK_SLOTS = ("stem", "encoder.block", "encoder.down", "bottleneck", "skips.block", "decoder.block",
               "decoder.up", "decoder", "head")


@dataclass
class StudyData:
    """The one dataset and split every trial of a study uses."""

    dataset: SegmentationData
    split: Split
    size: int

    def parts(self) -> Splits:
        return Splits(*(self.dataset.subset(list(part)) for part in (self.split.train, self.split.val, self.split.test)))


def prepare_study_data(space: SearchSpace, source: DataSource, in_channels: int) -> StudyData:
    """The data ``source`` names, split by the study seed."""
    dataset = source.load(in_channels, synthetic_count=int(space.data["count"]), seed=int(space.study["seed"]))
    split = make_split(dataset.stems, dataset.source, dataset.content_hash, int(space.study["seed"]))
    return StudyData(dataset, split, dataset.input_size)


class Sweep:
    """A sweep of ``space`` (a built-in name, a YAML path, or a :class:`SearchSpace`).

    Args:
        study: study name (default: the space's); an existing study is resumed.
        storage: Optuna storage URL (default ``sqlite:///runs/optuna.db``), see
            :mod:`bench.search.storage`.
        tracking_uri: MLflow tracking URI, or None for no MLflow.
        data, size, patch: dataset folder, and resized input size or patch size at native
            resolution (default: the space's; see :class:`bench.data.protocol.Protocol`).
        trials: distinct networks to evaluate (default: the space's); repeats of a known network
            and designs breaking a constraint are recorded but do not count.
        workers: processes to run trials in, all on this study (children of this one).
        threads: torch threads per worker (default: the cores divided among the workers).
        timeout: stop starting trials after this many seconds.
        heartbeat: seconds between trial heartbeats; a trial silent for 3x this is failed and
            retried (at most ``max_retry`` times).
        repeats: training runs per design, with seeds seed, seed+1, ... on the same split
            (default: the space's ``study.repeats``); objectives are their means.
        listeners: observers of the sweep (:class:`bench.search.listeners.SweepListener`).
        report_dir: where :meth:`run` writes the report at the end (default: nowhere; call
            :meth:`report`).
        weights_dir: where every trained network's weights go, one ``model.pt`` per seed as
            ``bench train`` writes it (``{study}`` is replaced by the study name; None: not kept); the
            MLflow tracker uploads them to the trial's run. Training also keeps its state after every
            epoch there (``resume/``), so that a network whose worker died or was interrupted is
            trained on from its last completed epoch when it is retried.
        worker_index: run trials only, as worker ``worker_index`` of a sweep coordinated elsewhere.
        device: where networks train (:func:`bench.core.device.resolve_device`); with G GPUs, ``auto``
            and ``cuda`` put worker i on ``cuda:(i mod G)``. Latency objectives keep their own
            protocol (the CPU): they describe the deployment target, not the training machine.
        deterministic: PyTorch's deterministic algorithms in every worker.
    """

    def __init__(self, space: str | Path | SearchSpace, *, study: Optional[str] = None,
                 storage: Optional[str] = None, tracking_uri: Optional[str] = DEFAULT_TRACKING,
                 data: Optional[str] = None, size: Optional[int] = None, patch: Optional[int] = None,
                 trials: Optional[int] = None,
                 workers: int = 1, threads: Optional[int] = None, timeout: Optional[float] = None,
                 heartbeat: int = 10, max_retry: int = 2, repeats: Optional[int] = None,
                 listeners: Sequence[SweepListener] = (), report_dir: Optional[str | Path] = None,
                 weights_dir: Optional[str | Path] = "runs/{study}/weights",
                 worker_index: Optional[int] = None, device: str = "auto",
                 deterministic: bool = False) -> None:
        self.space = space if isinstance(space, SearchSpace) else load_space(str(space))
        self.name = plain_name(study or self.space.name, "study name")
        self.storage = storage or DEFAULT_STORAGE
        self.tracking_uri = tracking_uri
        self.data, self.size, self.patch = data, size, patch
        self.trials = int(trials or self.space.study["trials"])
        self.repeats = int(repeats or self.space.study["repeats"])
        if self.repeats < 1 or self.trials < 1:
            raise BenchError(f"a sweep needs trials >= 1 and repeats >= 1, got trials {self.trials}, "
                             f"repeats {self.repeats}")
        self.workers, self.worker_index = workers, worker_index
        self.device_spec, self.deterministic = device, deterministic
        self.device = resolve_device(worker_device(device, worker_index or 0))
        self.threads = threads or max(1, (os.cpu_count() or 1) // workers)
        self.timeout, self.heartbeat, self.max_retry = timeout, heartbeat, max_retry
        self.report_dir = Path(report_dir) if report_dir is not None else None
        self.weights_dir = Path(str(weights_dir).format(study=self.name)) if weights_dir is not None else None
        self.grace = 3 * heartbeat
        self.waits = None if self.storage.startswith(JOURNAL) else self.grace  # journals have no heartbeats
        self.listeners = Listeners(listeners)
        quantities = {*self.space.objectives, *self.space.constraints}
        # every cheap quantity on every trial; costly ones (timing) where the study names them
        self.measures = [o for o in OBJECTIVES if o.before_training and (not o.costly or o.name in quantities)]
        self.scores = [o for o in OBJECTIVES
                       if not o.before_training and (o.name in quantities or o.name == "val_dice")]
        self.timed = any(OBJECTIVES.get(n).timed for n in quantities)
        self._study = None
        self._data: Optional[StudyData] = None
        self.info: Optional[StudyInfo] = None
        self._ended: set[int] = set()  # trials this process has told the listeners about
        self.exhausted: Optional[str] = None  # why the sweep stopped short of ``trials``, if it did
        self._closed = False  # the listeners were told that the study ended

    # ------------------------------------------------------------------------------ public

    def run(self) -> SweepResult:
        """Run trials until the study has ``trials`` complete ones, then (unless this is a
        worker of a sweep coordinated elsewhere) find the front, time it again if the study
        has a timed objective, write the report if ``report_dir`` was given, and tell the
        listeners. Returns the result (in a worker: the records so far)."""
        started = time.perf_counter()
        previous_threads = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        if self.deterministic:
            set_deterministic(True)
        with interrupts.handling():
            try:
                interrupts.checkpoint()
                self.open()
                if self.workers > 1:
                    self._run_workers()
                else:
                    self._run_trials()
                if self.worker_index is not None:
                    return self.result()
                return self._finish(started)
            except KeyboardInterrupt:
                self._stopped_by_signal(started)
                raise
            except Exception as exc:
                if interrupts.received() is None:
                    self._ended_early("failed", started)
                    raise
                # The interrupt landed inside a storage write, which then failed in its own way
                # (a rolled-back session, say): still an interrupted sweep, not a failed one.
                self._stopped_by_signal(started)
                raise KeyboardInterrupt from exc
            finally:
                torch.set_num_threads(previous_threads)

    def records(self) -> list[TrialRecord]:
        """Every trial of the study, as records."""
        return study_records(self.study)

    def front(self) -> list[TrialRecord]:
        """The trials on the Pareto front of the study's objectives (see :func:`bench.search.pareto.front_records`)."""
        return self.result().front_records

    def result(self) -> SweepResult:
        """The study's records, front and timed front, as stored now."""
        return load_result(self.study)

    def report(self, out_dir: str | Path) -> list[Path]:
        """Write the study's report (tables and plots) to ``out_dir``; returns the paths."""
        from ..results.report import write_report

        return write_report(self.result(), Path(out_dir))

    @property
    def study(self):
        """The Optuna study (opened, with the data prepared, on first use)."""
        if self._study is None:
            self.open()
        return self._study

    def source(self) -> DataSource:
        """The data the space names, with ``data``, ``size`` and ``patch`` in place of its own."""
        return source_from_space(self.space.data, self.data, {"size": self.size, "patch": self.patch})

    def open(self) -> None:
        """Check the tracking store, prepare the data, open (or create) the study and record
        what it is, and start the listeners. Both stores are checked before either is written."""
        if self._study is not None:
            return
        reference = resolve_architecture(self.space.architecture)
        source = self.source()
        size = int(source.protocol.input_size or 64)
        plan = plan_architecture(reference)
        try:  # every sample is checked again in its trial
            check_input_size(reference, plan, size)
            check_budget(reference, plan, size)
        except BenchError as exc:
            option = "patch" if source.protocol.patch else "size"
            given = f"--{option}" if (self.size or self.patch) else f"{self.space.source}: data.{option}"
            raise BenchError(f"{given} {size}: {exc}") from None
        for folder, what in ((self.report_dir, "report_dir"), (self.weights_dir, "weights_dir")):
            if folder is not None:
                ensure_writable(folder, what, create=False)
        if self.tracking_uri:
            from ..results.tracking import MlflowTracker, check_tracking

            check_tracking(self.tracking_uri)
        self._data = prepare_study_data(self.space, source, reference.config["in_channels"])
        with interrupts.deferred():  # the study and its MLflow run are created whole, or not at all
            study = open_study(self.space, self.name, self.storage, self.heartbeat, self.grace, self.max_retry,
                               on_stale=self._trial_died, trials=self.trials)
            self.info = self._study_info(reference.hash)
            bind(study, self.info)
            self._study = study
            if self.worker_index is None and not study.trials and self.space.study["stock"]:
                self._enqueue_stock(reference)
            if self.worker_index is None:
                self._enqueue_interrupted()
            if self.tracking_uri:
                self.listeners.listeners.insert(0, MlflowTracker(self.tracking_uri))
            self.listeners.study_started(self.info, study_records(study))

    def objective(self, trial) -> list[float]:
        """The trial function (see the module docstring), for ``study.optimize``."""
        started = time.perf_counter()
        record, save = TrialRecord(trial.number, worker=WORKER), RecordWriter(trial)
        record.sampler_seed = sampler_seed(self.study)
        try:
            # the trial's MLflow run is known to its record once it exists; a signal that came
            # meanwhile, or while Optuna created the trial, is raised at the end of this block
            with interrupts.deferred():
                save(record)  # the worker first: reap() leaves a trial with a worker to the heartbeats
                self.listeners.trial_started(record)
                save(record)
            if ahead(self.study, trial.number) >= self.trials:  # other workers got there first
                record.skipped = f"the study already had {self.trials} networks evaluated or under way"
                save(record)
                raise TrialPruned(record.skipped)
            record.overrides = sample_overrides(trial, self.space)
            record.sample = dict(trial.params)
            arch = resolve_architecture(self.space.architecture, record.overrides)
            arch = self._named(arch, record)
            record.config, record.config_hash = arch.config, arch.hash
            record.blocks = {p: n["type"] for p in BLOCK_SLOTS if isinstance(n := get_path(arch.config, p), dict)
                             and "type" in n}
            save(record)  # the hash, early: later trials of the same network wait for this one
            check_classes(arch, self._data.dataset)
            original = trained_by(self.study, arch.hash, trial.number, self.waits, on_reaped=self._orphans_failed)
            if original is not None:  # the same network: its measurements and results (or fate), not new ones
                record.duplicate_of = original.duplicate_of if original.duplicate_of is not None else original.number
                for name in DUPLICATED:
                    setattr(record, name, getattr(original, name))
                for quantity, violation in record.violations.items():
                    set_constraint(trial, quantity, violation)
            else:
                design = Design.build(arch, self._data.size, seed=self.space.recipe.seed,
                                      latency_protocol=SWEEP_LATENCY)
                self._measure(record, design, trial)
                save(record)
                if record.feasible:
                    self._train(record, design, trial, save)
                else:
                    record.skipped = "not trained: " + "; ".join(
                        _violation_text(OBJECTIVES.get(q), record.values[q], self.space.constraints[q])
                        for q, v in record.violations.items() if v > 0)
            record.seconds = time.perf_counter() - started
            save(record)
        except CATCH as exc:
            record.fail_reason = f"{type(exc).__name__}: {exc}"
            record.seconds = time.perf_counter() - started
            save(record)
            raise
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM: Optuna marks the trial FAIL; say why
            record.fail_reason = INTERRUPTED
            record.seconds = time.perf_counter() - started
            save(record)
            raise
        if record.skipped or record.pruned:
            raise TrialPruned(record.skipped or record.pruned["reason"])
        return [record.values[name] for name in self.space.objectives]

    def _interruptible_objective(self, trial) -> list[float]:
        with interrupts.released():
            return self.objective(trial)

    # ------------------------------------------------------------------------------ one trial

    def _named(self, arch: Architecture, record: TrialRecord) -> Architecture:
        """The sampled architecture under its own name and description (the hash ignores both)."""
        base = Path(self.space.architecture).stem
        config = {**arch.config, "name": f"{base}-{re.sub(r'[^A-Za-z0-9.=]+', '-', record.label)}",
                  "description": f"{base} with " + ", ".join(f"{k} = {v}" for k, v in record.sample.items())
                  + f" (study {self.name}, trial {record.number})"}
        return Architecture(config["name"], config, arch.source, arch.origins)

    def _measure(self, record: TrialRecord, design: Design, trial) -> None:
        """Objectives known before training, and the constraints (told to the samplers). Costly
        quantities (timing) are measured only for a design whose cheap constraints hold: an
        untrained design needs no latency."""
        cheap = [o for o in self.measures if not o.costly]
        record.values = {o.name: float(o.compute(design)) for o in cheap}
        if all(_violation(record.values[q], b) <= 0 for q, b in self.space.constraints.items() if q in record.values):
            record.values.update({o.name: float(o.compute(design)) for o in self.measures if o.costly})
        record.cost = design.cost.to_dict()
        if design.measured("memory"):
            record.memory = design.memory.to_dict()
        if design.measured("latency"):
            record.latency = design.latency.to_dict()
        for quantity, bound in self.space.constraints.items():
            if quantity in record.values:
                record.violations[quantity] = _violation(record.values[quantity], bound)
                set_constraint(trial, quantity, record.violations[quantity])

    def _train(self, record: TrialRecord, design: Design, trial, save: RecordWriter) -> None:
        """Train the design ``repeats`` times (:func:`bench.training.seeds.train_seeds`: seeds
        seed, seed+1, ...; initial weights, batch order and augmentation change, the split does
        not) and score each run. The pruner watches the first seed; a design it stops keeps that
        seed's history and its figures so far in ``record.pruned``."""
        recipe = self.space.recipe

        def progress(k: int, seed: int):
            so_far: list[float] = []

            def report(event: str, done: int, total: int, values: dict) -> None:
                if event == "epoch":
                    so_far.append(values["val_dice"])
                    self.listeners.epoch_ended(record, {**values, "epochs": total, "seed": seed,
                                                        "run": k + 1, "runs": self.repeats})
                    if k == 0:
                        self._judge(record, trial, save, done, max(so_far))
            return nullcontext(report)

        record.seeds = train_seeds(design.arch, self._data.parts(), recipe, self.repeats, self.device, progress,
                                   self.weights_dir / "resume" if self.weights_dir else None, design.model)
        last = record.seeds[-1]
        if not last.complete:
            record.pruned = {"epoch": last.metrics["epochs_trained"], "val_dice": last.metrics["val_dice"],
                             "pruner": self.space.pruner.name, "reason": last.stopped}
            return
        for run in record.seeds if self.weights_dir is not None else []:
            path = self.weights_dir / f"trial_{record.number}" / f"seed_{run.seed}" / "model.pt"
            save_checkpoint(path, run.model, design.arch, {
                "recipe": replace(recipe, seed=run.seed).to_dict(), "test": run.test,
                "best_epoch": run.metrics["best_epoch"], "data": self._data.dataset.record(),
                "split": {"hash": self._data.split.hash}, "study": self.name, "trial": record.number})
            record.artifacts[f"seed_{run.seed}/model.pt"] = str(path.resolve())
        runs = [run.metrics for run in record.seeds]
        samples = {name: [run[name] for run in runs] for name in runs[0]}
        samples.update({o.name: [float(o.compute(run.scores())) for run in record.seeds] for o in self.scores})
        estimates = {name: estimate(values) for name, values in samples.items()}
        record.estimates = {name: e.to_dict() for name, e in estimates.items()}
        record.metrics = {name: estimates[name].mean for name in runs[0]}
        record.values.update({o.name: estimates[o.name].mean for o in self.scores})
        record.per_image = mean_over_runs([run.test_dice_fg_per_image for run in record.seeds])
        record.trained = True

    def _judge(self, record: TrialRecord, trial, save: RecordWriter, epoch: int, val_dice: float) -> None:
        """The pruner's decision after ``epoch`` of the first seed (best validation Dice so far
        ``val_dice``, see :mod:`bench.search.pruners`); raises :class:`TrainingStopped` to stop training."""
        view = TrialEpochs(trial, record, save, self.study, self.space.objectives, self.space.recipe.epochs)
        reason = self.space.pruner.after_epoch(view, epoch, val_dice)
        if reason is not None:
            raise TrainingStopped(epoch, val_dice, reason)

    # ------------------------------------------------------------------------------ the loop

    def _run_trials(self, poll: float = 1.0) -> None:
        """Run trials until the study has evaluated ``trials`` distinct networks (repeats of a
        known network, designs breaking a constraint, failed and skipped trials do not count),
        the timeout passes, this worker has failed three times as many trials as were missing
        when it started, or the space holds no more networks: every distinct sample of a finite
        space drawn, or :data:`STALL` samples in a row that added none (then
        :attr:`exhausted` says so). While the remaining trials are all under way in other
        workers, wait: one of them may die and need retrying; without heartbeats (a journal
        file) do not wait, since a dead trial would never end."""
        budget = 3 * max(1, self.trials - evaluated(self.study))
        size = space_size(self.space)
        started, failures, barren = time.monotonic(), 0, 0
        while evaluated(self.study) < self.trials and failures < budget:
            interrupts.checkpoint()
            if self.timeout is not None and time.monotonic() - started > self.timeout:
                return
            samples, networks, feasible = drawn(self.study)
            waiting = any(r.state == "WAITING" for r in study_records(self.study))  # retries come first
            if not waiting and ((size is not None and samples >= size) or barren >= STALL):
                self.exhausted = self._exhausted_text(size, samples, networks, feasible, barren)
                return
            if self.waits is not None and all_under_way(self.study, self.trials):
                self._orphans_failed(reap(self.study, self.grace))
                time.sleep(poll)
                continue
            # A signal while Optuna creates or tells the trial, or while its MLflow run is closed,
            # would leave either RUNNING: it is held until they are done, and raised in the trial.
            with interrupts.deferred():
                record = optimize_one(self.study, self._interruptible_objective, CATCH)
                self._ended.add(record.number)
                self.listeners.trial_ended(record)
            failures += record.status == "failed"
            barren = 0 if record.counted else barren + (record.status != "skipped")

    def _shortfall(self) -> Optional[str]:
        """Why the study has fewer than ``trials`` networks evaluated (None when it has them):
        for the coordinator of worker processes, which did not see their loops end."""
        have = evaluated(self.study)
        if have >= self.trials:
            return None
        size = space_size(self.space)
        samples, networks, feasible = drawn(self.study)
        if size is not None and samples >= size:
            return self._exhausted_text(size, samples, networks, feasible, 0)
        if self.timeout is not None:
            return f"stopped at {have} of {self.trials} networks: the timeout ({self.timeout:g} s) passed."
        return (f"stopped at {have} of {self.trials} networks: too many trials failed or added no network "
                "(see the trials above).")

    def _exhausted_text(self, size: Optional[int], samples: int, networks: int, feasible: int, barren: int) -> str:
        """Why the sweep stopped short of ``trials``: how many networks the space holds."""
        have = evaluated(self.study)
        if size is not None and samples >= size:
            held = (f"space {self.space.name!r} holds {size} distinct samples, {networks} distinct networks, "
                    f"{feasible} of them within the constraints")
        else:
            held = (f"the last {barren} samples all repeated a known network or broke a constraint; "
                    f"space {self.space.name!r} seems to hold about {feasible} distinct networks within the "
                    f"constraints ({networks} drawn)")
        if have == 0:  # --trials 0 is no advice: nothing could be evaluated
            return (f"stopped with none of {self.trials} networks evaluated: {held}. Every design failed or broke a "
                    f"constraint: see each trial's reason above (or `bench report --study {self.name}`), then fix the "
                    "space or widen its constraints.")
        return (f"stopped at {have} of {self.trials} networks: {held}. Widen the space or its constraints, "
                f"or ask for --trials {have}.")

    def _trial_died(self, trial) -> None:
        """A trial whose worker stopped sending heartbeats, just failed by this process."""
        self.listeners.trial_ended(TrialRecord.from_trial(trial))

    def _orphans_failed(self, numbers: Sequence[int]) -> None:
        """Trials of workers killed before their first heartbeat, just failed by this process."""
        for number in numbers:
            self.listeners.trial_ended(TrialRecord.from_trial(self.study.trials[number]))

    def _run_workers(self) -> None:
        """Run trials in ``workers`` child processes on this study, and wait for them."""
        context = multiprocessing.get_context("spawn")  # no forked torch or database state
        settings = dict(space=self.space, study=self.name, storage=self.storage, tracking_uri=self.tracking_uri,
                        data=self.data, size=self.size, patch=self.patch, trials=self.trials, threads=self.threads,
                        timeout=self.timeout, heartbeat=self.heartbeat, max_retry=self.max_retry,
                        repeats=self.repeats, weights_dir=self.weights_dir, device=self.device_spec,
                        deterministic=self.deterministic)
        processes = [context.Process(target=_worker_main, name=f"bench worker {i}",
                                     args=({**settings, "worker_index": i,
                                            "listeners": self.listeners.for_worker(i).listeners},))
                     for i in range(self.workers)]
        for process in processes:
            process.start()
        try:
            for process in processes:
                while process.is_alive():
                    process.join(0.5)
                    interrupts.checkpoint()
        except KeyboardInterrupt:  # the workers got it too (one process group), or get SIGTERM now
            for process in processes:
                process.terminate()
            for process in processes:
                process.join(60)
            raise
        codes = [p.exitcode for p in processes]
        if any(codes):
            raise BenchError(f"{sum(1 for c in codes if c)} of {self.workers} workers failed (exit codes {codes}); "
                             "their errors are printed above")

    # ------------------------------------------------------------------------------ the end

    def _stopped_by_signal(self, started: float) -> None:
        """Record that Ctrl-C or SIGTERM stopped the sweep (unless the listeners were already told
        that it ended); a second signal meanwhile does not cut the records short."""
        with interrupts.deferred():
            interrupts.acted_on()
            if not self._closed:
                self._interrupted()
                self._ended_early("interrupted", started)

    def _interrupted(self) -> None:
        """Tell the listeners about this process's trials that Ctrl-C or SIGTERM stopped (Optuna
        marked them FAIL; their record says "interrupted")."""
        if self._study is None:
            return
        for record in study_records(self._study):
            if record.worker == WORKER and record.fail_reason == INTERRUPTED and record.number not in self._ended:
                self.listeners.trial_ended(record)

    def _ended_early(self, status: str, started: float) -> None:
        """Tell the listeners that the sweep stopped (interrupted or failed), with what it has."""
        if self._study is None or self.worker_index is not None:
            return
        result = self.result()
        result.status, result.seconds = status, time.perf_counter() - started
        self._closed = True
        self.listeners.study_ended(result)

    def _finish(self, started: float) -> SweepResult:
        result = self.result()
        result.exhausted = self.exhausted or self._shortfall()
        if self.timed and result.front:
            self._time_front(result)
        if self.report_dir is not None:
            from ..results.report import write_report

            result.report_paths = [str(p) for p in write_report(result, self.report_dir)]
        result.seconds = time.perf_counter() - started
        interrupts.checkpoint()
        with interrupts.deferred():  # the parent run is closed whole; a signal meanwhile is raised after
            self.listeners.study_ended(result)
            self._closed = True
        return result

    def _time_front(self, result: SweepResult) -> None:
        """Time the front's networks and the stock architecture again, interleaved in one session
        (per-trial timings come from different moments of a drifting machine); store the medians
        and ratios to the stock network in the study's ``front_latency`` attribute.

        Networks are built from their records' configs with fresh weights: latency does not
        depend on the trained values."""
        reference = resolve_architecture(self.space.architecture)
        candidates = [Candidate(f"{self.space.architecture} (stock)", build_model(reference, seed=0))]
        for r in result.front_records:
            arch = Architecture(r.config.get("name", f"trial {r.number}"), r.config)
            candidates.append(Candidate(f"trial {r.number}", build_model(arch, seed=0)))
        timed = measure(candidates, reference.config["in_channels"], self._data.size, SWEEP_LATENCY)
        result.front_latency = {
            "reference": candidates[0].label, "reference_ms": timed[0].median_ms, "protocol": timed[0].protocol,
            "trials": {str(r.number): {"median_ms": t.median_ms, "iqr_ms": t.iqr_ms, "ratio": t.ratio}
                       for r, t in zip(result.front_records, timed[1:])}}
        front_latency(self.study, result.front_latency)

    def _enqueue_interrupted(self) -> None:
        """Networks whose training Ctrl-C or SIGTERM stopped are tried again first (a trial
        whose worker died is retried by Optuna's heartbeat callback instead)."""
        found = study_records(self.study)
        retried = {r.retry_of for r in found if r.retry_of is not None}
        for record in found:
            if record.fail_reason == INTERRUPTED and record.sample and record.number not in retried:
                enqueue(self.study, record.sample, retry_of=record.number)

    def _enqueue_stock(self, reference: Architecture) -> None:
        """Train the space's stock architecture first, when the space can express it: the
        reference that every front member is compared with, image by image."""
        sample = stock_sample(self.space, reference.config)
        if sample is None:
            return
        overrides = sample_overrides(FixedTrial(sample), self.space)
        if resolve_architecture(self.space.architecture, overrides).hash == reference.hash:
            enqueue(self.study, sample)

    def _study_info(self, reference_hash: str) -> StudyInfo:
        data, space = self._data, self.space
        return StudyInfo(
            study=self.name, space=space.name, description=space.description, objectives=dict(space.objectives),
            constraints=dict(space.constraints), architecture=space.architecture, reference_hash=reference_hash,
            data={"source": data.dataset.source, "size": data.size, "split_hash": data.split.hash,
                  "mode": data.dataset.protocol.mode, "protocol": data.dataset.protocol.describe(),
                  "classes": data.dataset.classes, "train": len(data.split.train), "val": len(data.split.val),
                  "test": len(data.split.test)},
            recipe=space.recipe.to_dict(), sampler=space.study["sampler"], seed=int(space.study["seed"]),
            trials=self.trials, repeats=self.repeats, storage=redact(self.storage),
            tracking_uri=redact(self.tracking_uri or ""), space_file=str(space.source), workers=self.workers,
            vary={path: describe(dist) for path, dist in space.vary.items()}, pruner=space.pruner.to_dict(),
            sampler_settings=sampler_settings(space, self.trials))


def load_result(study: Any) -> SweepResult:
    """An Optuna study's records, front and timed front (for ``bench report``: from the storage
    alone, see :func:`bench.search.study.load_study`)."""
    info = study_info(study)
    found = study_records(study)
    result = SweepResult(info, found, front_records(found, info.objectives), front_latency(study))
    weigh_front(result)
    result.hypervolume = front_hypervolume(result)
    result.front_probability = front_membership(found, info.objectives)
    return result


def front_hypervolume(result: SweepResult) -> Optional[float]:
    """The hypervolume of the front, as :data:`SweepResult.HYPERVOLUME` states it."""
    names = list(result.info.objectives)
    trained = [r for r in result.records if r.state == "COMPLETE" and r.feasible and r.duplicate_of is None
               and all(r.value(n) is not None for n in names)]
    if not trained:
        return None
    losses = []
    for name, direction in result.info.objectives.items():
        values = [r.value(name) for r in trained]
        low, span = min(values), (max(values) - min(values)) or 1.0
        losses.append([(v - low) / span if direction == "minimize" else 1 - (v - low) / span for v in values])
    front = {r.number for r in result.front_records}
    points = [[axis[i] for axis in losses] for i, r in enumerate(trained) if r.number in front]
    return hypervolume(points, [1.1] * len(names))


def _worker_main(settings: dict[str, Any]) -> None:
    """One worker process of :meth:`Sweep._run_workers`."""
    try:
        Sweep(**settings).run()
    except KeyboardInterrupt:  # its trial is marked; the coordinating process says so
        raise SystemExit(130) from None


def _violation(value: float, bound: dict[str, float]) -> float:
    """Optuna's convention: <= 0 feasible; the amount by which a bound is exceeded otherwise."""
    return max(value - bound.get("max", math.inf), bound.get("min", -math.inf) - value)


def _violation_text(objective: Objective, value: float, bound: dict[str, float]) -> str:
    """``params 1.49 M > 1 M``: a violated constraint, in the objective's display unit."""
    if value > bound.get("max", math.inf):
        return f"{objective.name} {objective.show(value)} > {objective.show(bound['max'])}"
    return f"{objective.name} {objective.show(value)} < {objective.show(bound['min'])}"
