"""MLflow tracking of sweeps, through ``MlflowClient`` with explicit run ids. The only module that
imports MLflow.

One experiment per study (tagged so that the UI opens on the training-runs view), one parent run
per study (found again by its tags when a study is resumed), one nested child run per trial
(``mlflow.parentRunId``), written when the trial ends.
"""
from __future__ import annotations

import datetime
import os
import socket
import subprocess
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Optional

import optuna
import yaml
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from . import __version__
from .config import resolve_architecture
from .errors import BenchError
from .latency import latency_tags
from .storage import CONNECT_TIMEOUT_S, redact

DEFAULT_TRACKING = "sqlite:///runs/mlflow.db"
DEFAULT_ARTIFACTS = "runs/mlartifacts"
LOGGING_GRACE_S = 60  # a live worker logs its finished trial well within this


def _git_revision() -> str:
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, timeout=5)
        return done.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def check_tracking(tracking_uri: str) -> None:
    """Reach the tracking server (``/health``) before a sweep writes anything.

    Raises:
        BenchError: the server does not answer, or answers with an error.
    """
    if not tracking_uri.startswith(("http://", "https://")):
        return
    import requests

    try:
        response = requests.get(tracking_uri.rstrip("/") + "/health", timeout=CONNECT_TIMEOUT_S)
        response.raise_for_status()
    except requests.RequestException as exc:
        raise BenchError(f"cannot reach the MLflow tracking server {redact(tracking_uri)}: "
                         f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}. Start one with `bench server`, "
                         "or fix --tracking-uri / MLFLOW_TRACKING_URI.") from None


