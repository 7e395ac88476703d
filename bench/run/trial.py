"""One trial of a sweep: sample the space -> resolve the architecture -> plan, check the input
size, decide the constraints on what the plan tells (parameters: a design over the budget is
never built) -> build (:class:`bench.search.design.Design`) -> the objectives known before training and the
constraints (:mod:`bench.search.objectives`) -> train over the seeds on the study's fixed split
(:func:`bench.training.seeds.train_seeds`) unless a constraint is violated (then the trial ends
PRUNED, "not trained", with no accuracy) or the same network was trained already (its results
are copied) -> the objectives known after training. A trial that raises (a contract the
combination breaks, a NaN loss) ends FAILED with its reason; the sweep goes on. The pruner
watches the first seed (:mod:`bench.search.pruners`).
"""
from __future__ import annotations

import math
import re
import time
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Callable, Sequence

import torch

from ..arch.assemble import check_input_size, plan_architecture
from ..arch.config import Architecture, get_path, resolve_architecture
from ..arch.latency import Protocol
from ..core import interrupts
from ..core.errors import BenchError
from ..core.stats import estimate, mean_over_runs
from ..search.design import Design
from ..search.listeners import Listeners
from ..search.objectives import OBJECTIVES, Objective
from ..search.records import INTERRUPTED, TrialRecord
from ..search.study import (WORKER, RecordWriter, TrialEpochs, TrialPruned, ahead, sample_overrides, sampler_seed,
                            record_first_heartbeat, set_constraint, trained_by)
from ..training.checkpoint import save_checkpoint
from ..training.runs import SeedRun, pooled_scores
from ..training.seeds import TrainingStopped, train_seeds
from .experiment import check_classes
from .settings import SweepSettings
from .study_data import StudyData

SWEEP_LATENCY = Protocol(max_seconds=3.0)  # per trial; the front is timed again, interleaved
CATCH = (BenchError, RuntimeError, ValueError)  # a trial raising these fails; the sweep goes on
DUPLICATED = ("cost", "memory", "latency", "values", "violations", "trained", "metrics", "estimates", "seeds",
              "per_image", "skipped", "pruned", "rungs")  # what a trial of an already evaluated network copies
BLOCK_SLOTS = ("stem", "encoder.block", "encoder.down", "bottleneck", "skips.block", "decoder.block",
               "decoder.up", "decoder", "head")


