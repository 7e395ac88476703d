"""Optuna underneath a sweep: the study, sampling a space, trials as records, and the
bookkeeping that lets many workers share one study. With the pruners and samplers beside it, the
only place that drives Optuna.

Storage (:mod:`bench.search.storage`): SQLite (the embedded default), PostgreSQL, MySQL or a journal
file. Heartbeats mark a trial whose worker died as FAILED once the grace period has passed, and
it is retried (a bounded number of times) as a new trial. No network is trained twice
(:func:`trained_by`), and :func:`ahead` lets a study stop at exactly its number of complete
trials.
"""
from __future__ import annotations

import datetime
import json
import math
import os
import socket
import time
import warnings
from typing import Any, Callable, Optional, Sequence

import optuna
import sqlalchemy
from optuna import TrialPruned
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.trial import FixedTrial, FrozenTrial, TrialState

from ..arch.config import get_path
from ..core.errors import BenchError
from .samplers import sampler_named
from .records import INTERRUPTED, StudyInfo, TrialRecord, counts
from .space import BlockChoice, Distribution, SearchSpace
from .storage import check_storage, damaged, make_storage, redact, retry_race

# Optuna logs every failed trial with its traceback; bench records the reason and prints one line
optuna.logging.set_verbosity(optuna.logging.ERROR)

__all__ = ["TrialPruned", "FixedTrial", "open_study", "load_study", "sample_overrides", "records", "RecordWriter"]

STALL = 100  # samples in a row that add no network: the space holds no more (sweeps and replays stop)
FINISHED_OR_RUNNING = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
WORKER = f"{socket.gethostname()}:{os.getpid()}"


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


def stock_sample(space: SearchSpace, stock: dict[str, Any]) -> Optional[dict[str, Any]]:
    """The Optuna parameters that reproduce ``stock`` (the space's resolved base architecture),
    or None when the space cannot express it (a block, parameter or value it does not offer)."""
    params: dict[str, Any] = {}
    for path, dist in space.vary.items():
        if isinstance(dist, BlockChoice):
            block = get_path(stock, path)
            if not isinstance(block, dict) or block.get("type") not in dist.options:
                return None
            params[f"{path}.type"] = block["type"]
            for param, sub in dist.options[block["type"]].items():
                if not _admits(sub, block.get(param)):
                    return None
                params[f"{path}.{block['type']}.{param}"] = block[param]
        elif _admits(dist, get_path(stock, path)):
            params[path] = get_path(stock, path)
        else:
            return None
    return params


def _admits(dist: Distribution, value: Any) -> bool:
    if value is None or isinstance(value, bool) != any(isinstance(c, bool) for c in dist.choices):
        return False
    if dist.kind == "choices":
        return value in dist.choices
    if not isinstance(value, (int, float)) or not dist.low <= value <= dist.high:
        return False
    if dist.kind == "int":
        return float(value).is_integer() and (int(value) - int(dist.low)) % int(dist.step or 1) == 0
    return dist.step is None or math.isclose((value - dist.low) / dist.step, round((value - dist.low) / dist.step))


def _suggest(trial: optuna.Trial, name: str, dist: Distribution) -> Any:
    if dist.kind == "choices":
        return trial.suggest_categorical(name, list(dist.choices))
    if dist.kind == "int":
        return trial.suggest_int(name, int(dist.low), int(dist.high), step=int(dist.step or 1), log=dist.log)
    return trial.suggest_float(name, dist.low, dist.high, step=dist.step, log=dist.log)


class FreshSeedSampler(optuna.samplers.BaseSampler):
    """The space's sampler, made when this process starts its first trial and seeded with the
    study seed plus that trial's number.

    Trial numbers come from the storage, so every process on a study, and every resume of it,
    draws its own sequence (same seeds would re-draw the first run's networks), while a fresh
    study run by one process starts from the study seed and is reproducible. The seed in use
    is :attr:`seed` (None before the first trial)."""

    def __init__(self, space: SearchSpace, trials: int) -> None:
        self.space, self.trials = space, trials
        self.seed: Optional[int] = None
        self._inner: Optional[optuna.samplers.BaseSampler] = None
        sampler_named(space.study["sampler"]).make(space, int(space.study["seed"]), trials)  # a space the sampler cannot take fails now

    def _sampler(self, trial: FrozenTrial) -> optuna.samplers.BaseSampler:
        if self._inner is None:
            self.seed = int(self.space.study["seed"]) + trial.number
            self._inner = sampler_named(self.space.study["sampler"]).make(self.space, self.seed, self.trials)
        return self._inner

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self._sampler(trial).before_trial(study, trial)

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict:
        return self._sampler(trial).infer_relative_search_space(study, trial)

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial, search_space: dict) -> dict:
        return self._sampler(trial).sample_relative(study, trial, search_space)

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str, param_distribution) -> Any:
        return self._sampler(trial).sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState,
                    values: Optional[Sequence[float]]) -> None:
        self._sampler(trial).after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        if self._inner is not None:
            self._inner.reseed_rng()

    def __str__(self) -> str:
        return str(self._inner or self.space.study["sampler"])


