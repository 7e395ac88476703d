"""Sweeps on Optuna: a search space becomes a study whose trials build, measure and train networks.

The only module that drives Optuna studies (report.py uses its plotting alone). One trial: sample the space -> resolve the architecture ->
check contracts -> cheap costs (params, MACs, FLOPs, latency when asked) -> constraints -> train
on the study's fixed split (unless a constraint is violated or the same network was already
trained) -> validation Dice. Bad samples (a contract the combination breaks), NaN losses and
other errors end that trial as FAILED with the reason in its user attributes; the sweep goes on.

Storage (:mod:`bench.storage`): SQLite (the embedded default ``sqlite:///runs/optuna.db``),
PostgreSQL, MySQL or a journal file. Many workers, on one machine or many, may run the same
study: Optuna's RDB storage is the only coordinator. Heartbeats mark a trial whose worker died
(SIGKILL) as FAILED once the grace period has passed, and it is retried (a bounded number of
times) as a new trial; no network is trained twice (see ``_trained_by``), and a study stops at
exactly the requested number of complete trials.
"""
from __future__ import annotations

import copy
import datetime
import json
import math
import os
import socket
import time
import warnings
import zlib
from dataclasses import dataclass
from typing import Any, Callable, Optional

import optuna
import torch
from optuna.trial import TrialState

from .assemble import build_model, check_input_size, plan_architecture
from .config import get_path, resolve_architecture
from .deploy import deploy
from .profile import form_cost
from .data.dataset import SegmentationData, load_data
from .data.split import Split, make_split
from .errors import BenchError
from .experiment import check_classes
from .latency import Candidate, Protocol, measure, measure_latency
from .memory import forward_peak_memory
from .pareto import pareto_front
from .storage import make_storage, retry_race
from .space import BlockChoice, Distribution, SearchSpace
from .train import TrainingDiverged, evaluate, train_model

DEFAULT_STORAGE = "sqlite:///runs/optuna.db"

optuna.logging.set_verbosity(optuna.logging.WARNING)


def sample_overrides(trial: optuna.Trial, space: SearchSpace) -> list[str]:
    """``--set`` overrides for one sample. A block choice replaces the slot whole, then its
    conditional parameters (named ``<slot>.<block>.<param>`` in Optuna) are set."""
    overrides = []
    for path, dist in space.vary.items():
        if isinstance(dist, BlockChoice):
            block = trial.suggest_categorical(f"{path}.type", list(dist.options))
            overrides.append(f"{path}={{type: {block}}}")
            for param, sub in dist.options[block].items():
                overrides.append(f"{path}.{param}={json.dumps(_suggest(trial, f'{path}.{block}.{param}', sub))}")
        else:
            overrides.append(f"{path}={json.dumps(_suggest(trial, path, dist))}")
    return overrides


def _suggest(trial: optuna.Trial, name: str, dist: Distribution) -> Any:
    if dist.kind == "choices":
        return trial.suggest_categorical(name, list(dist.choices))
    if dist.kind == "int":
        return trial.suggest_int(name, int(dist.low), int(dist.high), step=int(dist.step or 1), log=dist.log)
    return trial.suggest_float(name, dist.low, dist.high, step=dist.step, log=dist.log)


@dataclass
class StudyData:
    dataset: SegmentationData
    split: Split
    size: int


def prepare_study_data(space: SearchSpace, data: Optional[str], size: Optional[int]) -> StudyData:
    """The one dataset and split every trial of the study uses (seeded by the study seed)."""
    source = data or space.data["source"]
    size = size or space.data["size"]
    dataset = load_data(source, size, 3, synthetic_count=int(space.data["count"]), seed=int(space.study["seed"]))
    split = make_split(dataset.stems, dataset.source, dataset.content_hash, int(space.study["seed"]))
    return StudyData(dataset, split, int(dataset.images.shape[-1]))


def make_sampler(space: SearchSpace, seed_offset: int = 0) -> optuna.samplers.BaseSampler:
    """The space's sampler, seeded by the study seed plus ``seed_offset`` (distinct per worker:
    workers seeded alike would all propose the same networks)."""
    seed = int(space.study["seed"]) + seed_offset
    name = space.study["sampler"]
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    grid = {}
    for path, dist in space.vary.items():
        if isinstance(dist, BlockChoice) and any(dist.options.values()):
            raise BenchError(f"{space.source}: the grid sampler needs plain choices; {path} has "
                             "conditional parameters. Use nsga2, tpe or random.")
        if isinstance(dist, BlockChoice):
            grid[f"{path}.type"] = list(dist.options)
        elif dist.kind != "choices":
            raise BenchError(f"{space.source}: the grid sampler needs choices; {path} is a range.")
        else:
            grid[path] = list(dist.choices)
    return optuna.samplers.GridSampler(grid, seed=seed)