class TrialRun:
    """The trial function of a sweep's study, for one process: ``settings``, the opened
    ``study``, its ``data``, the ``listeners`` told about the trial and its epochs, the
    ``device`` networks train on, and ``on_reaped`` (told the numbers of trials whose workers
    died, failed while this one waited on them)."""

    def __init__(self, settings: SweepSettings, study, data: StudyData, listeners: Listeners, device: torch.device,
                 on_reaped: Callable[[Sequence[int]], None]) -> None:
        self.settings, self.study, self.data, self.listeners = settings, study, data, listeners
        self.device, self.on_reaped = device, on_reaped
        self._latency_table = None

    def objective(self, trial) -> list[float]:
        """The trial function (see the module docstring), for ``study.optimize``."""
        started = time.perf_counter()
        record, save = TrialRecord(trial.number, worker=WORKER), RecordWriter(trial)
        record.sampler_seed = sampler_seed(self.study)
        try:
            # the trial's MLflow run is known to its record once it exists; a signal that came
            # meanwhile, or while Optuna created the trial, is raised at the end of this block
            with interrupts.deferred():
                record_first_heartbeat(trial)  # before the worker: reap() leaves a trial with one to the heartbeats
                save(record)
                self.listeners.trial_started(record)
                save(record)
            if ahead(self.study, trial.number) >= self.settings.trials:  # other workers got there first
                record.skipped = f"the study already had {self.settings.trials} networks evaluated or under way"
                save(record)
                raise TrialPruned(record.skipped)
            record.overrides = sample_overrides(trial, self.settings.space)
            record.sample = dict(trial.params)
            arch = resolve_architecture(self.settings.space.architecture, record.overrides)
            arch = self._named(arch, record)
            record.config, record.config_hash = arch.config, arch.hash
            record.blocks = {p: n["type"] for p in BLOCK_SLOTS if isinstance(n := get_path(arch.config, p), dict)
                             and "type" in n}
            save(record)  # the hash, early: later trials of the same network wait for this one
            check_classes(arch, self.data.dataset)
            original = trained_by(self.study, arch.hash, trial.number, self.settings.waits, on_reaped=self.on_reaped)
            if original is not None:  # the same network: its measurements and results (or fate), not new ones
                record.duplicate_of = original.duplicate_of if original.duplicate_of is not None else original.number
                for name in DUPLICATED:
                    setattr(record, name, getattr(original, name))
                for quantity, violation in record.violations.items():
                    set_constraint(trial, quantity, violation)
            else:
                if self._planned(record, arch, trial):
                    design = Design.build(arch, self.data.size, seed=self.settings.space.recipe.seed,
                                          latency_protocol=SWEEP_LATENCY)
                    self._measure(record, design, trial)
                save(record)
                if record.feasible:
                    self._train(record, design, trial, save)
                    if record.trained:
                        self._measure_after_training(record, design)
                else:
                    record.skipped = "not trained: " + "; ".join(
                        _violation_text(OBJECTIVES.get(q), record.values[q], self.settings.space.constraints[q])
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
        return [record.values[name] for name in self.settings.space.objectives]

    def interruptible(self, trial) -> list[float]:
        with interrupts.released():
            return self.objective(trial)

    def _named(self, arch: Architecture, record: TrialRecord) -> Architecture:
        """The sampled architecture under its own name and description (the hash ignores both)."""
        base = Path(self.settings.space.architecture).stem
        config = {**arch.config, "name": f"{base}-{re.sub(r'[^A-Za-z0-9.=]+', '-', record.label)}",
                  "description": f"{base} with " + ", ".join(f"{k} = {v}" for k, v in record.sample.items())
                  + f" (study {self.settings.study}, trial {record.number})"}
        return Architecture(config["name"], config, arch.source, arch.origins)

    def _planned(self, record: TrialRecord, arch: Architecture, trial) -> bool:
        """The objectives computable from the wiring plan (parameters, see
        :attr:`bench.search.objectives.Objective.planned`) and their constraints, before anything
        is built. False when one of those constraints is broken: the design is then never built,
        and its record holds the planned values and the violations known so far (the samplers are
        told the rest are unknown, as 0)."""
        plan = plan_architecture(arch)
        check_input_size(arch, plan, self.data.size)
        constraints = self.settings.space.constraints
        planned = {o.name: o.planned(plan) for o in self.settings.measures if o.planned is not None}
        record.values = {name: float(value) for name, value in planned.items() if value is not None}
        if self.settings.predicts_latency:
            predicted = self.latency_table.predict(arch, self.data.size, plan)
            record.values["latency_ms"] = predicted.ms
            record.latency = predicted.to_dict(self.settings.table_path())
        broken = {q: _violation(record.values[q], b) for q, b in constraints.items() if q in record.values}
        if all(v <= 0 for v in broken.values()):
            return True
        record.violations = broken
        for quantity in constraints:
            set_constraint(trial, quantity, broken.get(quantity, 0.0))
        return False

    def _measure(self, record: TrialRecord, design: Design, trial) -> None:
        """Objectives known before training, and the constraints (told to the samplers). Costly
        quantities (timing) not known already (predicted) are measured now only where a
        constraint needs them and the cheap constraints hold; otherwise after training
        (:meth:`_measure_after_training`), so that an untrained or pruned design costs no timing."""
        constraints = self.settings.space.constraints
        record.values.update({o.name: float(o.compute(design)) for o in self.settings.measures if not o.costly})
        if all(_violation(record.values[q], b) <= 0 for q, b in constraints.items() if q in record.values):
            record.values.update({o.name: float(o.compute(design)) for o in self.settings.measures
                                  if o.costly and o.name in constraints and o.name not in record.values})
        self._keep_measurements(record, design)
        for quantity, bound in constraints.items():
            if quantity in record.values:
                record.violations[quantity] = _violation(record.values[quantity], bound)
                set_constraint(trial, quantity, record.violations[quantity])

    def _measure_after_training(self, record: TrialRecord, design: Design) -> None:
        """The costly objectives a trained design still lacks (its latency, measured)."""
        record.values.update({o.name: float(o.compute(design)) for o in self.settings.measures
                              if o.costly and o.name not in record.values})
        self._keep_measurements(record, design)

    @staticmethod
    def _keep_measurements(record: TrialRecord, design: Design) -> None:
        record.cost = design.cost.to_dict()
        if design.measured("memory"):
            record.memory = design.memory.to_dict()
        if design.measured("latency"):
            record.latency = design.latency.to_dict()

    @property
    def latency_table(self):
        """This sweep's latency table (:mod:`bench.arch.latency_table`), read once per process."""
        if self._latency_table is None:
            from ..arch.latency_table import LatencyTable

            self._latency_table = LatencyTable.load(self.settings.table_path())
        return self._latency_table

    def _train(self, record: TrialRecord, design: Design, trial, save: RecordWriter) -> None:
        """Train the design ``repeats`` times (:func:`bench.training.seeds.train_seeds`: seeds
        seed, seed+1, ...; initial weights, batch order and augmentation change, the split does
        not) on the study's split, or on each fold that ranks designs, and score each run. The
        pruner watches the first run; a design it stops keeps that run's history and its figures
        so far in ``record.pruned``."""
        recipe, repeats = self.settings.space.recipe, self.settings.repeats
        folds = self.data.ranked if self.data.folds else [None]
        runs_in_all = repeats * len(folds)
        record.seeds = []
        for k, fold in enumerate(folds):
            def progress(j: int, seed: int, k: int = k):
                so_far: list[float] = []

                def report(event: str, done: int, total: int, values: dict) -> None:
                    if event == "epoch":
                        so_far.append(values["val_dice"])
                        self.listeners.epoch_ended(record, {**values, "epochs": total, "seed": seed, "fold": k if fold else None,
                                                            "run": k * repeats + j + 1, "runs": runs_in_all})
                        if k == 0 and j == 0:
                            self._judge(record, trial, save, done, max(so_far))
                return nullcontext(report)

            resume = self.settings.weights_dir / "resume" if self.settings.weights_dir else None
            runs = train_seeds(design.arch, self.data.parts(k), recipe, repeats, self.device, progress,
                               resume / f"fold_{k + 1}" if resume and fold else resume,
                               design.model if k == 0 else None)
            record.seeds += [replace(run, fold=k) if fold else run for run in runs]
            if not runs[-1].complete:
                last = runs[-1]
                record.pruned = {"epoch": last.metrics["epochs_trained"], "val_dice": last.metrics["val_dice"],
                                 "pruner": self.settings.space.pruner.name, "reason": last.stopped}
                return
        record.artifacts.update(self.keep_weights(record, record.seeds, design.arch))
        runs = [run.metrics for run in record.seeds]
        samples = {name: [run[name] for run in runs] for name in runs[0]}
        samples.update({o.name: [float(o.compute(run.scores())) for run in record.seeds] for o in self.settings.scores})
        estimates = {name: estimate(values) for name, values in samples.items()}
        record.estimates = {name: e.to_dict() for name, e in estimates.items()}
        record.metrics = {name: estimates[name].mean for name in runs[0]}
        record.values.update({o.name: estimates[o.name].mean for o in self.settings.scores})
        record.per_image = mean_over_runs(pooled_scores(record.seeds))
        record.trained = True

    def keep_weights(self, record: TrialRecord, runs: Sequence[SeedRun], arch: Architecture) -> dict[str, str]:
        """Each run's weights saved under ``weights_dir/trial_<n>/<fold_k/>seed_<s>/model.pt``;
        returns them as artifacts (name in the run -> path), which the MLflow tracker uploads."""
        if self.settings.weights_dir is None or self.settings.keep_weights == "none":
            return {}
        recipe, artifacts = self.settings.space.recipe, {}
        for run in runs:
            path = self.settings.weights_dir / f"trial_{record.number}" / run.label / "model.pt"
            split = self.data.splits[run.fold or 0]
            save_checkpoint(path, run.model, arch, {
                "recipe": replace(recipe, seed=run.seed).to_dict(), "test": run.test,
                "best_epoch": run.metrics["best_epoch"], "data": self.data.dataset.record(),
                "split": split.to_record(), "study": self.settings.study,
                "trial": record.number})
            artifacts[f"{run.label}/model.pt"] = str(path.resolve())
        return artifacts

    def _judge(self, record: TrialRecord, trial, save: RecordWriter, epoch: int, val_dice: float) -> None:
        """The pruner's decision after ``epoch`` of the first seed (best validation Dice so far
        ``val_dice``, see :mod:`bench.search.pruners`); raises :class:`TrainingStopped` to stop training."""
        view = TrialEpochs(trial, record, save, self.study, self.settings.space.objectives, self.settings.space.recipe.epochs)
        reason = self.settings.space.pruner.after_epoch(view, epoch, val_dice)
        if reason is not None:
            raise TrainingStopped(epoch, val_dice, reason)


def _violation(value: float, bound: dict[str, float]) -> float:
    """Optuna's convention: <= 0 feasible; the amount by which a bound is exceeded otherwise."""
    return max(value - bound.get("max", math.inf), bound.get("min", -math.inf) - value)


def _violation_text(objective: Objective, value: float, bound: dict[str, float]) -> str:
    """``params 1.49 M > 1 M``: a violated constraint, in the objective's display unit."""
    if value > bound.get("max", math.inf):
        return f"{objective.name} {objective.show(value)} > {objective.show(bound['max'])}"
    return f"{objective.name} {objective.show(value)} < {objective.show(bound['min'])}"
