"""MLflow tracking, through ``MlflowClient`` with explicit run ids. The only module that imports
MLflow.

- :class:`MlflowTracker` is a sweep listener: one experiment per study (open it with the URL from
  :func:`runs_url`, which shows the training runs whatever MLflow's GenAI/model-training switch
  says), one parent run per study (found again by its tags when a study is resumed, or by another
  worker; FINISHED, KILLED or FAILED as the sweep ends, with a description, summary metrics, the
  git commit and the Pareto plot), one nested child run per trial, named by its design (created
  when the trial starts, written from its record when it ends: sample, recipe, data and seeds as
  parameters, per-epoch curves, objective values, cost, the resolved architecture, the weights).
- :func:`track_networks` logs ``bench train`` and ``bench compare`` to the same kind of store.

Metric names: ``val_dice`` and ``train_loss`` are per-epoch curves (step = epoch; the mean over
the seeds; ``<metric>/seed_<s>`` each seed's); ``val_dice_best`` is what a sweep optimises (the
best epoch's validation Dice, mean over the seeds); the parameter count is ``n_params`` so that
it cannot be confused with MLflow's Parameters; ``<metric>_std`` and ``<metric>_ci95_low/high``
give the spread over the seeds.
"""
from __future__ import annotations

import datetime
import logging
import math
import os
import socket
import subprocess
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

import sqlalchemy
import yaml
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from .. import __version__
from ..core.defaults import DEFAULT_ARTIFACTS
from ..core.errors import BenchError
from ..search.listeners import SweepListener
from ..search.records import COMPLETE, FAIL, INTERRUPTED, PRUNED, RUNNING, StudyInfo, SweepResult, TrialRecord
from ..search.storage import CONNECT_TIMEOUT_S, damaged, redact, sqlite_file, store_lock

LOGGING_GRACE_S = 60  # a live worker logs its finished trial well within this
UI = "http://127.0.0.1:5000"  # where `bench ui` serves a local store by default
RENAMED = {"params": "n_params", "val_dice": "val_dice_best"}  # objective -> MLflow metric name
ENDED = {"finished": "FINISHED", "interrupted": "KILLED", "failed": "FAILED"}

for _noisy in ("mlflow", "alembic"):  # their INFO lines (database migrations) are not for our users
    logging.getLogger(_noisy).setLevel(logging.WARNING)


def _git_revision() -> str:
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, timeout=5)
        return done.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def check_tracking(tracking_uri: str) -> None:
    """Check an MLflow store before anything is written to it or to the study storage: a server
    answers ``/health``; a SQLite store's folder is writable and its file, if any, a readable
    database; any other URI is one MLflow can use (the file store, in maintenance, is refused).

    Raises:
        BenchError: what is wrong, naming the URI (password hidden) and a fix.
    """
    if not tracking_uri.startswith(("http://", "https://")):
        _check_local_tracking(tracking_uri)
        return
    import requests

    try:
        response = requests.get(tracking_uri.rstrip("/") + "/health", timeout=CONNECT_TIMEOUT_S)
        response.raise_for_status()
    except requests.RequestException as exc:
        raise BenchError(f"cannot reach the MLflow tracking server {redact(tracking_uri)}: "
                         f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}. Start one with `bench server`, "
                         "or fix --tracking-uri / MLFLOW_TRACKING_URI.") from None


def _check_local_tracking(tracking_uri: str) -> None:
    import sqlite3

    from ..core.files import ensure_writable

    fix = "use sqlite:///FILE (default sqlite:///runs/mlflow.db) or http://HOST:PORT"
    database = sqlite_file(tracking_uri)
    if database is not None:
        ensure_writable(database.parent, "--tracking-uri folder", create=False)
        artifacts = Path(DEFAULT_ARTIFACTS)
        if artifacts.exists() and not artifacts.is_dir():
            raise BenchError(f"{artifacts} is a file, but the MLflow store keeps its runs' artifacts (weights, "
                             f"plots, reports) in a folder there: move {artifacts} away.")
        ensure_writable(artifacts, "MLflow artifacts folder", create=False)
        if database.is_file() and database.stat().st_size:
            try:
                with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
                    connection.execute("PRAGMA schema_version")
            except sqlite3.DatabaseError as exc:
                raise damaged(tracking_uri, exc, "MLflow store") from None
        return
    if tracking_uri.startswith("file:") or "://" not in tracking_uri:
        raise BenchError(f"--tracking-uri {tracking_uri}: MLflow's file store is in maintenance mode and bench "
                         f"does not use it; {fix}.")
    try:
        MlflowClient(tracking_uri)
    except MlflowException as exc:
        raise BenchError(f"--tracking-uri {redact(tracking_uri)}: MLflow cannot use it "
                         f"({str(exc).splitlines()[0][:160]}); {fix}.") from None