class SweepTracker:
    """Logs one study: ``start_trial`` when a trial starts, ``log_trial`` when it ends,
    ``finish`` at the end of a sweep. Any number of workers may log the same study at once."""

    def __init__(self, tracking_uri: str, study: optuna.Study, space_file: Path,
                 data: dict[str, Any], artifact_root: Optional[str] = None,
                 parent_wait_s: float = 60.0) -> None:
        if tracking_uri.startswith("sqlite:///"):
            # absolute, because MLflow caches one store per URI string for the whole process
            database = Path(tracking_uri[len("sqlite:///"):]).resolve()
            database.parent.mkdir(parents=True, exist_ok=True)
            tracking_uri = f"sqlite:///{database}"
        self.client = MlflowClient(tracking_uri)
        name = study.study_name
        location = None
        if not tracking_uri.startswith(("http://", "https://")):  # a server keeps its own artifacts
            location = Path(artifact_root or DEFAULT_ARTIFACTS).resolve().as_uri()
        self.experiment_id, created = self._experiment(name, location)
        self.parent = self._find_parent()
        if self.parent is None and not created:  # the worker that created the experiment is creating it
            deadline = time.monotonic() + parent_wait_s
            while self.parent is None and time.monotonic() < deadline:
                time.sleep(0.5)
                self.parent = self._find_parent()
        if self.parent is None:
            self.parent = self._create_parent(name, space_file, data)
        self.architecture = data["architecture"]

    def _experiment(self, name: str, location: Optional[str]) -> tuple[str, bool]:
        """The study's experiment id, and whether this call created it (only one worker does)."""
        experiment = self.client.get_experiment_by_name(name)
        if experiment is not None:
            return experiment.experiment_id, False
        try:
            return self.client.create_experiment(
                name, artifact_location=location,
                tags={"mlflow.experimentKind": "custom_model_development", "bench.study": name}), True
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            return self.client.get_experiment_by_name(name).experiment_id, False

    def _find_parent(self) -> Optional[str]:
        found = self.client.search_runs([self.experiment_id], "tags.`bench.role` = 'study'",
                                        order_by=["attributes.start_time ASC"], max_results=1)
        return found[0].info.run_id if found else None

    def _create_parent(self, name: str, space_file: Path, data: dict[str, Any]) -> str:
        run = self.client.create_run(self.experiment_id, run_name=f"study {name}", tags={
            "bench.role": "study", "bench.study": name, "bench.version": __version__,
            "git.revision": _git_revision(),
            **{f"version.{p}": metadata.version(p) for p in ("torch", "optuna", "mlflow", "fvcore")},
        })
        parent = run.info.run_id
        self.client.log_batch(parent, params=[
            Param("space", str(space_file)), Param("data.source", str(data["source"])),
            Param("data.size", str(data["size"])), Param("split.hash", str(data["split_hash"])),
            Param("objectives", ",".join(f"{k}:{v}" for k, v in data["objectives"].items())),
        ])
        self.client.log_artifact(parent, str(space_file))
        return parent

    def logged_trials(self) -> dict[int, str]:
        runs = self.client.search_runs([self.experiment_id], f"tags.`mlflow.parentRunId` = '{self.parent}'",
                                       max_results=50000)
        return {int(r.data.tags["bench.trial"]): r.info.run_id for r in runs}

    def start_trial(self, trial: optuna.Trial) -> str:
        """The trial's child run, RUNNING until :meth:`log_trial` (or :meth:`close_stale`)."""
        run = self.client.create_run(self.experiment_id, run_name=f"trial {trial.number}", tags={
            "mlflow.parentRunId": self.parent, "bench.trial": str(trial.number), "bench.state": "RUNNING",
            "bench.worker": f"{socket.gethostname()}:{os.getpid()}"})
        trial.set_user_attr("mlflow_run_id", run.info.run_id)
        return run.info.run_id

    def close_stale(self, trial: optuna.trial.FrozenTrial) -> None:
        """Mark the run of a trial whose worker died (no heartbeat) FAILED."""
        run_id = trial.user_attrs.get("mlflow_run_id")
        if run_id:
            self.client.set_tag(run_id, "bench.state", "FAIL")
            self.client.set_tag(run_id, "bench.fail_reason", "the worker stopped sending heartbeats (killed?)")
            self.client.set_terminated(run_id, "FAILED")

    def log_trial(self, trial: optuna.trial.FrozenTrial) -> str:
        """The child run of a finished trial (created now if the trial never started one):
        parameters, metrics, tags, resolved architecture; FINISHED, or FAILED / KILLED."""
        attrs = trial.user_attrs
        tags = {"mlflow.parentRunId": self.parent, "bench.trial": str(trial.number),
                "bench.state": trial.state.name, "bench.trained": str(attrs.get("trained", "")),
                "bench.config_hash": attrs.get("config_hash", ""),
                **{f"block.{k}": v for k, v in attrs.get("blocks", {}).items()}}
        if "latency" in attrs:
            tags.update(latency_tags(attrs["latency"]))
        if "duplicate_of" in attrs:
            tags["bench.duplicate_of"] = str(attrs["duplicate_of"])
        if "fail_reason" in attrs:
            tags["bench.fail_reason"] = attrs["fail_reason"][:5000]
        if "skipped" in attrs:
            tags["bench.skipped"] = attrs["skipped"]
        run_id = attrs.get("mlflow_run_id")
        if run_id and trial.system_attrs.get("failed_trial") is not None \
                and self.client.get_run(run_id).data.tags.get("bench.trial") != str(trial.number):
            run_id = None  # a retry inherits the dead trial's attributes, its run id among them
        if run_id is None:
            run_id = self.client.create_run(
                self.experiment_id, run_name=f"trial {trial.number}", tags=tags,
                start_time=int(trial.datetime_start.timestamp() * 1000) if trial.datetime_start else None).info.run_id
        else:
            self.client.log_batch(run_id, tags=[RunTag(k, v) for k, v in tags.items()])
        stamp = int((trial.datetime_complete or trial.datetime_start).timestamp() * 1000) if trial.datetime_start else 0
        values = {**attrs.get("cost", {}), **attrs.get("metrics", {})}
        self.client.log_batch(
            run_id,
            metrics=[Metric(k, float(v), stamp, 0) for k, v in values.items() if isinstance(v, (int, float))],
            params=[Param(k, str(v)) for k, v in trial.params.items()],
        )
        if "overrides" in attrs:
            try:
                arch = resolve_architecture(self.architecture, attrs["overrides"])
                self.client.log_text(run_id, yaml.safe_dump(arch.config, sort_keys=False), "architecture.yaml")
            except Exception:  # the sample itself was bad (that is why the trial failed)
                self.client.log_text(run_id, "\n".join(attrs["overrides"]) + "\n", "overrides.txt")
        status = {"COMPLETE": "FINISHED", "PRUNED": "KILLED"}.get(trial.state.name, "FAILED")
        self.client.set_terminated(run_id, status,
                                   end_time=int(trial.datetime_complete.timestamp() * 1000) if trial.datetime_complete else None)
        return run_id

    def finish(self, study: optuna.Study, front_numbers: set[int], report_dir: Optional[Path]) -> None:
        """Close the runs of trials that ended without their worker (killed: FAILED), log
        finished trials that never had a run, tag every child on_front yes/no, and attach the
        report files to the parent run."""
        logged = self.logged_trials()
        settled = datetime.datetime.now() - datetime.timedelta(seconds=LOGGING_GRACE_S)
        for trial in study.trials:
            if not trial.state.is_finished():
                continue
            if trial.number not in logged:  # its worker died before the trial began
                if trial.datetime_complete is None or trial.datetime_complete < settled:
                    logged[trial.number] = self.log_trial(trial)
            elif trial.state == optuna.trial.TrialState.FAIL \
                    and self.client.get_run(logged[trial.number]).info.status == "RUNNING":
                self.log_trial(trial)  # failed for silence by a worker that had no tracker
        for number, run_id in logged.items():
            self.client.set_tag(run_id, "bench.on_front", "yes" if number in front_numbers else "no")
        timed = study.user_attrs.get("front_latency")
        if timed:
            for number, figures in timed["trials"].items():
                if int(number) in logged:
                    self.client.log_batch(logged[int(number)], metrics=[
                        Metric("latency_interleaved_ms", figures["median_ms"], 0, 0),
                        Metric("latency_ratio", figures["ratio"], 0, 0)])
            self.client.set_tag(self.parent, "bench.latency_reference",
                                f"{timed['reference']}: {timed['reference_ms']:.3f} ms")
        self.client.set_tag(self.parent, "bench.front", ",".join(map(str, sorted(front_numbers))))
        if report_dir is not None:
            for path in sorted(report_dir.iterdir()):
                self.client.log_artifact(self.parent, str(path), "report")