class TrialEpochs:
    """What a pruner sees of a trial after an epoch (:class:`bench.search.pruners.EpochView`):
    Optuna's ``Trial.report`` and ``should_prune``, the trial's record and the study's others."""

    def __init__(self, trial: optuna.Trial, record: TrialRecord, save: "RecordWriter", study: optuna.Study,
                 objectives: dict[str, str], epochs: int) -> None:
        self.record, self.objectives, self.epochs = record, objectives, epochs
        self._trial, self._save, self._study = trial, save, study

    def report(self, value: float, epoch: int) -> bool:
        self._trial.report(value, epoch)
        return self._trial.should_prune()

    def save(self) -> None:
        self._save(self.record)

    def others(self) -> list[TrialRecord]:
        return records(self._study)


def enqueue(study: optuna.Study, sample: dict[str, Any], **user_attrs: Any) -> None:
    """Ask for ``sample`` as the study's next trial (before anything the sampler draws)."""
    study.enqueue_trial(sample, user_attrs=user_attrs or None)


def sampler_seed(study: optuna.Study) -> Optional[int]:
    """The seed this process's sampler draws with (None before its first trial)."""
    return getattr(study.sampler, "seed", None)


def open_study(space: SearchSpace, name: str, storage: str, heartbeat: int = 10, grace: int = 30,
               max_retry: int = 2, on_stale: Optional[Callable[[FrozenTrial], None]] = None,
               trials: int = 12) -> optuna.Study:
    """Create the study, or load it if it exists, safely when several workers do so at once.

    A trial whose worker stopped sending heartbeats for ``grace`` seconds is failed by the next
    worker that looks, handed to ``on_stale``, and retried as a new trial with the same
    parameters at most ``max_retry`` times.
    """
    with warnings.catch_warnings():  # the retry callback is "experimental" in Optuna 5
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retry)

    def failed(study: optuna.Study, trial: FrozenTrial) -> None:
        if on_stale is not None:
            on_stale(trial)
        retry(study, trial)

    rdb = make_storage(storage, heartbeat, grace, failed)
    return retry_race(lambda: optuna.create_study(
        study_name=name, storage=rdb, sampler=FreshSeedSampler(space, trials),
        pruner=space.pruner.optuna_pruner(space.recipe.epochs), directions=list(space.objectives.values()),
        load_if_exists=True), f"opening study {name!r}")


def load_study(name: str, storage: str) -> optuna.Study:
    """An existing study, without creating anything.

    Raises:
        BenchError: no storage there, a damaged one, or no study of that name in it.
    """
    check_storage(storage, create=False)
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        raise BenchError(f"no study {name!r} in {redact(storage)}. Run `bench run --space SPACE --study {name}` "
                         "first, or pass --storage.") from None
    except sqlalchemy.exc.DatabaseError as exc:
        raise damaged(storage, exc) from None


def bind(study: optuna.Study, info: StudyInfo) -> None:
    """Record what the study is (:class:`StudyInfo`); refuse a resume on another split.

    Raises:
        BenchError: the study was run on data that gives another split, with other repeats, or ranked on
            other folds.
    """
    recorded = study.user_attrs.get("info", {})
    split = recorded.get("data", {}).get("split_hash")
    if split and split != info.data["split_hash"]:
        raise BenchError(f"study {study.study_name!r} was run on another split ({split[:12]}); this data "
                         f"gives {info.data['split_hash'][:12]}. Use another --study name, or the same --data "
                         "and --size.")
    if recorded and recorded.get("repeats", 1) != info.repeats:
        raise BenchError(f"study {study.study_name!r} trains each design {recorded.get('repeats', 1)} time(s); "
                         f"--repeats {info.repeats} would mix figures of different precision. Use --repeats "
                         f"{recorded.get('repeats', 1)}, or another --study name.")
    ranked = recorded.get("data", {}).get("rank_folds")
    if recorded and ranked != info.data.get("rank_folds"):
        raise BenchError(f"study {study.study_name!r} ranks designs on {ranked or 'no'} fold(s); --rank-folds "
                         f"{info.data.get('rank_folds')} would rank on others. Use --rank-folds {ranked}, or another "
                         "--study name." if ranked else f"study {study.study_name!r} was not cross-validated; use "
                         "another --study name for folds.")
    study.set_user_attr("info", info.to_dict())