def open_study(space: SearchSpace, name: str, storage: str, heartbeat: int = 10, grace: int = 30,
               max_retry: int = 2, on_stale: Optional[Callable[[optuna.trial.FrozenTrial], None]] = None,
               seed_offset: int = 0) -> optuna.Study:
    """Create the study, or load it if it exists, safely when several workers do so at once.

    A trial whose worker stopped sending heartbeats for ``grace`` seconds is failed by the next
    worker that looks, handed to ``on_stale`` (to close its MLflow run), and retried as a new
    trial with the same parameters at most ``max_retry`` times.
    """
    with warnings.catch_warnings():  # the retry callback is "experimental" in Optuna 5
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retry)

    def failed(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if on_stale is not None:
            on_stale(trial)
        retry(study, trial)

    rdb = make_storage(storage, heartbeat, grace, failed)
    return retry_race(lambda: optuna.create_study(
        study_name=name, storage=rdb, sampler=make_sampler(space, seed_offset),
        directions=list(space.objectives.values()), load_if_exists=True), f"opening study {name!r}")


def worker_seed_offset(storage: str, worker_index: Optional[int]) -> int:
    """0 for a lone process on a local storage, so that its sweep is reproducible; the worker's
    index among ``--workers N``; and for a database server, where workers on other machines are
    expected, a number from the host name and process id."""
    if worker_index is not None:
        return worker_index + 1
    if storage.startswith(("postgresql", "mysql")):
        return zlib.crc32(f"{socket.gethostname()}:{os.getpid()}".encode()) % 1_000_003
    return 0


def bind_study_data(study: optuna.Study, space: SearchSpace, data: StudyData) -> None:
    """Record the study's space and split on first use; refuse a resume on another split.

    Raises:
        BenchError: the study was run on data that gives another split.
    """
    recorded = study.user_attrs.get("split_hash")
    if recorded and recorded != data.split.hash:
        raise BenchError(f"study {study.study_name!r} was run on another split ({recorded[:12]}); this data "
                         f"gives {data.split.hash[:12]}. Use another --study name, or the same --data and --size.")
    if not recorded:
        study.set_user_attr("split_hash", data.split.hash)
        study.set_user_attr("space", str(space.source))
        study.set_user_attr("data", {"source": data.dataset.source, "size": data.size})


def load_study(name: str, storage: str) -> optuna.Study:
    """An existing study. Raises BenchError if there is none of that name in ``storage``."""
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        raise BenchError(f"no study {name!r} in {storage}. Run `bench run --space SPACE --study {name}` "
                         "first, or pass --storage.") from None


def completed(study: optuna.Study) -> int:
    """Number of COMPLETE trials."""
    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))


Report = Callable[[optuna.trial.FrozenTrial | optuna.Trial, str, dict], None]


SWEEP_LATENCY = Protocol(max_seconds=3.0)  # per trial; the front is timed again, interleaved


def wants_latency(space: SearchSpace) -> bool:
    return "latency_ms" in space.objectives or "latency_ms" in space.constraints


