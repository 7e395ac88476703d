"""MLflow tracking of sweeps, through ``MlflowClient`` with explicit run ids. The only module that
imports MLflow.

:class:`MlflowTracker` is a sweep listener: one experiment per study (tagged so that the UI opens
on the training-runs view), one parent run per study (found again by its tags when a study is
resumed, or by another worker), one nested child run per trial (``mlflow.parentRunId``), created
when the trial starts and written from its record when it ends.
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

import yaml
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from . import __version__
from .defaults import DEFAULT_ARTIFACTS
from .errors import BenchError
from .listeners import SweepListener
from .records import COMPLETE, FAIL, RUNNING, StudyInfo, SweepResult, TrialRecord
from .storage import CONNECT_TIMEOUT_S, redact

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


def latency_tags(record: dict[str, Any], prefix: str = "latency.") -> dict[str, str]:
    """A :meth:`bench.latency.Latency.to_dict` record's protocol, stopping reason and n as flat
    string tags (values that are None are left out)."""
    flat = {**record["protocol"], "stopped": record["stopped"], "n": record["n"]}
    return {f"{prefix}{k}": str(v) for k, v in flat.items() if v is not None}


class MlflowTracker(SweepListener):
    """Logs one study to ``tracking_uri``. Any number of workers may log the same study at once:
    one of them creates the experiment and the parent run, the others find them."""

    def __init__(self, tracking_uri: str, artifact_root: Optional[str] = None, parent_wait_s: float = 60.0) -> None:
        if tracking_uri.startswith("sqlite:///"):
            # absolute, because MLflow caches one store per URI string for the whole process
            database = Path(tracking_uri[len("sqlite:///"):]).resolve()
            database.parent.mkdir(parents=True, exist_ok=True)
            tracking_uri = f"sqlite:///{database}"
        self.client = MlflowClient(tracking_uri)
        self.location = None
        if not tracking_uri.startswith(("http://", "https://")):  # a server keeps its own artifacts
            self.location = Path(artifact_root or DEFAULT_ARTIFACTS).resolve().as_uri()
        self.parent_wait_s = parent_wait_s
        self.experiment_id = self.parent = ""

    # ------------------------------------------------------------------------------ listener

    def study_started(self, info: StudyInfo, past) -> None:
        self.experiment_id, created = self._experiment(info.study)
        parent = self._find_parent()
        if parent is None and not created:  # the worker that created the experiment is creating it
            deadline = time.monotonic() + self.parent_wait_s
            while parent is None and time.monotonic() < deadline:
                time.sleep(0.5)
                parent = self._find_parent()
        self.parent = parent or self._create_parent(info)

    def trial_started(self, record: TrialRecord) -> None:
        """The trial's child run, RUNNING until the trial ends."""
        run = self.client.create_run(self.experiment_id, run_name=f"trial {record.number}", tags={
            "mlflow.parentRunId": self.parent, "bench.trial": str(record.number), "bench.state": RUNNING,
            "bench.worker": record.worker or f"{socket.gethostname()}:{os.getpid()}"})
        record.links["mlflow_run_id"] = run.info.run_id

    def trial_ended(self, record: TrialRecord) -> None:
        self.log_trial(record)

    def study_ended(self, result: SweepResult) -> None:
        """Close the runs of trials that ended without their worker (killed: FAILED), log
        finished trials that never had a run, tag every child on_front yes/no, log the
        interleaved timing of the front, and attach the report files to the parent run."""
        logged = self.logged_trials()
        settled = datetime.datetime.now() - datetime.timedelta(seconds=LOGGING_GRACE_S)
        for record in result.records:
            if record.state in (RUNNING, "WAITING"):
                continue
            if record.number not in logged:  # its worker died before the trial began
                if record.finished is None or record.finished < settled:
                    logged[record.number] = self.log_trial(record)
            elif record.state == FAIL and self.client.get_run(logged[record.number]).info.status == "RUNNING":
                self.log_trial(record)  # failed for silence by a worker that had no tracker
        front = set(result.front)
        for number, run_id in logged.items():
            self.client.set_tag(run_id, "bench.on_front", "yes" if number in front else "no")
        timed = result.front_latency
        if timed:
            for number, figures in timed["trials"].items():
                if int(number) in logged:
                    self.client.log_batch(logged[int(number)], metrics=[
                        Metric("latency_interleaved_ms", figures["median_ms"], 0, 0),
                        Metric("latency_ratio", figures["ratio"], 0, 0)])
            self.client.set_tag(self.parent, "bench.latency_reference",
                                f"{timed['reference']}: {timed['reference_ms']:.3f} ms")
        self.client.set_tag(self.parent, "bench.front", ",".join(map(str, sorted(front))))
        if result.stock is not None:
            self.client.set_tag(self.parent, "bench.stock_trial", str(result.stock))
        for number, test in result.versus_stock.items():
            if number in logged:
                self.client.set_tag(logged[number], "bench.vs_stock", test.text())
        for path in result.report_paths:
            self.client.log_artifact(self.parent, path, "report")

    # ------------------------------------------------------------------------------ runs

    def _experiment(self, name: str) -> tuple[str, bool]:
        """The study's experiment id, and whether this call created it (only one worker does)."""
        experiment = self.client.get_experiment_by_name(name)
        if experiment is not None:
            return experiment.experiment_id, False
        try:
            return self.client.create_experiment(
                name, artifact_location=self.location,
                tags={"mlflow.experimentKind": "custom_model_development", "bench.study": name}), True
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            return self.client.get_experiment_by_name(name).experiment_id, False

    def _find_parent(self) -> Optional[str]:
        found = self.client.search_runs([self.experiment_id], "tags.`bench.role` = 'study'",
                                        order_by=["attributes.start_time ASC"], max_results=1)
        return found[0].info.run_id if found else None

    def _create_parent(self, info: StudyInfo) -> str:
        run = self.client.create_run(self.experiment_id, run_name=f"study {info.study}", tags={
            "bench.role": "study", "bench.study": info.study, "bench.version": __version__,
            "git.revision": _git_revision(),
            **{f"version.{p}": metadata.version(p) for p in ("torch", "optuna", "mlflow", "fvcore")},
        })
        parent = run.info.run_id
        self.client.log_batch(parent, params=[
            Param("space", info.space_file or info.space), Param("data.source", str(info.data["source"])),
            Param("data.size", str(info.data["size"])), Param("split.hash", str(info.data["split_hash"])),
            Param("objectives", ",".join(f"{k}:{v}" for k, v in info.objectives.items())),
        ])
        if info.space_file and Path(info.space_file).is_file():
            self.client.log_artifact(parent, info.space_file)
        return parent

    def logged_trials(self) -> dict[int, str]:
        runs = self.client.search_runs([self.experiment_id], f"tags.`mlflow.parentRunId` = '{self.parent}'",
                                       max_results=50000)
        return {int(r.data.tags["bench.trial"]): r.info.run_id for r in runs}

    def log_trial(self, record: TrialRecord) -> str:
        """The child run of a finished trial (created now if the trial never started one): its
        sample as parameters, values and metrics, tags, the resolved architecture; FINISHED, or
        FAILED / KILLED."""
        tags = {"mlflow.parentRunId": self.parent, "bench.trial": str(record.number),
                "bench.state": record.state, "bench.status": record.status, "bench.trained": str(record.trained),
                "bench.seeds": ",".join(str(run["seed"]) for run in record.seeds),
                "bench.config_hash": record.config_hash, **{f"block.{k}": v for k, v in record.blocks.items()}}
        if record.latency:
            tags.update(latency_tags(record.latency))
        if record.duplicate_of is not None:
            tags["bench.duplicate_of"] = str(record.duplicate_of)
        if record.fail_reason:
            tags["bench.fail_reason"] = record.fail_reason[:5000]
        if record.skipped:
            tags["bench.skipped"] = record.skipped
        run_id = record.links.get("mlflow_run_id")
        if run_id and record.retry_of is not None \
                and self.client.get_run(run_id).data.tags.get("bench.trial") != str(record.number):
            run_id = None  # a retry inherits the dead trial's attributes, its run id among them
        if run_id is None:
            run_id = self.client.create_run(
                self.experiment_id, run_name=f"trial {record.number}", tags=tags,
                start_time=int(record.started.timestamp() * 1000) if record.started else None).info.run_id
        else:
            self.client.log_batch(run_id, tags=[RunTag(k, v) for k, v in tags.items()])
        moment = record.finished or record.started
        stamp = int(moment.timestamp() * 1000) if moment else 0
        values = {**record.metrics, **record.values}
        if record.cost:
            values.update({f"deploy_{k}": record.cost["deploy"][k] for k in ("params", "macs", "flops")})
        for name, figure in record.estimates.items():  # over the seeds: the mean is values[name]
            if figure["n"] > 1:
                values.update({f"{name}_std": figure["std"], f"{name}_ci95_low": figure["ci_low"],
                               f"{name}_ci95_high": figure["ci_high"]})
        for run in record.seeds if len(record.seeds) > 1 else []:
            values.update({f"{name}/seed_{run['seed']}": v for name, v in run["metrics"].items()})
        self.client.log_batch(
            run_id,
            metrics=[Metric(k, float(v), stamp, 0) for k, v in values.items() if isinstance(v, (int, float))],
            params=[Param(k, str(v)) for k, v in record.sample.items()],
        )
        if record.config is not None:
            self.client.log_text(run_id, yaml.safe_dump(record.config, sort_keys=False), "architecture.yaml")
        elif record.overrides:  # the sample itself was bad (that is why the trial failed)
            self.client.log_text(run_id, "\n".join(record.overrides) + "\n", "overrides.txt")
        status = {COMPLETE: "FINISHED", "PRUNED": "KILLED"}.get(record.state, "FAILED")
        self.client.set_terminated(run_id, status,
                                   end_time=int(record.finished.timestamp() * 1000) if record.finished else None)
        return run_id
