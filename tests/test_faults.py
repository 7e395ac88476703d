"""Faults as they happen: Ctrl-C and SIGKILL in the middle of a sweep and the re-run after them,
two sweeps started at once in a fresh folder, a deleted MLflow store, a truncated study storage,
a full disk. Nothing is lost or half-written, and no traceback reaches the user."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import torch
from mlflow.tracking import MlflowClient

from bench.search.records import TrialRecord
from bench.search.study import load_study
from bench.results.loading import load_result
from bench.results.logged_models import load_logged
from needs import need
from signalling import default_dispositions

SLOW = """architecture: tinyunet
vary: {encoder.block.N: {choices: [4]}, width_multiplier: {choices: [0.25]}}
objectives: {val_dice: maximize, params: minimize}
recipe: {name: default, epochs: 6, batch: 8}
data: {source: synthetic, size: 32, count: 48}
study: {sampler: random, trials: 1, seed: 0}
"""  # one network, trained long enough to be stopped in the middle


def environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("BENCH_STORAGE", "MLFLOW_TRACKING_URI")}


def sweep(folder: Path, *extra: str, wait: bool = True, **kwargs):
    command = [sys.executable, "-m", "bench", "run", "--space", "slow.yaml", "--heartbeat", "1", "--threads", "1",
               *extra]
    kwargs.setdefault("preexec_fn", default_dispositions)  # Ctrl-C delivered, whatever this process inherited
    process = subprocess.Popen(command, cwd=folder, env=environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, **kwargs)
    if wait:
        out, err = process.communicate(timeout=600)
        return process.returncode, out, err
    return process


def wait_for(condition, process: subprocess.Popen, what: str, timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while not condition():
        assert process.poll() is None, f"the sweep ended before {what}: {process.communicate()}"
        assert time.time() < deadline, f"no {what} within {timeout} s"
        time.sleep(0.2)


def epochs_done(folder: Path) -> bool:
    """The running network has saved its state after at least one epoch."""
    return any((folder / "runs" / "slow" / "weights" / "resume").glob("*.pt"))


def final_weights(folder: Path, number: int) -> dict[str, torch.Tensor]:
    """The trained network's weights, from its MLflow model (the sweep keeps them there, once)."""
    kept = load_result(load_study("slow", f"sqlite:///{folder}/runs/optuna.db")).weights[number]
    assert kept["kept"] and kept["where"][0].startswith("models:/")
    model, _, _ = load_logged(kept["where"][0], f"sqlite:///{folder}/runs/mlflow.db")
    return model.state_dict()


def stop_mid_training(folder: Path, signal_number: int) -> tuple[str, TrialRecord]:
    """Start the slow sweep, send `signal_number` after its first epoch; its stderr and stopped trial."""
    (folder / "slow.yaml").write_text(SLOW)
    process = sweep(folder, wait=False)
    wait_for(lambda: epochs_done(folder), process, "a completed epoch")
    process.send_signal(signal_number)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130 and "Traceback" not in out + err
    stopped = load_result(load_study("slow", f"sqlite:///{folder}/runs/optuna.db")).records[0]
    assert stopped.state == "FAIL" and stopped.fail_reason == "interrupted"
    return err, stopped


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> tuple[Path, dict[str, torch.Tensor]]:
    """The same sweep, never stopped: the weights a resumed network must end with."""
    folder = tmp_path_factory.mktemp("uninterrupted")
    (folder / "slow.yaml").write_text(SLOW)
    code, out, err = sweep(folder)
    assert code == 0, out + err
    return folder, final_weights(folder, 0)


@pytest.mark.slow
def test_ctrl_c_mid_training_stops_cleanly_and_the_rerun_finishes_the_network_from_its_last_epoch(
        tmp_path, uninterrupted):
    err, stopped = stop_mid_training(tmp_path, signal.SIGINT)
    assert err.strip().startswith("interrupted:") and len(err.strip().splitlines()) == 1
    storage = f"sqlite:///{tmp_path}/runs/optuna.db"
    client = MlflowClient(f"sqlite:///{tmp_path}/runs/mlflow.db")
    runs = {r.data.tags.get("bench.trial", "study"): r for r in client.search_runs(
        [client.get_experiment_by_name("slow").experiment_id])}
    assert runs["0"].info.status == "KILLED" and runs["study"].info.status == "KILLED"

    code, out, err = sweep(tmp_path)  # the same command again
    assert code == 0, out + err
    records = load_result(load_study("slow", storage)).records
    retry = next(r for r in records if r.retry_of == stopped.number)
    assert retry.state == "COMPLETE" and retry.sample == stopped.sample
    history = retry.seeds[0].history
    assert [h["epoch"] for h in history] == list(range(1, 7))  # whole: the epochs before the stop were kept
    assert any("resumed_after_epoch" in h for h in history)  # and it went on from there
    weights, expected = final_weights(tmp_path, retry.number), uninterrupted[1]
    assert all(torch.equal(weights[k], expected[k]) for k in expected)  # as if never stopped