def latency_tags(record: dict[str, Any], prefix: str = "latency.") -> dict[str, str]:
    """A :meth:`bench.arch.latency.Latency.to_dict` record's protocol, stopping reason and n as flat
    string tags (values that are None are left out)."""
    flat = {**record["protocol"], "stopped": record["stopped"], "n": record["n"]}
    return {f"{prefix}{k}": str(v) for k, v in flat.items() if v is not None}


def runs_url(tracking_uri: str, experiment_id: str, ui: str = UI, order_by: str = "val_dice_best") -> str:
    """The address of an experiment's runs table: the tracking server itself, or ``ui`` (where
    ``bench ui`` serves a local store). ``workflowType=machine_learning`` opens the runs, not
    MLflow's GenAI overview (a per-browser switch that otherwise wins over experiment tags);
    sorting by a metric (best first) lists the nested trial runs flat, where they are seen
    without unfolding their parent."""
    base = tracking_uri.rstrip("/") if tracking_uri.startswith(("http://", "https://")) else ui
    return (f"{base}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"
            f"&orderByKey=metrics.%60{order_by}%60&orderByAsc=false")


def experiment_urls(tracking_uri: str, ui: str, name: Optional[str] = None, limit: int = 20) -> list[tuple[str, str]]:
    """(name, runs-table address) of the store's experiments, newest first (or of ``name``)."""
    if tracking_uri.startswith("sqlite:///") and not Path(tracking_uri[len("sqlite:///"):]).exists():
        return []  # nothing logged yet: do not create the database here
    client = MlflowStore(tracking_uri).client
    found = client.search_experiments(order_by=["creation_time DESC"], max_results=limit,
                                      filter_string=f"name = '{name}'" if name else None)
    return [(e.name, runs_url(tracking_uri, e.experiment_id, ui, "val_dice_best" if "bench.study" in e.tags
                              else "test_dice_mean")) for e in found if e.name != "Default"]


def source_tags() -> dict[str, str]:
    """MLflow's standard source tags, and bench's versions."""
    return {"mlflow.source.name": "bench", "mlflow.source.type": "LOCAL", "mlflow.source.git.commit": _git_revision(),
            "bench.version": __version__,
            **{f"version.{p}": metadata.version(p) for p in ("torch", "optuna", "mlflow", "fvcore")}}


def curves(histories: Sequence[Sequence[dict]], seeds: Sequence[int], per_seed: bool = True) -> list[Metric]:
    """Per-epoch ``train_loss``, ``val_dice`` (foreground) and ``val_dice_all`` (step = epoch): the
    mean over the seeds, and (``per_seed``) each seed's as ``<name>/seed_<s>`` when there are
    several. A curve the histories do not hold (studies from before it existed) is left out."""
    out: list[Metric] = []
    now = int(time.time() * 1000)
    epochs = min(len(h) for h in histories) if histories else 0
    for source, target in (("train_loss", "train_loss"), ("val_dice", "val_dice"), ("val_dice_all", "val_dice_all")):
        if not all(source in h[e] for h in histories for e in range(epochs)):
            continue
        for e in range(epochs):
            step, values = int(histories[0][e]["epoch"]), [h[e][source] for h in histories]
            out.append(Metric(target, float(sum(values) / len(values)), now, step))
            if per_seed and len(histories) > 1:
                out += [Metric(f"{target}/seed_{s}", float(v), now, step) for s, v in zip(seeds, values)]
    return out


