"""The MLflow store underneath tracking, through ``MlflowClient`` with explicit run ids: checking a
tracking URI before anything is written, creating experiments and runs, logging metrics,
parameters, tags, curves and artifacts, and the addresses of the UI. With
:mod:`bench.results.tracking`, the only modules that import MLflow.

Metric names: ``val_dice`` and ``train_loss`` are per-epoch curves (step = epoch; the mean over
the seeds; ``<metric>/seed_<s>`` each seed's); ``val_dice_best`` is what a sweep optimises (the
best epoch's validation Dice, mean over the seeds); the parameter count is ``n_params`` so that
it cannot be confused with MLflow's Parameters; ``<metric>_std`` and ``<metric>_ci95_low/high``
give the spread over the seeds.
"""
from __future__ import annotations

import datetime
import json
import logging
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

import sqlalchemy
from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from .. import __version__
from ..core.defaults import DEFAULT_ARTIFACTS
from ..core.errors import BenchError
from ..core.machine import git_revision
from ..search.storage import CONNECT_TIMEOUT_S, damaged, redact, sqlite_file, store_lock

UI = "http://127.0.0.1:5000"  # where `bench ui` serves a local store by default
RENAMED = {"params": "n_params", "val_dice": "val_dice_best"}  # objective -> MLflow metric name

for _noisy in ("mlflow", "alembic"):  # their INFO lines (database migrations) are not for our users
    logging.getLogger(_noisy).setLevel(logging.WARNING)


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


VIEW = "bench"  # the share key of the runs-table view bench saves on its experiments
VIEW_TAG = f"mlflow.sharedViewState.{VIEW}"
RUN_NAME_COLUMN = "attributes.`Run Name`"  # the runs table's column id of run names (MLflow 3's UI)
RUN_NAME_WIDTH = 380  # px: "trial 12 · cmrf N=8 x0.5 + …" whole (MLflow's 190 cuts design names)


def figure_view(columns: Sequence[str], order_by: str) -> dict[str, str]:
    """An experiment tag holding a saved view of its runs table, in the form of MLflow's "Share"
    button (a ``mlflow.sharedViewState.<key>`` tag opened by ``?viewStateShareKey=<key>``): the
    metrics ``columns`` shown without picking them, sorted by ``order_by``, best first, and run
    names wide enough to read the designs."""
    state = {"orderByKey": f"metrics.`{order_by}`", "orderByAsc": False,
             "selectedColumns": [f"metrics.`{c}`" for c in columns],
             # MLflow applies saved widths to the columns its saved order names; the figures follow
             # the run names in the order given (else MLflow sorts them by name, the first one last)
             "columnOrder": [RUN_NAME_COLUMN, *(f"metrics.`{c}`" for c in columns)],
             "columnWidths": {RUN_NAME_COLUMN: RUN_NAME_WIDTH}}
    return {VIEW_TAG: json.dumps(state)}


def runs_url(tracking_uri: str, experiment_id: str, ui: str = UI, order_by: str = "val_dice_best",
             view: bool = False) -> str:
    """The address of an experiment's runs table: the tracking server itself, or ``ui`` (where
    ``bench ui`` serves a local store). ``workflowType=machine_learning`` opens the runs, not
    MLflow's GenAI overview (a per-browser switch that otherwise wins over experiment tags);
    sorting by a metric (best first) lists the nested trial runs flat, where they are seen
    without unfolding their parent. ``view``: open the saved :func:`figure_view` instead (it
    holds the sort; MLflow ignores a shared view when the address also sorts)."""
    base = tracking_uri.rstrip("/") if tracking_uri.startswith(("http://", "https://")) else ui
    page = f"{base}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"
    return f"{page}&viewStateShareKey={VIEW}" if view else f"{page}&orderByKey=metrics.%60{order_by}%60&orderByAsc=false"


def experiment_urls(tracking_uri: str, ui: str, name: Optional[str] = None, limit: int = 20) -> list[tuple[str, str]]:
    """(name, runs-table address) of the store's experiments, newest first (or of ``name``)."""
    if tracking_uri.startswith("sqlite:///") and not Path(tracking_uri[len("sqlite:///"):]).exists():
        return []  # nothing logged yet: do not create the database here
    client = MlflowStore(tracking_uri).client
    found = client.search_experiments(order_by=["creation_time DESC"], max_results=limit,
                                      filter_string=f"name = '{name}'" if name else None)
    return [(e.name, runs_url(tracking_uri, e.experiment_id, ui, "val_dice_best" if "bench.study" in e.tags
                              else "test_dice_mean", VIEW_TAG in e.tags)) for e in found if e.name != "Default"]


def source_tags() -> dict[str, str]:
    """MLflow's standard source tags, and bench's versions."""
    return {"mlflow.source.name": "bench", "mlflow.source.type": "LOCAL", "mlflow.source.git.commit": git_revision(),
            "bench.version": __version__,
            **{f"version.{p}": metadata.version(p) for p in ("torch", "optuna", "mlflow", "fvcore")}}


def curves(histories: Sequence[Sequence[dict]], seeds: Sequence[int | str], per_seed: bool = True) -> list[Metric]:
    """Per-epoch ``train_loss``, ``val_dice`` (foreground) and ``val_dice_all`` (step = epoch): the
    mean over the seeds, and (``per_seed``) each seed's as ``<name>/seed_<s>`` when there are
    several (``<name>/<s>`` for a label such as ``fold_2/seed_0``). A curve the histories do not hold (studies from before it existed) is left out."""
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
                out += [Metric(f"{target}/{s if isinstance(s, str) else f'seed_{s}'}", float(v), now, step)
                        for s, v in zip(seeds, values)]
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

    def save_view(self, experiment_id: str, columns: Sequence[str], order_by: str) -> None:
        """Save :func:`figure_view` on the experiment (again on every run: the latest columns win)."""
        for key, value in figure_view(columns, order_by).items():
            self.client.set_experiment_tag(experiment_id, key, value)

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

    def log_dataset(self, run_id: str, lineage: dict[str, Any], context: str = "training") -> None:
        """The run's data as an MLflow dataset input (:func:`bench.data.lineage.lineage`), so the
        runs table's Datasets column and filter show it."""
        dataset = Dataset(lineage["name"], lineage["digest"], lineage["source_type"], lineage["source"],
                          lineage.get("schema"), lineage.get("profile"))
        self.client.log_inputs(run_id, [DatasetInput(dataset, [InputTag("mlflow.data.context", context)])])

    def describe(self, run_id: str, text: str) -> None:
        """The run's description, as the UI shows it."""
        self.client.set_tag(run_id, "mlflow.note.content", text)

    def upload(self, run_id: str, path: str | Path, folder: Optional[str] = None) -> None:
        self.client.log_artifact(run_id, str(path), folder)

    def finish(self, run_id: str, status: str = "FINISHED", end: Optional[datetime.datetime] = None) -> None:
        self.client.set_terminated(run_id, status, end_time=int(end.timestamp() * 1000) if end else None)
