"""MLflow tracking of sweeps, trainings and comparisons, on the store of
:mod:`bench.results.mlflow_store`.

- :class:`MlflowTracker` is a sweep listener: one experiment per study (open it with the URL from
  :func:`runs_url`, which shows the training runs whatever MLflow's GenAI/model-training switch
  says), one parent run per study (found again by its tags when a study is resumed, or by another
  worker; FINISHED, KILLED or FAILED as the sweep ends, with a description, summary metrics, the
  git commit and the Pareto plot), one nested child run per trial, named by its design (created
  when the trial starts, written from its record when it ends: sample, recipe, data and seeds as
  parameters, per-epoch curves, objective values, cost, the resolved architecture, the weights).
- :func:`track_networks` logs ``bench train`` and ``bench compare`` to the same kind of store.
"""
from __future__ import annotations

import datetime
import json
import math
import os
import socket
import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import yaml
from mlflow.exceptions import MlflowException

from ..core.files import write_text
from ..search.listeners import SweepListener
from ..search.records import COMPLETE, FAIL, INTERRUPTED, PRUNED, RUNNING, StudyInfo, SweepResult, TrialRecord

from .logged_models import MODEL, log_checkpoint
from .mlflow_store import RENAMED, MlflowStore, curves, git_revision, latency_tags, runs_url, source_tags, spread