def spread(estimates: dict[str, dict], rename: dict[str, str] = RENAMED) -> dict[str, float]:
    """``<name>_std`` and the 95 % interval of every figure measured over several seeds."""
    out = {}
    for name, figure in estimates.items():
        if figure["n"] > 1:
            shown = rename.get(name, name)
            out.update({f"{shown}_std": figure["std"], f"{shown}_ci95_low": figure["ci_low"],
                        f"{shown}_ci95_high": figure["ci_high"]})
    return out


def _forget_cached_store(tracking_uri: str) -> None:
    """Drop MLflow's per-process caches of stores and database engines (kept by URI), so that a
    SQLite store deleted or replaced since it was first opened in this process is opened afresh."""
    try:
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
        from mlflow.tracking._tracking_service.utils import _tracking_store_registry

        _tracking_store_registry._get_store_with_resolved_uri.cache_clear()
        engine = SqlAlchemyStore._engine_map.pop(tracking_uri, None)
        if engine is not None:
            engine.dispose()
    except (ImportError, AttributeError):  # another MLflow version: a new process is unaffected anyway
        pass


class MlflowStore:
    """The MLflow calls bench makes, on one tracking URI."""

    def __init__(self, tracking_uri: str, artifact_root: Optional[str] = None) -> None:
        if tracking_uri.startswith("sqlite:///"):
            # absolute, because MLflow caches one store per URI string for the whole process
            database = Path(tracking_uri[len("sqlite:///"):]).resolve()
            database.parent.mkdir(parents=True, exist_ok=True)
            tracking_uri = f"sqlite:///{database}"
        self.uri = tracking_uri
        database = sqlite_file(tracking_uri)
        if database is not None and not database.exists():
            _forget_cached_store(tracking_uri)  # MLflow keeps one store per URI: it may be a deleted file
        with store_lock(tracking_uri):  # the first query creates (migrates) a fresh SQLite store
            try:
                self.client = MlflowClient(tracking_uri)
                self.client.search_experiments(max_results=1)
            except (MlflowException, sqlalchemy.exc.DatabaseError) as exc:
                if sqlite_file(tracking_uri) is None:
                    raise
                raise damaged(tracking_uri, exc, "MLflow store") from None
        self.location = None
        if not tracking_uri.startswith(("http://", "https://")):  # a server keeps its own artifacts
            self.location = Path(artifact_root or DEFAULT_ARTIFACTS).resolve().as_uri()

    def experiment(self, name: str, tags: Optional[dict[str, str]] = None) -> tuple[str, bool]:
        """The experiment's id, and whether this call created it (of many workers, one does)."""
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id, False
        try:
            return self.client.create_experiment(name, artifact_location=self.location, tags={
                "mlflow.experimentKind": "custom_model_development", **(tags or {})}), True
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            return self.client.get_experiment_by_name(name).experiment_id, False

    def create_run(self, experiment_id: str, name: str, tags: dict[str, str], parent: Optional[str] = None,
                   start: Optional[datetime.datetime] = None) -> str:
        tags = {**tags, **({"mlflow.parentRunId": parent} if parent else {})}
        return self.client.create_run(experiment_id, run_name=name, tags=tags,
                                      start_time=int(start.timestamp() * 1000) if start else None).info.run_id

    def log(self, run_id: str, metrics: Optional[dict[str, Any]] = None, params: Optional[dict[str, Any]] = None,
            tags: Optional[dict[str, str]] = None, series: Iterable[Metric] = (), step: int = 0) -> None:
        """Numeric ``metrics`` at ``step``, ``params`` and ``tags`` as strings, and ready ``series``."""
        now = int(time.time() * 1000)
        entries = [Metric(k, float(v), now, step) for k, v in (metrics or {}).items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)] + list(series)
        params_ = [Param(k, str(v)[:6000]) for k, v in (params or {}).items()]
        tags_ = [RunTag(k, str(v)[:5000]) for k, v in (tags or {}).items()]
        for start in range(0, max(len(entries), 1), 1000):  # MLflow takes at most 1000 metrics a batch
            self.client.log_batch(run_id, metrics=entries[start:start + 1000],
                                  params=params_ if start == 0 else [], tags=tags_ if start == 0 else [])

    def describe(self, run_id: str, text: str) -> None:
        """The run's description, as the UI shows it."""
        self.client.set_tag(run_id, "mlflow.note.content", text)

    def upload(self, run_id: str, path: str | Path, folder: Optional[str] = None) -> None:
        self.client.log_artifact(run_id, str(path), folder)

    def finish(self, run_id: str, status: str = "FINISHED", end: Optional[datetime.datetime] = None) -> None:
        self.client.set_terminated(run_id, status, end_time=int(end.timestamp() * 1000) if end else None)