def study_info(study: optuna.Study) -> StudyInfo:
    """The :class:`StudyInfo` recorded by :func:`bind`.

    Raises:
        BenchError: the study was not made by bench.
    """
    if "info" not in study.user_attrs:
        raise BenchError(f"study {study.study_name!r} was not made by `bench run` (no study record); "
                         "run it with bench run, or give another --study.")
    return StudyInfo.from_dict(study.user_attrs["info"])


def front_latency(study: optuna.Study, timed: Optional[dict] = None) -> Optional[dict]:
    """The study's front timed again, interleaved (stored when ``timed`` is given)."""
    if timed is not None:
        study.set_user_attr("front_latency", timed)
    return study.user_attrs.get("front_latency")


def front_folds(study: optuna.Study, stored: Optional[dict] = None) -> dict:
    """The front's training runs on the folds that did not rank designs, of a cross-validated study:
    ``{trial number: {fold: [SeedRun.to_dict()]}}`` (as strings; stored when ``stored`` is given)."""
    if stored is not None:
        study.set_user_attr("front_folds", stored)
    return study.user_attrs.get("front_folds", {})


def weights_decision(study: optuna.Study, number: int) -> Optional[dict[str, Any]]:
    """What became of trial ``number``'s weights (None: nothing decided yet)."""
    return study.user_attrs.get(f"weights:{number}")


def decide_weights(study: optuna.Study, number: int, kept: bool, why: str, size: int, where: Sequence[str] = ()) -> None:
    """Store what became of trial ``number``'s weights (``size`` bytes; ``where`` they are)."""
    study.set_user_attr(f"weights:{number}", {"kept": kept, "why": why, "bytes": int(size), "where": list(where)})


def weights_decisions(study: optuna.Study) -> dict[int, dict[str, Any]]:
    """Every trial's weights decision, by trial number, in trial order (the study keeps its
    attributes in the order of their names, where "weights:10" comes before "weights:2")."""
    return dict(sorted((int(key.split(":", 1)[1]), value) for key, value in study.user_attrs.items()
                       if key.startswith("weights:")))


def records(study: optuna.Study, states: Optional[Sequence[TrialState]] = None) -> list[TrialRecord]:
    """Every trial of the study (or those in ``states``) as a record."""
    return [TrialRecord.from_trial(t) for t in study.get_trials(deepcopy=False, states=states)]


class RecordWriter:
    """Stores a trial's record in its user attributes, writing only the fields that changed
    since the last call (the first call writes them all, so that nothing a retried trial
    inherited from the dead one survives)."""

    def __init__(self, trial: optuna.Trial) -> None:
        self.trial = trial
        self.saved: dict[str, str] = {}

    def __call__(self, record: TrialRecord) -> None:
        for key, value in record.user_attrs().items():
            encoded = json.dumps(value, sort_keys=True, default=str)
            if self.saved.get(key) != encoded:
                self.trial.set_user_attr(key, value)
                self.saved[key] = encoded


def _counted(t: FrozenTrial) -> bool:
    return counts(t.state.name, t.user_attrs.get("duplicate_of"), t.user_attrs.get("pruned"))


def evaluated(study: optuna.Study) -> int:
    """Distinct networks evaluated (:attr:`bench.search.records.TrialRecord.counted`)."""
    return sum(1 for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
               if _counted(t))


def ahead(study: optuna.Study, number: int) -> int:
    """Trials numbered before ``number`` that count, or are running or waiting (and may)."""
    return sum(1 for t in study.get_trials(deepcopy=False) if t.number < number and (
        _counted(t) or t.state in (TrialState.RUNNING, TrialState.WAITING)))


def all_under_way(study: optuna.Study, trials: int) -> bool:
    """Whether counted and running trials reach ``trials``, and none waits to run: nothing is
    left for another worker unless one of the running ones fails or does not count."""
    found = study.get_trials(deepcopy=False)
    if any(t.state == TrialState.WAITING for t in found):
        return False
    return sum(1 for t in found if _counted(t) or t.state == TrialState.RUNNING) >= trials


