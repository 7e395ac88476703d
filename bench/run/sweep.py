"""Sweeps from Python: a search space becomes an Optuna study whose trials build, measure and
train networks. ``bench run`` is a thin layer over this::

    from bench.run.sweep import Sweep

    sweep = Sweep("cmrf_swap", study="dsb", data="../shared/data/dsb2018_96", size=96, trials=40)
    result = sweep.run()                  # SweepResult: every trial's record, the front
    for record in sweep.front():          # TrialRecord: sample, config, cost, values, metrics ...
        print(record.number, record.sample, record.values)
    sweep.report("reports/dsb")           # tables and plots

The sweep's settings are one frozen record (:class:`bench.run.settings.SweepSettings`); one trial
is :class:`bench.run.trial.TrialRun`; worker processes are :mod:`bench.run.workers`; the
results are read back by :func:`bench.results.loading.load_result`. This module runs the trial
loop and finishes the sweep: the front timed again, the report, the listeners told.

Progress and tracking are listeners (:mod:`bench.search.listeners`); the MLflow tracker is added when
``tracking_uri`` is given. Many workers, in this process's children (``workers``) or on other
machines (the same study and storage), share one study; see :mod:`bench.search.study`.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Optional, Sequence

import torch

from ..arch.assemble import build_model, check_budget, check_input_size, plan_architecture
from ..arch.config import Architecture, resolve_architecture
from ..arch.latency import Candidate, Protocol, measure
from ..core import interrupts
from ..core.device import resolve_device, set_deterministic, worker_device
from ..core.errors import BenchError
from ..core.files import ensure_writable
from ..data.source import DataSource, source_from_space
from ..results.loading import load_result
from ..search.block_cover import check_latency_table
from ..search.listeners import Listeners, SweepListener
from ..search.records import INTERRUPTED, StudyInfo, SweepResult, TrialRecord
from ..search.space import SearchSpace, space_size
from ..search.study import (STALL, WORKER, FixedTrial, all_under_way, bind, drawn, enqueue, evaluated, front_latency,
                            open_study, optimize_one, reap, sample_overrides, stock_sample)
from ..search.study import records as study_records
from .settings import SweepSettings
from ..results.evidence import stock_record
from .front_folds import cross_validate_front, networks_to_cross_validate
from .study_data import StudyData, prepare_study_data
from .weights import kept, release, store_kept
from .trial import CATCH, TrialRun
from .workers import run_workers

__all__ = ["Sweep", "SweepSettings", "load_result"]

FRONT_LATENCY = Protocol(max_seconds=3.0)  # the front, timed again interleaved at the end


class Sweep:
    """A sweep of ``space`` (a built-in name, a YAML path, a :class:`SearchSpace`, or the
    :class:`SweepSettings` of a sweep, as its worker processes receive them). The keywords below
    become one frozen :class:`SweepSettings` (:attr:`settings`).

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
        threads: torch threads per worker (default: ``OMP_NUM_THREADS`` where set, else the cores
            divided among the workers).
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
        latency: ``measured`` (default: each trained design is timed; before training only where a
            constraint needs it) or ``predicted`` (from this machine's table of measured blocks,
            ``bench latency-table build``: decided on the plan, before building, in milliseconds);
            either way the front is timed again at the end.
        latency_table: the table file for ``predicted`` (default: this machine's, in the cache folder).
    """

    def __init__(self, space: str | Path | SearchSpace | SweepSettings, *, listeners: Sequence[SweepListener] = (),
                 worker_index: Optional[int] = None, **settings: Any) -> None:
        self.settings = space if isinstance(space, SweepSettings) else SweepSettings.of(space, **settings)
        self.worker_index = worker_index
        self.device = resolve_device(worker_device(self.settings.device, worker_index or 0))
        self.listeners = Listeners(listeners)
        self._study = None
        self._data: Optional[StudyData] = None
        self._trial: Optional[TrialRun] = None
        self.info: Optional[StudyInfo] = None
        self._ended: set[int] = set()  # trials this process has told the listeners about
        self.exhausted: Optional[str] = None  # why the sweep stopped short of ``trials``, if it did
        self._closed = False  # the listeners were told that the study ended

    @property
    def space(self) -> SearchSpace:
        return self.settings.space

    @property
    def name(self) -> str:
        """The study's name."""
        return self.settings.study

    # ------------------------------------------------------------------------------ public

    def run(self) -> SweepResult:
        """Run trials until the study has ``trials`` complete ones, then (unless this is a
        worker of a sweep coordinated elsewhere) find the front, time it again if the study
        has a timed objective, write the report if ``report_dir`` was given, and tell the
        listeners. Returns the result (in a worker: the records so far)."""
        started = time.perf_counter()
        previous_threads = torch.get_num_threads()
        torch.set_num_threads(self.settings.threads)
        if self.settings.deterministic:
            set_deterministic(True)
        with interrupts.handling():
            try:
                interrupts.checkpoint()
                self.open()
                if self.settings.workers > 1 and self.worker_index is None:  # a worker runs trials
                    run_workers(self.settings, self.listeners)
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
        settings = self.settings
        return source_from_space(self.space.data, settings.data, {"size": settings.size, "patch": settings.patch})

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
            given = f"--{option}" if (self.settings.size or self.settings.patch) else f"{self.space.source}: data.{option}"
            raise BenchError(f"{given} {size}: {exc}") from None
        for folder, what in ((self.settings.report_dir, "report_dir"), (self.settings.weights_dir, "weights_dir")):
            if folder is not None:
                ensure_writable(folder, what, create=False)
        if self.settings.tracking_uri:
            from ..results.mlflow_store import check_tracking
            from ..results.tracking import MlflowTracker

            check_tracking(self.settings.tracking_uri)
        if self.settings.predicts_latency:
            check_latency_table(self.settings.table_path(), self.space, size)
        self._data = prepare_study_data(self.space, source, reference.config["in_channels"], self.settings.folds,
                                        self.settings.rank_folds)
        with interrupts.deferred():  # the study and its MLflow run are created whole, or not at all
            settings = self.settings
            study = open_study(self.space, self.name, settings.storage, settings.heartbeat, settings.grace, settings.max_retry,
                               on_stale=self._trial_died, trials=self.settings.trials)
            self.info = self.settings.study_info(self._data, reference.hash)
            bind(study, self.info)
            self._study = study
            if self.worker_index is None and not study.trials and self.space.study["stock"]:
                self._enqueue_stock(reference)
            if self.worker_index is None:
                self._enqueue_interrupted()
            if self.settings.tracking_uri:
                self.listeners.listeners.insert(0, MlflowTracker(self.settings.tracking_uri))
            self.listeners.study_started(self.info, study_records(study))

    @property
    def trial(self) -> TrialRun:
        """The trial function of this process (:class:`bench.run.trial.TrialRun`)."""
        if self._trial is None:
            self._trial = TrialRun(self.settings, self.study, self._data, self.listeners, self.device,
                                   self._orphans_failed)
        return self._trial

    def objective(self, trial) -> list[float]:
        """The trial function, for ``study.optimize`` (see :mod:`bench.run.trial`)."""
        return self.trial.objective(trial)

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
        budget = 3 * max(1, self.settings.trials - evaluated(self.study))
        size = space_size(self.space)
        started, failures, barren = time.monotonic(), 0, 0
        while evaluated(self.study) < self.settings.trials and failures < budget:
            interrupts.checkpoint()
            if self.settings.timeout is not None and time.monotonic() - started > self.settings.timeout:
                return
            samples, networks, feasible = drawn(self.study)
            waiting = any(r.state == "WAITING" for r in study_records(self.study))  # retries come first
            if not waiting and ((size is not None and samples >= size) or barren >= STALL):
                self.exhausted = self._exhausted_text(size, samples, networks, feasible, barren)
                return
            if self.settings.waits is not None and all_under_way(self.study, self.settings.trials):
                self._orphans_failed(reap(self.study, self.settings.grace))
                time.sleep(poll)
                continue
            # A signal while Optuna creates or tells the trial, or while its MLflow run is closed,
            # would leave either RUNNING: it is held until they are done, and raised in the trial.
            with interrupts.deferred():
                record = optimize_one(self.study, self.trial.interruptible, CATCH)
                self._ended.add(record.number)
                self.listeners.trial_ended(record)
                self._release_weights(record)
            failures += record.status == "failed"
            barren = 0 if record.counted else barren + (record.status != "skipped")

    def _shortfall(self) -> Optional[str]:
        """Why the study has fewer than ``trials`` networks evaluated (None when it has them):
        for the coordinator of worker processes, which did not see their loops end."""
        have = evaluated(self.study)
        if have >= self.settings.trials:
            return None
        size = space_size(self.space)
        samples, networks, feasible = drawn(self.study)
        if size is not None and samples >= size:
            return self._exhausted_text(size, samples, networks, feasible, 0)
        if self.settings.timeout is not None:
            return f"stopped at {have} of {self.settings.trials} networks: the timeout ({self.settings.timeout:g} s) passed."
        return (f"stopped at {have} of {self.settings.trials} networks: too many trials failed or added no network "
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
            return (f"stopped with none of {self.settings.trials} networks evaluated: {held}. Every design failed or broke a "
                    f"constraint: see each trial's reason above (or `bench report --study {self.name}`), then fix the "
                    "space or widen its constraints.")
        return (f"stopped at {have} of {self.settings.trials} networks: {held}. Widen the space or its constraints, "
                f"or ask for --trials {have}.")

    def _trial_died(self, trial) -> None:
        """A trial whose worker stopped sending heartbeats, just failed by this process."""
        self.listeners.trial_ended(TrialRecord.from_trial(trial))

    def _orphans_failed(self, numbers: Sequence[int]) -> None:
        """Trials of workers killed before their first heartbeat, just failed by this process."""
        for number in numbers:
            self.listeners.trial_ended(TrialRecord.from_trial(self.study.trials[number]))

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
        if self.settings.timed and result.front:
            self._time_front(result)
        if self._data.folds and self._data.rank < self._data.folds and result.front:
            networks = networks_to_cross_validate(result.front_records, stock_record(result))
            cross_validate_front(self.study, self.settings, self._data, networks, self.device, self.trial.keep_weights,
                                 self.listeners.noted)
            result = self._reloaded(result)
        if self.settings.weights_dir is not None:
            self._store_weights(result)
            result = self._reloaded(result)
        result.seconds = time.perf_counter() - started  # so that the report says how long the sweep took
        if self.settings.report_dir is not None:
            from ..results.report import write_report

            result.report_paths = [str(p) for p in write_report(result, self.settings.report_dir)]
        result.seconds = time.perf_counter() - started
        interrupts.checkpoint()
        with interrupts.deferred():  # the parent run is closed whole; a signal meanwhile is raised after
            self.listeners.study_ended(result)
            self._closed = True
        return result

    def _release_weights(self, ended: Optional[TrialRecord] = None) -> None:
        """Delete the weights the sweep's policy no longer keeps (:mod:`bench.run.weights`)."""
        if self.settings.weights_dir is not None:
            release(self.study, self.records(), self.info.objectives, self.info.reference_hash,
                    self.settings.keep_weights, ended)

    def _store_weights(self, result: SweepResult) -> None:
        """At the end: the networks the policy keeps move into their trials' MLflow runs (with
        tracking) or stay in the weights folder; the rest are released."""
        self._release_weights()
        keep = kept(result.records, result.info.objectives, result.info.reference_hash, self.settings.keep_weights)
        extra = {n: figures.artifacts for n, figures in result.all_folds.items()}
        move = None
        if self.settings.tracking_uri:
            from ..results.tracking import model_mover

            move = model_mover(self.settings.tracking_uri, self._data.size)
        store_kept(self.study, result.records, keep, extra, move)

    def _reloaded(self, result: SweepResult) -> SweepResult:
        """The result read again from the study (what was stored since), with this run's own notes."""
        fresh = self.result()
        fresh.exhausted, fresh.front_latency = result.exhausted, result.front_latency
        return fresh

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
        timed = measure(candidates, reference.config["in_channels"], self._data.size, FRONT_LATENCY)
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