class MlflowTracker(SweepListener):
    """Logs one study to ``tracking_uri``. Any number of workers may log the same study at once:
    one of them creates the experiment and the parent run, the others find them."""

    def __init__(self, tracking_uri: str, artifact_root: Optional[str] = None, parent_wait_s: float = 60.0) -> None:
        self.store = MlflowStore(tracking_uri, artifact_root)
        self.client = self.store.client
        self.parent_wait_s = parent_wait_s
        self.experiment_id = self.parent = ""
        self.info: Optional[StudyInfo] = None
        self.sources = {k: v for k, v in source_tags().items() if k.startswith("mlflow.source")}

    # ------------------------------------------------------------------------------ listener

    def study_started(self, info: StudyInfo, past) -> None:
        self.info = info
        self.experiment_id, created = self.store.experiment(info.study, {"bench.study": info.study})
        parent = self._find_parent()
        if parent is None and not created:  # the worker that created the experiment is creating it
            deadline = time.monotonic() + self.parent_wait_s
            while parent is None and time.monotonic() < deadline:
                time.sleep(0.5)
                parent = self._find_parent()
        if parent is None:
            self.parent = self._create_parent(info)
            # a study with trials but no record of it here: the store is new (deleted, reset, moved);
            # the study is the source of truth, so its finished trials are logged again
            for record in past:
                if record.state not in (RUNNING, "WAITING"):
                    self.log_trial(record)
            return
        if self.client.get_run(parent).info.status != "RUNNING":
            self.client.update_run(parent, status="RUNNING")  # the study resumes
        self.parent = parent

    def trial_started(self, record: TrialRecord) -> None:
        """The trial's child run, RUNNING until the trial ends."""
        record.links["mlflow_run_id"] = self.store.create_run(
            self.experiment_id, f"trial {record.number}", parent=self.parent,
            tags={"bench.trial": str(record.number), "bench.state": RUNNING, **self.sources,
                  "bench.worker": record.worker or f"{socket.gethostname()}:{os.getpid()}"})

    def epoch_ended(self, record: TrialRecord, epoch: dict) -> None:
        """Live curves: each seed's when there are several, else the run's own."""
        run_id = record.links.get("mlflow_run_id")
        if not run_id:
            return
        suffix = f"/seed_{epoch['seed']}" if epoch.get("runs", 1) > 1 else ""
        self.store.log(run_id, {f"train_loss{suffix}": epoch["train_loss"],
                                f"val_dice{suffix}": epoch["val_dice"],
                                f"val_dice_all{suffix}": epoch["val_dice_all"]}, step=int(epoch["epoch"]))

    def trial_ended(self, record: TrialRecord) -> None:
        self.log_trial(record)

    def study_ended(self, result: SweepResult) -> None:
        """Close the runs of trials that ended without their worker (killed: FAILED), log
        finished trials that never had a run, tag every child on_front yes/no with the paired
        verdict, log the front's interleaved timing, and finish the parent run: description,
        summary metrics, report files and the plot, FINISHED (KILLED if interrupted, FAILED)."""
        if not self.parent:  # the study's run was never created: nothing here to close
            return
        logged = self.logged_trials()
        settled = datetime.datetime.now() - datetime.timedelta(seconds=LOGGING_GRACE_S)
        for record in result.records:
            if record.state in (RUNNING, "WAITING"):
                continue
            # A live worker logs its own trial within the grace; past it, or once the sweep has
            # stopped, a trial whose worker was killed as it ended is logged (or closed) here.
            orphaned = record.finished is None or record.finished < settled or result.status != "finished"
            if record.number not in logged:  # its worker died before the trial began
                if orphaned:
                    logged[record.number] = self.log_trial(record)
            elif ((record.state == FAIL or orphaned)
                  and self.client.get_run(logged[record.number]).info.status == "RUNNING"):
                self.log_trial(record)  # failed for silence by a worker that had no tracker, interrupted, or
                # killed between the trial's end and its run's (SIGKILL)
        front = set(result.front)
        for number, run_id in logged.items():
            tags, metrics = {"bench.on_front": "yes" if number in front else "no"}, {}
            if number in result.front_probability:
                metrics["p_on_front"] = result.front_probability[number]
            if number in result.versus_stock:
                test = result.versus_stock[number]
                tags["bench.vs_stock"] = test.text()
                if not math.isnan(test.p_better):
                    metrics["p_better_than_stock"] = test.p_better
            self.store.log(run_id, metrics, tags=tags)
        timed = result.front_latency
        if timed:
            for number, figures in timed["trials"].items():
                if int(number) in logged:
                    self.store.log(logged[int(number)], {"latency_interleaved_ms": figures["median_ms"],
                                                         "latency_ratio": figures["ratio"]})
        self._finish_parent(result)

    # ------------------------------------------------------------------------------ runs

    def _find_parent(self) -> Optional[str]:
        found = self.client.search_runs([self.experiment_id], "tags.`bench.role` = 'study'",
                                        order_by=["attributes.start_time ASC"], max_results=1)
        return found[0].info.run_id if found else None

    def _create_parent(self, info: StudyInfo) -> str:
        parent = self.parent = self.store.create_run(self.experiment_id, f"study {info.study}", {
            "bench.role": "study", "bench.study": info.study, "git.revision": _git_revision(), **source_tags()})
        # known before anything below can fail, so that the end of the sweep closes it
        self.store.log(parent, params={
            "space": info.space_file or info.space, "data.source": info.data["source"], "data.size": info.data["size"],
            "split.hash": info.data["split_hash"],
            "objectives": ",".join(f"{k}:{v}" for k, v in info.objectives.items()),
            "repeats": info.repeats, "sampler": info.sampler, "seed": info.seed,
            **{f"recipe.{k}": v for k, v in info.recipe.items()}, **{f"vary.{k}": v for k, v in info.vary.items()}})
        self.store.describe(parent, f"{info.description or info.space} (study running)")
        if info.space_file and Path(info.space_file).is_file():
            self.store.upload(parent, info.space_file)
        return parent

    def _finish_parent(self, result: SweepResult) -> None:
        info = result.info
        metrics = {"designs_trained": result.count("trained"), "front_size": len(result.front),
                   "trials": len(result.records)}
        dice = [r.value("val_dice") for r in result.front_records if r.value("val_dice") is not None]
        if dice:
            metrics["best_val_dice"] = max(dice)
        if result.hypervolume is not None:
            metrics["hypervolume"] = result.hypervolume
        tags = {"bench.front": ",".join(map(str, sorted(result.front))), "bench.status": result.status}
        if result.stock is not None:
            tags["bench.stock_trial"] = str(result.stock)
        if result.front_latency:
            timed = result.front_latency
            tags["bench.latency_reference"] = f"{timed['reference']}: {timed['reference_ms']:.3f} ms"
        self.store.log(self.parent, metrics, tags=tags)
        front = "; ".join(f"{r.label} (trial {r.number}: " + ", ".join(
            f"{k} {r.value(k):.4g}" for k in info.objectives if r.value(k) is not None) + ")"
            for r in result.front_records)
        volume = f"{result.hypervolume:.4f}" if result.hypervolume is not None else "-"
        self.store.describe(self.parent, f"{info.description or info.space}. Pareto front of "
                            f"{', '.join(info.objectives)}: {front or 'empty'}. Hypervolume {volume} "
                            f"({SweepResult.HYPERVOLUME}). Sweep {result.status}.")
        for path in result.report_paths:
            self.store.upload(self.parent, path, "report")
            if Path(path).name == "pareto.png":
                self.store.upload(self.parent, path)  # at the top, where the UI previews images
        self.store.finish(self.parent, ENDED.get(result.status, "FINISHED"))
        result.links["mlflow_runs_url"] = runs_url(self.store.uri, self.experiment_id)

    def logged_trials(self) -> dict[int, str]:
        runs = self.client.search_runs([self.experiment_id], f"tags.`mlflow.parentRunId` = '{self.parent}'",
                                       max_results=50000)
        return {int(r.data.tags["bench.trial"]): r.info.run_id for r in runs}

    def log_trial(self, record: TrialRecord) -> str:
        """The child run of a finished trial (created now if the trial never started one):
        named by its design, its sample, recipe, data and seeds as parameters, curves, values and
        metrics, the resolved architecture and the weights; FINISHED, or FAILED / KILLED."""
        name = f"trial {record.number}" + (f" · {record.label}" if record.sample else "")
        tags = {"bench.trial": str(record.number), "bench.state": record.state, "bench.status": record.status,
                "bench.trained": str(record.trained), "bench.config_hash": record.config_hash,
                "bench.seeds": ",".join(str(run.seed) for run in record.seeds), "mlflow.runName": name,
                **{f"block.{k}": v for k, v in record.blocks.items()}}
        if record.latency:
            tags.update(latency_tags(record.latency))
        if record.duplicate_of is not None:
            tags["bench.duplicate_of"] = str(record.duplicate_of)
        if record.fail_reason:
            tags["bench.fail_reason"] = record.fail_reason[:5000]
        if record.pruned:
            tags["bench.pruned"] = record.pruned["reason"]
        elif not record.feasible:
            tags["bench.not_trained"] = record.skipped or ""
        elif record.skipped:
            tags["bench.skipped"] = record.skipped
        run_id = record.links.get("mlflow_run_id")
        if run_id and not self._is_run_of(run_id, record.number):
            run_id = None  # a retry inherits the dead trial's run id; a re-created store lacks it
        if run_id is None:
            run_id = self.store.create_run(self.experiment_id, name, {**tags, **self.sources}, parent=self.parent,
                                           start=record.started)
        values = {RENAMED.get(k, k): v for k, v in {**record.metrics, **record.values}.items()}
        if record.cost:
            deployed = record.cost["deploy"]
            values.update({"deploy_n_params": deployed["params"], "deploy_macs": deployed["macs"],
                           "deploy_flops": deployed["flops"]})
        values.update(spread(record.estimates))
        if record.pruned:  # its figures when it was stopped; no val_dice_best, which means trained
            values.update({"pruned_at_epoch": record.pruned["epoch"], "val_dice_so_far": record.pruned["val_dice"]})
        for run in record.seeds if len(record.seeds) > 1 else []:
            values.update({f"{RENAMED.get(k, k)}/seed_{run.seed}": v for k, v in run.metrics.items()})
        info = self.info
        params = dict(record.sample)
        if info is not None and record.trained:
            params.update({**{f"recipe.{k}": v for k, v in info.recipe.items() if k != "seed"},
                           "data.source": info.data["source"], "data.size": info.data["size"],
                           "data.split": info.data["split_hash"][:12],
                           "seeds": ",".join(str(run.seed) for run in record.seeds)})
        # epochs were logged live (epoch_ended): one seed's as the run's curves, several seeds' each
        # under its own name; the mean over several seeds only exists now
        series = curves([run.history for run in record.seeds], [run.seed for run in record.seeds], False) \
            if len(record.seeds) > 1 and record.duplicate_of is None else []
        self.store.log(run_id, values, self._new_params(run_id, params), tags, series)
        self.store.describe(run_id, describe_trial(record))
        if record.config is not None:
            self.client.log_text(run_id, yaml.safe_dump(record.config, sort_keys=False), "architecture.yaml")
        elif record.overrides:  # the sample itself was bad (that is why the trial failed)
            self.client.log_text(run_id, "\n".join(record.overrides) + "\n", "overrides.txt")
        for artifact, path in record.artifacts.items():
            if Path(path).is_file():
                self.store.upload(run_id, path, str(Path(artifact).parent))
        status = {COMPLETE: "FINISHED", PRUNED: "KILLED" if record.status == "skipped" or record.pruned else "FINISHED",
                  FAIL: "KILLED" if record.fail_reason == INTERRUPTED else "FAILED"}
        self.store.finish(run_id, status.get(record.state, "FAILED"), record.finished)
        return run_id

    def _is_run_of(self, run_id: str, number: int) -> bool:
        """Whether ``run_id`` is trial ``number``'s run in this store and experiment."""
        try:
            run = self.client.get_run(run_id)
        except MlflowException:
            return False
        return run.info.experiment_id == self.experiment_id and run.data.tags.get("bench.trial") == str(number)

    def _new_params(self, run_id: str, params: dict[str, Any]) -> dict[str, Any]:
        """MLflow refuses to change a logged parameter: leave out those already there."""
        logged = self.client.get_run(run_id).data.params
        return {k: v for k, v in params.items() if k not in logged}