def drawn(study: optuna.Study) -> tuple[int, int, int]:
    """Distinct samples settled so far, distinct networks among them, and how many of those
    networks satisfy the constraints (for a space that may hold fewer than asked for). A sample
    is settled when its trial finished with its network resolved, except a trial that was
    interrupted or whose worker died: that network is tried again."""
    found = [t for t in study.get_trials(deepcopy=False) if t.user_attrs.get("config_hash") and (
        t.state in (TrialState.COMPLETE, TrialState.PRUNED)
        or t.state == TrialState.FAIL and t.user_attrs.get("fail_reason") not in (None, INTERRUPTED))]
    samples = {json.dumps(t.params, sort_keys=True, default=str) for t in found}
    networks: dict[str, bool] = {}
    for t in found:
        feasible = all(v <= 0 for v in (t.user_attrs.get("violations") or {}).values())
        networks[t.user_attrs["config_hash"]] = networks.get(t.user_attrs["config_hash"], True) and feasible
    return len(samples), len(networks), sum(networks.values())


def trained_by(study: optuna.Study, config_hash: str, number: int, grace: Optional[float],
               poll: float = 0.5,
               on_reaped: Callable[[list[int]], None] = lambda numbers: None) -> Optional[TrialRecord]:
    """The finished trial whose results trial ``number`` reuses, or None if it trains itself:
    one that trained the same network (COMPLETE), or measured it and found a constraint broken,
    or stopped it early (PRUNED).

    The network is evaluated by the lowest-numbered trial with its config hash; trial numbers come
    from the storage, so every worker agrees without a lock. A trial waits while an earlier one
    with the same hash is running, and while an earlier running trial has not yet published its
    hash (it might be the same network). Dead trials are failed while waiting (:func:`reap`), so
    a dead worker cannot block the others beyond the grace period. Without heartbeats
    (``grace`` None) nothing waits: only complete trials are reused.
    """
    while True:
        earlier = [t for t in study.get_trials(deepcopy=False, states=FINISHED_OR_RUNNING) if t.number < number]
        same = [t for t in earlier if t.user_attrs.get("config_hash") == config_hash]
        done = [t for t in same if t.state != TrialState.RUNNING]
        if done:
            return TrialRecord.from_trial(done[0])
        if grace is None or not same and all(
                t.user_attrs.get("config_hash") for t in earlier if t.state == TrialState.RUNNING):
            return None
        on_reaped(reap(study, grace))
        time.sleep(poll)


def record_first_heartbeat(trial: optuna.Trial) -> None:
    """Record ``trial``'s heartbeat now, in this thread, where its storage has heartbeats.

    Optuna's heartbeat thread writes the first one concurrently with the objective; a worker
    killed after the objective saved its worker (which makes :func:`reap` leave the trial to the
    heartbeats) but before that thread wrote would hold its trial RUNNING for ever. Called
    before the worker is saved, it makes "worker saved" imply "a heartbeat is recorded"."""
    storage = getattr(getattr(trial, "study", None), "_storage", None)  # None: a FixedTrial, no storage
    if isinstance(storage, BaseHeartbeat) and storage.get_heartbeat_interval() is not None:
        storage.record_heartbeat(trial._trial_id)


def reap(study: optuna.Study, grace: float) -> list[int]:
    """Fail the trials of dead workers: those whose heartbeats stopped (Optuna; they are retried,
    and the storage's callback hears of them), and those RUNNING for longer than ``grace``
    without their objective having begun (a worker killed before the trial's first heartbeat,
    which Optuna never notices). Returns the numbers of the latter."""
    with warnings.catch_warnings():  # "experimental" in Optuna 5, and what heartbeats are for
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    limit = datetime.datetime.now() - datetime.timedelta(seconds=grace)
    failed = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if "worker" not in t.user_attrs and t.datetime_start is not None and t.datetime_start < limit:
            try:
                study.tell(t.number, state=TrialState.FAIL)
                failed.append(t.number)
            except (ValueError, RuntimeError):  # it finished meanwhile, or another worker reaped it
                pass
    return failed


def optimize_one(study: optuna.Study, objective: Callable[[optuna.Trial], list[float]],
                 catch: tuple[type[Exception], ...]) -> TrialRecord:
    """Run one trial of ``objective`` (exceptions in ``catch`` end it FAILED and are not raised)
    and return its record."""
    finished: list[FrozenTrial] = []
    study.optimize(objective, n_trials=1, catch=catch, callbacks=[lambda _s, t: finished.append(t)])
    return TrialRecord.from_trial(finished[-1])


def set_constraint(trial: optuna.Trial, name: str, violation: float) -> None:
    """Tell the samplers (NSGA-II, TPE) by how much ``trial`` violates constraint ``name``."""
    trial.set_constraint(name, violation)