LOGGING_GRACE_S = 60  # a live worker logs its finished trial well within this
ENDED = {"finished": "FINISHED", "interrupted": "KILLED", "failed": "FAILED"}
# the runs table of `bench train` / `compare` opens on these (a sweep's on its objectives)
COMPARED_COLUMNS = ("test_dice_mean", "test_dice_mean_std", "val_dice_best", "n_params", "flops", "latency_ms",
                    "latency_ratio")


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
        self.store.save_view(self.experiment_id, [*(RENAMED.get(o, o) for o in info.objectives), "p_on_front"],
                             RENAMED.get("val_dice", "val_dice"))
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
        fold = f"/fold_{epoch['fold'] + 1}" if epoch.get("fold") is not None else ""
        suffix = f"{fold}/seed_{epoch['seed']}" if epoch.get("runs", 1) > 1 else ""
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
        for number, weights in result.weights.items():
            if number in logged:
                self.store.log(logged[number], tags={"bench.weights": weights_text(weights)})
        for number, figures in result.all_folds.items():  # cross-validated: the front on every fold
            if number in logged:
                self._log_all_folds(logged[number], figures, result.all_folds_versus_stock.get(number))
        timed = result.front_latency
        if timed:
            for number, figures in timed["trials"].items():
                if int(number) in logged:
                    self.store.log(logged[int(number)], {"latency_interleaved_ms": figures["median_ms"],
                                                         "latency_ratio": figures["ratio"]})
        self._finish_parent(result)

    def _log_all_folds(self, run_id: str, figures, versus) -> None:
        """A front member's (or the stock network's) figures over every fold, on its trial's run:
        ``cv_test_dice_fg`` pooled over folds and seeds, with spread, and one per fold; the verdict
        against the stock network over every image."""
        pooled = figures.pooled()
        metrics = {"cv_test_dice_fg": pooled.mean, **{f"cv_test_dice_fg/fold_{k + 1}": v
                                                      for k, v in enumerate(figures.per_fold) if not math.isnan(v)}}
        if pooled.n > 1:
            metrics.update({"cv_test_dice_fg_std": pooled.std, "cv_test_dice_fg_ci95_low": pooled.ci_low,
                            "cv_test_dice_fg_ci95_high": pooled.ci_high})
        tags = {"bench.cv_folds": f"{sum(not math.isnan(v) for v in figures.per_fold)} of {figures.folds}"}
        if versus is not None:
            tags["bench.cv_vs_stock"] = versus.text()
        self.store.log(run_id, metrics, tags=tags)

    # ------------------------------------------------------------------------------ runs

    def _find_parent(self) -> Optional[str]:
        found = self.client.search_runs([self.experiment_id], "tags.`bench.role` = 'study'",
                                        order_by=["attributes.start_time ASC"], max_results=1)
        return found[0].info.run_id if found else None

    def _create_parent(self, info: StudyInfo) -> str:
        parent = self.parent = self.store.create_run(self.experiment_id, f"study {info.study}", {
            "bench.role": "study", "bench.study": info.study, "git.revision": git_revision(), **source_tags()})
        # known before anything below can fail, so that the end of the sweep closes it
        self.store.log(parent, params={
            "space": info.space_file or info.space, "data.source": info.data["source"], "data.size": info.data["size"],
            "split.hash": info.data["split_hash"], "data.test_split": info.test_split(),
            "objectives": ",".join(f"{k}:{v}" for k, v in info.objectives.items()),
            "repeats": info.repeats, "sampler": info.sampler, "seed": info.seed,
            **{f"recipe.{k}": v for k, v in info.recipe.items()}, **{f"vary.{k}": v for k, v in info.vary.items()}})
        self.store.describe(parent, f"{info.description or info.space} (study running)")
        if info.data.get("lineage"):
            self.store.log_dataset(parent, info.data["lineage"])
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
        result.links["mlflow_runs_url"] = runs_url(self.store.uri, self.experiment_id, view=True)

    def logged_trials(self) -> dict[int, str]:
        runs = self.client.search_runs([self.experiment_id], f"tags.`mlflow.parentRunId` = '{self.parent}'",
                                       max_results=50000)
        return {int(r.data.tags["bench.trial"]): r.info.run_id for r in runs}

    def log_trial(self, record: TrialRecord) -> str:
        """The child run of a finished trial (created now if the trial never started one):
        named by its design, its sample, recipe, data and seeds as parameters, curves, values and
        metrics, the resolved architecture and the weights; FINISHED, or FAILED / KILLED."""
        name = run_name(record)
        tags = {"bench.trial": str(record.number), "bench.state": record.state, "bench.status": record.status,
                "bench.trained": str(record.trained), "bench.config_hash": record.config_hash,
                "bench.seeds": ",".join(map(str, dict.fromkeys(run.seed for run in record.seeds))), "mlflow.runName": name,
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
            values.update({f"{RENAMED.get(k, k)}/{run.label}": v for k, v in run.metrics.items()})
        info = self.info
        params = dict(record.sample)
        if info is not None and record.trained:
            params.update({**{f"recipe.{k}": v for k, v in info.recipe.items() if k != "seed"},
                           "data.source": info.data["source"], "data.size": info.data["size"],
                           "data.split": info.data["split_hash"][:12],
                           "seeds": ",".join(map(str, dict.fromkeys(run.seed for run in record.seeds)))})
        # epochs were logged live (epoch_ended): one seed's as the run's curves, several seeds' each
        # under its own name; the mean over several seeds only exists now
        series = curves([run.history for run in record.seeds], [run.label for run in record.seeds], False) \
            if len(record.seeds) > 1 and record.duplicate_of is None else []
        self.store.log(run_id, values, self._new_params(run_id, params), tags, series)
        if info is not None and record.trained and info.data.get("lineage") and record.duplicate_of is None:
            self.store.log_dataset(run_id, info.data["lineage"])
        self.store.describe(run_id, describe_trial(record))
        if record.config is not None:
            self.client.log_text(run_id, yaml.safe_dump(record.config, sort_keys=False), "architecture.yaml")
        elif record.overrides:  # the sample itself was bad (that is why the trial failed)
            self.client.log_text(run_id, "\n".join(record.overrides) + "\n", "overrides.txt")
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


def run_name(record: TrialRecord) -> str:
    """A trial's run name, which says in the runs table what the run is: ``trial 4 · repvgg x0.25``,
    with `` (not trained)``, `` (repeat of trial 2)``, `` (pruned)``, `` (failed)`` or `` (skipped)``
    where it is not a trained network (MLflow's own states are only finished, failed and killed)."""
    name = f"trial {record.number}" + (f" · {record.label}" if record.sample else "")
    kind = {"not trained": "not trained", "pruned": "pruned", "failed": "failed", "skipped": "skipped",
            "duplicate": f"repeat of trial {record.duplicate_of}"}.get(record.status)
    if record.fail_reason == INTERRUPTED:
        kind = "interrupted"
    return f"{name} ({kind})" if kind else name


def weights_text(weights: dict[str, Any]) -> str:
    """A trial's weights decision (:mod:`bench.run.weights`) for its run: ``kept (on the front):
    runs:/.../model`` or ``deleted (left the front when trial 9 ... was trained), 3.6 MB freed``."""
    size = f"{weights['bytes'] / 1e6:.1f} MB"
    if weights["kept"]:
        return f"kept ({weights['why']}), {size}: " + ", ".join(weights["where"])
    return f"deleted ({weights['why']}), {size} freed"


def model_mover(tracking_uri: str, size: int) -> Callable[[TrialRecord, dict[str, Path]], Optional[list[str]]]:
    """What moves a kept network's weight files into its trial's run: the first as the run's MLflow
    model (:func:`bench.results.logged_models.log_checkpoint`), the others (seeds, folds) as plain
    checkpoints under their names. It returns where each went, or None when the trial has no run here."""
    store = MlflowStore(tracking_uri)

    def move(record: TrialRecord, files: dict[str, Path]) -> Optional[list[str]]:
        run_id = record.links.get("mlflow_run_id")
        try:
            run = store.client.get_run(run_id) if run_id else None
        except MlflowException:
            run = None
        if run is None or run.data.tags.get("bench.trial") != str(record.number):
            return None
        where = []
        for k, (name, path) in enumerate(files.items()):
            if k == 0:
                logged = log_checkpoint(store.client, store.uri, run.info.experiment_id, run_id, path, size)
                where += list(logged.values()) or [f"runs:/{run_id}/{MODEL}/model.pt"]
            else:
                store.upload(run_id, path, str(Path(name).parent))
                where.append(f"runs:/{run_id}/{name}")
        return where
    return move


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


def _log_network(store: MlflowStore, experiment_id: str, net: dict[str, Any], parent_id: Optional[str],
                 role: str = "network") -> str:
    """One network's run (see :func:`track_networks`), with a child run for each of its
    ``children`` (the folds of a cross-validation)."""
    run_id = store.create_run(experiment_id, net["name"], {"bench.role": role, **source_tags(), **net.get("tags", {})},
                              parent=parent_id)
    store.log(run_id, net.get("metrics"), net.get("params"), series=curves(net["histories"], net["seeds"]))
    if net.get("dataset"):
        store.log_dataset(run_id, net["dataset"])
    store.describe(run_id, net.get("description", ""))
    store.client.log_text(run_id, yaml.safe_dump(net["config"], sort_keys=False), "architecture.yaml")
    weights = [(folder, Path(path)) for folder, paths in net.get("artifacts", {}).items() for path in paths
               if Path(path).name == "model.pt"]
    moved = {}
    for k, (folder, path) in enumerate(weights):  # the weights move into the run: one copy, in MLflow
        if k == 0:
            uris = log_checkpoint(store.client, store.uri, experiment_id, run_id, path, int(net["params"]["data.size"]))
            moved[path] = next(iter(uris.values()), f"runs:/{run_id}/{MODEL}/model.pt")
        else:
            store.upload(run_id, path, folder or None)
            moved[path] = f"runs:/{run_id}/{folder + '/' if folder else ''}model.pt"
        _point_to(path.parent / "metrics.json", moved[path])
    for folder, paths in net.get("artifacts", {}).items():
        for path in paths:
            if Path(path).name != "model.pt":
                store.upload(run_id, path, folder or None)
    for path in moved:
        path.unlink(missing_ok=True)
    for child in net.get("children", []):
        _log_network(store, experiment_id, child, run_id, role="fold")
    store.finish(run_id)
    return run_id


def _point_to(metrics: Path, uri: str) -> None:
    """Record in a run folder's ``metrics.json`` where its weights went (``model``: the URI)."""
    if metrics.is_file():
        record = json.loads(metrics.read_text())
        record["model"] = uri
        write_text(metrics, json.dumps(record, indent=1, default=str) + "\n")


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
    store.save_view(experiment_id, COMPARED_COLUMNS, "test_dice_mean")
    parent_id = None
    if parent is not None:
        parent_id = store.create_run(experiment_id, parent["name"], {"bench.role": "comparison", **source_tags()})
        store.log(parent_id, params=parent.get("params"))
        if parent.get("dataset"):
            store.log_dataset(parent_id, parent["dataset"])
        store.describe(parent_id, parent.get("description", ""))
    ids = [_log_network(store, experiment_id, net, parent_id) for net in networks]
    if parent_id is not None:
        for path in parent.get("artifacts", []):
            store.upload(parent_id, path)
        store.finish(parent_id)
    return runs_url(store.uri, experiment_id, order_by="test_dice_mean", view=True), ids