def describe_trial(record: TrialRecord) -> str:
    """One line for a trial's run: what it is and what became of it."""
    head = f"{record.label} (trial {record.number})"
    same = f"same network as trial {record.duplicate_of}; " if record.duplicate_of is not None else ""
    if record.pruned:
        return f"{head}: {same}pruned: {record.pruned['reason']}; no final accuracy."
    if not record.feasible:
        return f"{head}: {same}{record.skipped}; no accuracy."
    if record.status == "failed":
        return f"{head}: failed: {record.fail_reason}"
    if record.status == "skipped":
        return f"{head}: skipped: {record.skipped}"
    figure = record.estimate("val_dice")
    dice = (f"{figure.mean:.4f} ± {figure.std:.4f}" if figure is not None and figure.n > 1
            else f"{record.value('val_dice'):.4f}" if record.value("val_dice") is not None else "-")
    seeds = f"{len(record.seeds)} seeds" if len(record.seeds) != 1 else "1 seed"
    params = f"{record.cost['params'] / 1e6:.3f} M params" if record.cost else ""
    return (f"{head}: {same}trained with {seeds}; validation Dice {dice} (val_dice_best: best epoch, "
            f"mean over seeds); {params}.")


def track_networks(tracking_uri: str, experiment: str, networks: Sequence[dict[str, Any]],
                   parent: Optional[dict[str, Any]] = None) -> tuple[str, list[str]]:
    """Log ``bench train`` / ``bench compare``: a run per network (and, for a comparison, a
    parent run holding the table). Each network is a dict with ``name``, ``params``, ``metrics``,
    ``histories`` and ``seeds`` (per-epoch records per seed), ``config`` (resolved
    architecture), ``artifacts`` (artifact folder -> local files), ``description`` and
    ``tags``; ``parent`` likewise with ``name``, ``params``, ``description``, ``artifacts``.
    Returns the runs-table URL and the networks' run ids."""
    store = MlflowStore(tracking_uri)
    experiment_id, _ = store.experiment(experiment, {"bench.experiment": experiment})
    parent_id = None
    if parent is not None:
        parent_id = store.create_run(experiment_id, parent["name"], {"bench.role": "comparison", **source_tags()})
        store.log(parent_id, params=parent.get("params"))
        store.describe(parent_id, parent.get("description", ""))
    ids = []
    for net in networks:
        run_id = store.create_run(experiment_id, net["name"], {"bench.role": "network", **source_tags(),
                                                               **net.get("tags", {})}, parent=parent_id)
        store.log(run_id, net.get("metrics"), net.get("params"), series=curves(net["histories"], net["seeds"]))
        store.describe(run_id, net.get("description", ""))
        store.client.log_text(run_id, yaml.safe_dump(net["config"], sort_keys=False), "architecture.yaml")
        for folder, paths in net.get("artifacts", {}).items():
            for path in paths:
                store.upload(run_id, path, folder or None)
        store.finish(run_id)
        ids.append(run_id)
    if parent_id is not None:
        for path in parent.get("artifacts", []):
            store.upload(parent_id, path)
        store.finish(parent_id)
    return runs_url(store.uri, experiment_id, order_by="test_dice_mean"), ids