def make_objective(space: SearchSpace, data: StudyData, study: optuna.Study,
                   report: Optional[Report] = None, target: Optional[int] = None,
                   on_start: Optional[Callable[[optuna.Trial], None]] = None,
                   grace: Optional[float] = 30.0, poll: float = 0.5) -> Callable[[optuna.Trial], list[float]]:
    """The trial function (see the module docstring).

    With ``target``, a trial that finds ``target`` earlier trials complete, running or waiting
    (other workers got there first) ends PRUNED at once, so that the study reaches exactly
    ``target`` complete trials. ``on_start`` sees every trial first (to open its MLflow run).
    ``grace``: the storage's heartbeat grace period in seconds, or None where it has no
    heartbeats (a journal file): then no trial waits on another, since a dead one would never end.
    """
    timed = wants_latency(space)

    def objective(trial: optuna.Trial) -> list[float]:
        started = time.perf_counter()
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        if on_start is not None:
            on_start(trial)
        if target is not None and _ahead(study, trial.number) >= target:
            trial.set_user_attr("skipped", f"the study already had {target} trials complete or under way")
            raise optuna.TrialPruned()
        try:
            overrides = sample_overrides(trial, space)
            trial.set_user_attr("overrides", overrides)
            arch = resolve_architecture(space.architecture, overrides)
            trial.set_user_attr("config_hash", arch.hash)
            trial.set_user_attr("blocks", _block_types(arch.config))
            check_classes(arch, data.dataset)
            plan = plan_architecture(arch)
            check_input_size(arch, plan, data.size)
            model = build_model(arch, seed=space.recipe.seed, plan=plan)
            x = torch.randn(1, arch.config["in_channels"], data.size, data.size)
            train_form, deploy_form = form_cost(model, x), form_cost(deploy(copy.deepcopy(model)), x)
            cost = {"params": train_form.params, "macs": train_form.macs, "flops": train_form.flops,
                    "deploy_params": deploy_form.params, "deploy_macs": deploy_form.macs,
                    "deploy_flops": deploy_form.flops}
            # counted, not timed: cheap and machine-independent, so every trial records it
            cost["peak_memory_mb"] = forward_peak_memory(model, arch.config["in_channels"], data.size).total_bytes / 2**20
            if timed:
                latency = measure_latency(model, arch.config["in_channels"], data.size, protocol=SWEEP_LATENCY)
                cost["latency_ms"] = latency.median_ms
                trial.set_user_attr("latency", latency.to_dict())
            trial.set_user_attr("cost", cost)
            violations = []
            for quantity, bound in space.constraints.items():
                violations.append(_violation(cost[quantity], bound))
                trial.set_constraint(quantity, violations[-1])  # read by the NSGA-II / TPE samplers
            trial.set_user_attr("constraint_values", violations or [0.0])
            duplicate = _trained_by(study, arch.hash, trial.number, grace, poll)
            if duplicate is not None:
                trial.set_user_attr("duplicate_of", duplicate.user_attrs.get("duplicate_of", duplicate.number))
                trial.set_user_attr("trained", duplicate.user_attrs.get("trained", False))
                metrics = dict(duplicate.user_attrs.get("metrics", {}))
            elif any(v > 0 for v in violations):
                trial.set_user_attr("trained", False)
                metrics = {"val_dice": 0.0}  # not trained: infeasible, kept off every front
            else:
                metrics = _train(trial, model, space, data, arch.config["classes"], report)
                trial.set_user_attr("trained", True)
            trial.set_user_attr("metrics", metrics)
            trial.set_user_attr("seconds", time.perf_counter() - started)
            values = {**cost, **metrics}
            return [float(values[name]) for name in space.objectives]
        except (BenchError, RuntimeError, ValueError) as exc:
            trial.set_user_attr("fail_reason", f"{type(exc).__name__}: {exc}")
            raise

    return objective


def _train(trial: optuna.Trial, model, space: SearchSpace, data: StudyData, classes: int,
           report: Optional[Report]) -> dict[str, float]:
    split, dataset = data.split, data.dataset
    train, val, test = (dataset.subset(list(s)) for s in (split.train, split.val, split.test))
    progress = (lambda event, done, total, values: report(trial, event, {"done": done, "total": total, **values})) \
        if report else None
    result = train_model(model, train, val, space.recipe, classes, progress)
    test_metrics = evaluate(model, test, classes).summary()
    return {"val_dice": result.best_val_dice, "test_dice": test_metrics["dice_mean"],
            "test_dice_fg": test_metrics["dice_mean_fg"], "test_iou": test_metrics["iou_mean"],
            "best_epoch": result.best_epoch}


def _violation(value: float, bound: dict[str, float]) -> float:
    """Optuna's convention: <= 0 feasible; the amount by which a bound is exceeded otherwise."""
    return max(value - bound.get("max", math.inf), bound.get("min", -math.inf) - value)


ACTIVE = (TrialState.COMPLETE, TrialState.RUNNING, TrialState.WAITING)


def _ahead(study: optuna.Study, number: int) -> int:
    """Trials numbered before ``number`` that are complete, running or waiting to run."""
    return sum(1 for t in study.get_trials(deepcopy=False, states=ACTIVE) if t.number < number)


def _trained_by(study: optuna.Study, config_hash: str, number: int, grace: Optional[float],
                poll: float) -> Optional[optuna.trial.FrozenTrial]:
    """The complete trial whose results trial ``number`` reuses, or None if it trains itself.

    The network is trained by the lowest-numbered trial with its config hash; trial numbers come
    from the storage, so every worker agrees without a lock. A trial waits while an earlier one
    with the same hash is running, and while an earlier running trial has not yet published its
    hash (it might be the same network). Dead trials are failed while waiting (:func:`reap`), so
    a dead worker cannot block the others beyond the grace period. Without heartbeats
    (``grace`` None) nothing waits: only complete trials are reused.
    """
    while True:
        earlier = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING))
                   if t.number < number]
        same = [t for t in earlier if t.user_attrs.get("config_hash") == config_hash]
        done = [t for t in same if t.state == TrialState.COMPLETE]
        if done:
            return done[0]
        if grace is None or not same and all(
                "config_hash" in t.user_attrs for t in earlier if t.state == TrialState.RUNNING):
            return None
        reap(study, grace)
        time.sleep(poll)


