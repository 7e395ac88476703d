"""Sweeps on Optuna: a quick study end to end, duplicates, constraints, and resuming after SIGKILL."""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from bench.pareto import pareto_front
from bench.search import front, make_objective, open_study, prepare_study_data, run_study
from bench.space import load_space


def quick_study(tmp_path: Path, name: str = "q"):
    space = load_space("quick")
    study = open_study(space, name, f"sqlite:///{tmp_path}/optuna.db")
    return space, study, make_objective(space, prepare_study_data(space, None, None), study)


def test_quick_sweep_completes_and_front_matches_an_independent_computation(tmp_path):
    space, study, objective = quick_study(tmp_path)
    run_study(study, objective, trials=4)
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 4
    for t in complete:
        assert {"config_hash", "cost", "metrics", "overrides", "blocks", "worker"} <= set(t.user_attrs)
        assert t.user_attrs["cost"]["peak_memory_mb"] > 0
    unique = [t for t in complete if "duplicate_of" not in t.user_attrs]
    expected = [unique[i].number for i in pareto_front([t.values for t in unique], ["maximize", "minimize"])]
    assert sorted(t.number for t in front(study, space.objectives)) == sorted(expected)


def test_same_network_is_not_trained_twice(tmp_path):
    space, study, objective = quick_study(tmp_path)
    for _ in range(2):
        study.enqueue_trial({"encoder.block.type": "cmrf", "encoder.block.cmrf.N": 4, "width_multiplier": 0.25})
    run_study(study, objective, trials=2)
    first, second = study.trials[:2]
    assert second.user_attrs["duplicate_of"] == first.number and second.values == first.values


def test_constraint_violators_are_measured_not_trained(tmp_path):
    space, study, objective = quick_study(tmp_path)
    space.constraints["params"]["max"] = 50_000.0  # the double conv at quarter width has 930,898
    study.enqueue_trial({"encoder.block.type": "double_conv", "width_multiplier": 0.25})
    run_study(study, objective, trials=1)
    trial = study.trials[0]
    assert trial.user_attrs["trained"] is False and trial.user_attrs["cost"]["params"] == 930_898
    assert trial.user_attrs["constraint_values"][0] > 0
    assert front(study, space.objectives) == []


def test_failed_trial_is_recorded_and_the_sweep_goes_on(tmp_path, monkeypatch):
    space, study, objective = quick_study(tmp_path)
    space.vary["encoder.block"].options["cmrf"]["N"] = space.vary["encoder.block"].options["cmrf"]["N"].__class__(
        "choices", (3,))  # N = 3 does not divide quarter-width TinyU-Net's 16 channels
    study.enqueue_trial({"encoder.block.type": "cmrf", "encoder.block.cmrf.N": 3, "width_multiplier": 0.25})
    study.enqueue_trial({"encoder.block.type": "double_conv", "width_multiplier": 0.25})
    run_study(study, objective, trials=1)
    failed, done = study.trials[0], study.trials[1]
    assert failed.state == TrialState.FAIL and "3 does not divide out_channels 16" in failed.user_attrs["fail_reason"]
    assert done.state == TrialState.COMPLETE


def test_killed_sweep_resumes_and_fails_the_stale_trial(tmp_path):
    storage = f"sqlite:///{tmp_path}/optuna.db"
    command = [sys.executable, "-m", "bench", "run", "--space", "quick", "--study", "k", "--trials", "3",
               "--storage", storage, "--heartbeat", "1", "--quiet"]
    worker = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    running = None
    while time.time() < deadline and running is None:
        time.sleep(0.3)
        try:
            trials = optuna.load_study(study_name="k", storage=storage).trials
        except KeyError:
            continue
        running = next((t for t in trials if t.state == TrialState.RUNNING), None)
    assert running is not None, "no trial started"
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    time.sleep(4)  # past the grace period (3 heartbeats)
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    study = optuna.load_study(study_name="k", storage=storage)
    assert study.trials[running.number].state == TrialState.FAIL
    assert sum(t.state == TrialState.COMPLETE for t in study.trials) == 3
    assert not any(t.state == TrialState.RUNNING for t in study.trials)


def test_journal_storage_runs_a_study(run_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run_cli("run", "--space", "quick", "--trials", "1", "--storage", f"journal:{tmp_path}/journal.log",
                     "--quiet")
    assert result.exit_code == 0, result.output
    study = optuna.load_study(study_name="quick", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(tmp_path / "journal.log"))))
    assert len([t for t in study.trials if t.state == TrialState.COMPLETE]) == 1


@pytest.mark.parametrize("storage, message", [
    ("postgres://x@127.0.0.1/db", "unknown database kind"),
    ("not a url", "is not a database URL"),
    ("journal:/no/such/folder/journal.log", "folder /no/such/folder does not exist"),
])
def test_bad_storage_urls_are_refused_before_anything_is_written(run_cli, tmp_path, monkeypatch, storage, message):
    monkeypatch.chdir(tmp_path)
    result = run_cli("run", "--space", "quick", "--storage", storage)
    assert result.exit_code == 2 and message in result.output
    assert not (tmp_path / "runs").exists()


def test_tracking_server_down_is_refused_before_anything_is_written(run_cli, tmp_path, monkeypatch):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.chdir(tmp_path)
    result = run_cli("run", "--space", "quick", "--storage", f"sqlite:///{tmp_path}/optuna.db",
                     "--tracking-uri", f"http://127.0.0.1:{port}")
    assert result.exit_code == 2
    assert f"cannot reach the MLflow tracking server http://127.0.0.1:{port}" in result.output
    assert "bench server" in result.output
    assert not (tmp_path / "optuna.db").exists() and not (tmp_path / "runs").exists()


def test_a_full_study_skips_surplus_trials_and_reaches_exactly_the_target(tmp_path):
    space, study, _ = quick_study(tmp_path)
    objective = make_objective(space, prepare_study_data(space, None, None), study, target=2)
    run_study(study, objective, trials=2)
    # a third worker that started late: its trial finds two trials ahead and is skipped
    study.optimize(objective, n_trials=1)
    states = [t.state for t in study.trials]
    assert states.count(TrialState.COMPLETE) == 2 and states[-1] == TrialState.PRUNED
    assert "already had 2 trials" in study.trials[-1].user_attrs["skipped"]


def test_a_trial_whose_worker_died_before_its_first_heartbeat_does_not_block_the_study(tmp_path):
    space, study, _ = quick_study(tmp_path)
    orphan = study.ask()  # RUNNING, never a heartbeat, never an objective: a worker killed right there
    objective = make_objective(space, prepare_study_data(space, None, None), study, target=1, grace=0.5)
    run_study(study, objective, trials=1, timeout=60, grace=0.5, poll=0.2)  # without reaping: waits, then fails
    assert study.trials[orphan.number].state == TrialState.FAIL
    assert [t.state for t in study.trials[1:]] == [TrialState.COMPLETE]
