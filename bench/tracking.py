"""MLflow tracking of sweeps, through ``MlflowClient`` with explicit run ids. The only module that
imports MLflow.

One experiment per study (tagged so that the UI opens on the training-runs view), one parent run
per study (found again by its tags when a study is resumed), one nested child run per trial
(``mlflow.parentRunId``), written when the trial ends.
"""
from __future__ import annotations

import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any, Optional

import optuna
import yaml
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient

from . import __version__
from .config import resolve_architecture

DEFAULT_TRACKING = "sqlite:///runs/mlflow.db"
DEFAULT_ARTIFACTS = "runs/mlartifacts"


def _git_revision() -> str:
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, timeout=5)
        return done.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


class SweepTracker:
    """Logs one study: ``log_trial`` after each trial, ``finish`` at the end of a sweep."""

    def __init__(self, tracking_uri: str, study: optuna.Study, space_file: Path,
                 data: dict[str, Any], artifact_root: Optional[str] = None) -> None:
        if tracking_uri.startswith("sqlite:///"):
            Path(tracking_uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
        self.client = MlflowClient(tracking_uri)
        name = study.study_name
        experiment = self.client.get_experiment_by_name(name)
        if experiment is None:
            location = None
            if not tracking_uri.startswith(("http://", "https://")):
                location = Path(artifact_root or DEFAULT_ARTIFACTS).resolve().as_uri()
            self.experiment_id = self.client.create_experiment(
                name, artifact_location=location,
                tags={"mlflow.experimentKind": "custom_model_development", "bench.study": name})
        else:
            self.experiment_id = experiment.experiment_id
        found = self.client.search_runs([self.experiment_id], "tags.`bench.role` = 'study'", max_results=1)
        if found:
            self.parent = found[0].info.run_id
        else:
            run = self.client.create_run(self.experiment_id, run_name=f"study {name}", tags={
                "bench.role": "study", "bench.study": name, "bench.version": __version__,
                "git.revision": _git_revision(),
                **{f"version.{p}": metadata.version(p) for p in ("torch", "optuna", "mlflow", "fvcore")},
            })
            self.parent = run.info.run_id
            self.client.log_batch(self.parent, params=[
                Param("space", str(space_file)), Param("data.source", str(data["source"])),
                Param("data.size", str(data["size"])), Param("split.hash", str(data["split_hash"])),
                Param("objectives", ",".join(f"{k}:{v}" for k, v in data["objectives"].items())),
            ])
            self.client.log_artifact(self.parent, str(space_file))
        self.architecture = data["architecture"]

    def logged_trials(self) -> dict[int, str]:
        runs = self.client.search_runs([self.experiment_id], f"tags.`mlflow.parentRunId` = '{self.parent}'",
                                       max_results=50000)
        return {int(r.data.tags["bench.trial"]): r.info.run_id for r in runs}

    def log_trial(self, trial: optuna.trial.FrozenTrial) -> str:
        """A child run for a finished trial: parameters, metrics, tags, resolved architecture."""
        attrs = trial.user_attrs
        tags = {"mlflow.parentRunId": self.parent, "bench.trial": str(trial.number),
                "bench.state": trial.state.name, "bench.trained": str(attrs.get("trained", "")),
                "bench.config_hash": attrs.get("config_hash", ""),
                **{f"block.{k}": v for k, v in attrs.get("blocks", {}).items()}}
        if "duplicate_of" in attrs:
            tags["bench.duplicate_of"] = str(attrs["duplicate_of"])
        if "fail_reason" in attrs:
            tags["bench.fail_reason"] = attrs["fail_reason"][:5000]
        run = self.client.create_run(self.experiment_id, run_name=f"trial {trial.number}", tags=tags,
                                     start_time=int(trial.datetime_start.timestamp() * 1000) if trial.datetime_start else None)
        run_id = run.info.run_id
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
        status = "FINISHED" if trial.state.name == "COMPLETE" else "FAILED"
        self.client.set_terminated(run_id, status,
                                   end_time=int(trial.datetime_complete.timestamp() * 1000) if trial.datetime_complete else None)
        return run_id

    def finish(self, study: optuna.Study, front_numbers: set[int], report_dir: Optional[Path]) -> None:
        """Log trials that have no child run yet (e.g. failed after a crash), tag every child
        on_front yes/no, and attach the report files to the parent run."""
        logged = self.logged_trials()
        for trial in study.trials:
            if trial.number not in logged and trial.state.is_finished():
                logged[trial.number] = self.log_trial(trial)
        for number, run_id in logged.items():
            self.client.set_tag(run_id, "bench.on_front", "yes" if number in front_numbers else "no")
        self.client.set_tag(self.parent, "bench.front", ",".join(map(str, sorted(front_numbers))))
        if report_dir is not None:
            for path in sorted(report_dir.iterdir()):
                self.client.log_artifact(self.parent, str(path), "report")