@pytest.mark.slow
@pytest.mark.parametrize("when", ["before training", "during training"])
def test_sigkill_then_a_prompt_rerun_finishes_the_study(tmp_path, when, uninterrupted):
    (tmp_path / "slow.yaml").write_text(SLOW)
    process = sweep(tmp_path, wait=False)
    storage = f"sqlite:///{tmp_path}/runs/optuna.db"

    def trial_running() -> bool:
        try:
            trials = optuna.load_study(study_name="slow", storage=storage).trials
        except (KeyError, Exception):
            return False
        return any(t.state.name == "RUNNING" and t.user_attrs.get("worker") for t in trials)

    wait_for(trial_running if when == "before training" else (lambda: epochs_done(tmp_path)), process, when)
    process.send_signal(signal.SIGKILL)
    process.wait()
    code, out, err = sweep(tmp_path)  # at once: the dead trial is failed after its grace period
    assert code == 0 and "Traceback" not in out + err, out + err
    records = load_result(load_study("slow", storage)).records
    dead, retry = records[0], next(r for r in records if r.retry_of == 0)
    assert dead.state == "FAIL" and retry.state == "COMPLETE"
    if when == "during training":  # resumed from the dead trial's last epoch, to the same weights
        assert any("resumed_after_epoch" in h for h in retry.seeds[0].history)
        weights, expected = final_weights(tmp_path, retry.number), uninterrupted[1]
        assert all(torch.equal(weights[k], expected[k]) for k in expected)
    client = MlflowClient(f"sqlite:///{tmp_path}/runs/mlflow.db")
    runs = {int(r.data.tags["bench.trial"]): r for r in client.search_runs(
        [client.get_experiment_by_name("slow").experiment_id], "tags.`bench.trial` != ''")}
    assert runs[0].info.status == "FAILED" and runs[retry.number].info.status == "FINISHED"


@pytest.mark.slow
def test_two_sweeps_started_at_once_in_a_fresh_folder_share_one_study(tmp_path):
    env = environment()
    command = [sys.executable, "-m", "bench", "run", "--space", "quick", "--trials", "3", "--threads", "1", "--quiet"]
    both = [subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=600)[0] for p in both]
    assert [p.returncode for p in both] == [0, 0], outputs
    assert not any("Traceback" in o for o in outputs)
    result = load_result(load_study("quick", f"sqlite:///{tmp_path}/runs/optuna.db"))
    assert sum(r.counted for r in result.records) >= 3
    seeds = {r.worker: r.sampler_seed for r in result.records}
    assert len(seeds) == 2 and len(set(seeds.values())) == 2  # each process drew its own sequence
    client = MlflowClient(f"sqlite:///{tmp_path}/runs/mlflow.db")
    parents = client.search_runs([client.get_experiment_by_name("quick").experiment_id], "tags.`bench.role` = 'study'")
    assert len(parents) == 1


def test_a_deleted_mlflow_store_is_recreated_from_the_study(tmp_path, run_cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run_cli("run", "--space", "quick", "--trials", "2", "--quiet").exit_code == 0
    (tmp_path / "runs" / "mlflow.db").unlink()
    result = run_cli("run", "--space", "quick", "--trials", "3", "--quiet")
    assert result.exit_code == 0, result.output
    records = load_result(load_study("quick", "sqlite:///runs/optuna.db")).records
    client = MlflowClient(f"sqlite:///{tmp_path}/runs/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("quick").experiment_id], "tags.`bench.trial` != ''")
    assert sorted(int(r.data.tags["bench.trial"]) for r in runs) == [r.number for r in records]


def test_a_truncated_study_storage_is_named_and_left_alone(tmp_path, run_cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run_cli("run", "--space", "quick", "--trials", "1", "--quiet").exit_code == 0
    database = tmp_path / "runs" / "optuna.db"
    database.write_bytes(database.read_bytes()[:3000])
    for args in (["run", "--space", "quick", "--trials", "2"], ["report", "--study", "quick"]):
        result = run_cli(*args)
        assert result.exit_code == 2 and "runs/optuna.db cannot be read" in result.output
        assert "move runs/optuna.db away" in result.output
    assert database.stat().st_size == 3000


def mounted_tmpfs(mount: Path, options: str):
    """A tmpfs at `mount`, where mounting is allowed (root ignores chmod, so faults need a real mount)."""
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount)], capture_output=True)
    need("TMPFS", done.returncode == 0, f"mounting a tmpfs ({done.stderr.decode().strip()})")
    yield mount
    subprocess.run(["umount", str(mount)], capture_output=True)