def reap(study: optuna.Study, grace: float) -> None:
    """Fail the trials of dead workers: those whose heartbeats stopped (Optuna; they are retried),
    and those RUNNING for longer than ``grace`` without their objective having begun (a worker
    killed before the trial's first heartbeat, which Optuna never notices)."""
    with warnings.catch_warnings():  # "experimental" in Optuna 5, and what heartbeats are for
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    limit = datetime.datetime.now() - datetime.timedelta(seconds=grace)
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if "worker" not in t.user_attrs and t.datetime_start is not None and t.datetime_start < limit:
            try:
                study.tell(t.number, state=TrialState.FAIL)
            except (ValueError, RuntimeError):  # it finished meanwhile, or another worker reaped it
                pass


def _block_types(config: dict) -> dict[str, str]:
    paths = ("stem", "encoder.block", "encoder.down", "bottleneck", "skips.block", "decoder.block",
             "decoder.up", "decoder", "head")
    nodes = {p: get_path(config, p) for p in paths}
    return {p: node["type"] for p, node in nodes.items() if isinstance(node, dict) and "type" in node}


def run_study(study: optuna.Study, objective: Callable, trials: int, timeout: Optional[float] = None,
              on_trial: Optional[Callable[[optuna.trial.FrozenTrial], None]] = None,
              grace: Optional[float] = 30.0, poll: float = 1.0) -> None:
    """One worker: run trials until the study has ``trials`` COMPLETE ones (failures do not
    count), the ``timeout`` passes, or this worker has tried three times the number missing when
    it started. While the remaining trials are all under way in other workers, it waits: one of
    them may fail and need retrying (objectives made with ``target`` never overshoot); without
    heartbeats (``grace`` None) it does not wait, since a dead trial would never end."""
    budget = 3 * max(0, trials - completed(study))
    started, attempts = time.monotonic(), 0
    last: dict[str, TrialState] = {}

    def finished(_study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        last["state"] = trial.state
        if on_trial is not None:
            on_trial(trial)

    while completed(study) < trials and attempts < budget:
        if timeout is not None and time.monotonic() - started > timeout:
            return
        states = [t.state for t in study.get_trials(deepcopy=False, states=ACTIVE)]
        if grace is not None and TrialState.WAITING not in states and len(states) >= trials:
            reap(study, grace)
            time.sleep(poll)
            continue
        study.optimize(objective, n_trials=1, callbacks=[finished],
                       catch=(BenchError, RuntimeError, ValueError, TrainingDiverged))
        if last.get("state") != TrialState.PRUNED:
            attempts += 1  # a trial skipped because others got there first is no attempt


def front(study: optuna.Study, objectives: dict[str, str]) -> list[optuna.trial.FrozenTrial]:
    """COMPLETE, feasible trials on the Pareto front of the study's objectives (duplicates of a
    network appear once, as their first trial)."""
    trials = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
              if all(v <= 0 for v in t.user_attrs.get("constraint_values", [0.0]))
              and "duplicate_of" not in t.user_attrs]
    indices = pareto_front([t.values for t in trials], list(objectives.values()))
    return [trials[i] for i in indices]


def time_front(study: optuna.Study, space: SearchSpace, size: int,
               trials: list[optuna.trial.FrozenTrial]) -> dict[str, Any]:
    """Time the front's networks and the space's stock architecture again, interleaved in one
    session (per-trial timings come from different moments of a drifting machine), and store
    the medians and ratios to the stock network in the study's ``front_latency`` attribute.

    Networks are rebuilt from their configs with fresh weights: latency does not depend on the
    trained values."""
    reference = resolve_architecture(space.architecture)
    candidates = [Candidate(f"{space.architecture} (stock)", build_model(reference, seed=space.recipe.seed))]
    for t in trials:
        arch = resolve_architecture(space.architecture, t.user_attrs["overrides"])
        candidates.append(Candidate(f"trial {t.number}", build_model(arch, seed=space.recipe.seed)))
    results = measure(candidates, reference.config["in_channels"], size, SWEEP_LATENCY)
    record = {"reference": candidates[0].label, "reference_ms": results[0].median_ms,
              "protocol": results[0].protocol,
              "trials": {str(t.number): {"median_ms": r.median_ms, "iqr_ms": r.iqr_ms, "ratio": r.ratio}
                         for t, r in zip(trials, results[1:])}}
    study.set_user_attr("front_latency", record)
    return record