@pytest.fixture
def small_disk(tmp_path):
    """A 3 MiB file system."""
    yield from mounted_tmpfs(tmp_path / "disk", "size=3m")


def test_a_full_disk_is_found_before_training_and_never_leaves_half_a_file(small_disk, run_cli):
    result = run_cli("train", "unet", "--size", "32", "--epochs", "1", "--out", str(small_disk / "run"),
                     "--no-tracking")
    assert result.exit_code == 2 and "MiB free, and this run writes about" in result.output
    assert list(small_disk.iterdir()) == []  # refused before anything was written

    from bench.arch.assemble import build_model
    from bench.training.checkpoint import save_checkpoint
    from bench.arch.config import resolve_architecture
    from bench.core.errors import BenchError

    arch = resolve_architecture("unet")  # 124 MB of weights on a 3 MiB disk
    with pytest.raises(BenchError, match=r"cannot write .*model.pt.*nothing half-written"):
        save_checkpoint(small_disk / "model.pt", build_model(arch), arch, {})
    assert list(small_disk.iterdir()) == []


def test_an_interrupt_whose_storage_write_then_fails_still_ends_the_sweep_interrupted(tmp_path, monkeypatch,
                                                                                      default_signals):
    """Ctrl-C can land inside a write to the study, and the write that records it may then fail
    in its own way (a rolled-back session): the sweep still ends interrupted, not failed."""
    import bench.run.trial
    from bench.search.listeners import SweepListener
    from bench.search.records import INTERRUPTED
    from bench.run.sweep import Sweep

    class CtrlC(SweepListener):
        status = None

        def epoch_ended(self, record, epoch):
            os.kill(os.getpid(), signal.SIGINT)

        def study_ended(self, result):
            self.status = result.status

    class BrokenAfterInterrupt(bench.run.trial.RecordWriter):
        def __call__(self, record):
            if record.fail_reason == INTERRUPTED:
                raise optuna.exceptions.StorageInternalError("An exception is raised during the commit.")
            super().__call__(record)

    monkeypatch.setattr(bench.run.trial, "RecordWriter", BrokenAfterInterrupt)
    listener = CtrlC()
    with pytest.raises(KeyboardInterrupt):
        Sweep("quick", storage=f"sqlite:///{tmp_path}/optuna.db", tracking_uri=None, trials=2,
              listeners=[listener]).run()
    assert listener.status == "interrupted"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # pytest's Ctrl-C works again


@pytest.mark.slow
def test_sigterm_stops_a_sweep_as_ctrl_c_does(tmp_path):
    err, _ = stop_mid_training(tmp_path, signal.SIGTERM)
    assert err.strip().startswith("interrupted:")


@pytest.fixture
def read_only(tmp_path):
    """A read-only file system."""
    yield from mounted_tmpfs(tmp_path / "ro", "ro,size=1m")


def test_a_read_only_tracking_store_is_refused_before_the_study_is_created(read_only, tmp_path, run_cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run_cli("run", "--space", "quick", "--tracking-uri", f"sqlite:///{read_only}/mlflow.db")
    assert result.exit_code == 2 and "not writable" in result.output and "Read-only file system" in result.output
    assert not (tmp_path / "runs").exists()


def test_a_server_on_a_read_only_artifact_folder_leaves_no_database(read_only, tmp_path, run_cli):
    result = run_cli("server", "--backend-store", f"sqlite:///{tmp_path}/server/mlflow.db",
                     "--artifacts", str(read_only / "artifacts"))
    assert result.exit_code == 2 and "--artifacts" in result.output and "not writable" in result.output
    assert not (tmp_path / "server").exists()
