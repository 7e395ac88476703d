"""Many workers on one study, against real servers: a PostgreSQL cluster started for these tests
(Debian's packages, 127.0.0.1 only) holding the Optuna study and the MLflow backend store, and
an MLflow tracking server started by `bench server`."""
from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from bench.search.study import records
from needs import need



def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl")) or ([shutil.which("pg_ctl")] if shutil.which("pg_ctl") else [])
    return Path(found[-1]).parent if found else None


class Postgres:
    """A throwaway cluster: password authentication over TCP on 127.0.0.1, user bench/bench."""

    def __init__(self, bin_dir: Path, root: Path) -> None:
        self.bin, self.data, self.port = bin_dir, root / "data", free_port()
        as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.run = lambda *cmd: subprocess.run([*as_postgres, *cmd], check=True, capture_output=True, text=True)
        if as_postgres:
            shutil.chown(root, "postgres")
        (root / "pw").write_text("bench-admin\n")
        if as_postgres:
            shutil.chown(root / "pw", "postgres")
        self.run(str(bin_dir / "initdb"), "-D", str(self.data), "-U", "postgres", "--pwfile", str(root / "pw"),
                 "--auth-host=scram-sha-256", "--auth-local=trust")
        self.run(str(bin_dir / "pg_ctl"), "-D", str(self.data), "-w", "-l", str(root / "log"), "-o",
                 f"-h 127.0.0.1 -p {self.port} -k {root} -c max_connections=200", "start")
        self.socket_dir = root
        self.sql("CREATE ROLE bench LOGIN PASSWORD 'bench'")

    def sql(self, statement: str) -> None:
        self.run(str(self.bin / "psql"), "-h", str(self.socket_dir), "-p", str(self.port), "-U", "postgres",
                 "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-c", statement)

    def database(self, name: str) -> str:
        self.sql(f"CREATE DATABASE {name} OWNER bench")
        return f"postgresql://bench:bench@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        self.run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")


@pytest.fixture(scope="module")
def postgres():
    bin_dir = _pg_bin()
    need("POSTGRES", bin_dir is not None, "a PostgreSQL server")
    root = Path(tempfile.mkdtemp(prefix="bench-pg-"))
    os.chmod(root, 0o755)
    server = Postgres(bin_dir, root)
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def tracking(postgres, tmp_path_factory):
    """`bench server` on a PostgreSQL backend store with served artifacts."""
    port, artifacts = free_port(), tmp_path_factory.mktemp("artifacts")
    store = postgres.database("mlflow")
    log = open(tmp_path_factory.mktemp("server") / "server.log", "w+")
    process = subprocess.Popen([sys.executable, "-m", "bench", "server", "--backend-store", store,
                                "--artifacts", str(artifacts), "--port", str(port)],
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                if urllib.request.urlopen(f"{uri}/health", timeout=5).status == 200:
                    break
            except OSError:
                pass
            assert process.poll() is None and time.time() < deadline, Path(log.name).read_text()
            time.sleep(1)
        yield uri
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
    log.seek(0)
    assert f"http://127.0.0.1:{port}" in log.read()  # bound to localhost unless told otherwise


def bench(*args: str, cwd: Path, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("BENCH_STORAGE", None)
    env.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.Popen([sys.executable, "-m", "bench", *args], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, **kwargs)


def tracked_runs(uri: str, study: str):
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(study)
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    parents = [r for r in runs if r.data.tags.get("bench.role") == "study"]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    return client, parents, children


@pytest.mark.slow
def test_three_workers_share_one_study(postgres, tracking, tmp_path):
    storage = postgres.database("three")  # a fresh schema: the workers race to create it
    worker = bench("run", "--space", "quick", "--study", "shared", "--trials", "4", "--workers", "3",
                   "--storage", storage, "--tracking-uri", tracking, "--heartbeat", "2", cwd=tmp_path)
    children: dict[int, str] = {}  # the worker processes, as `ps` shows them: no password there
    while worker.poll() is None and len(children) < 3:
        for entry in Path("/proc").iterdir():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if parent == worker.pid and "spawn_main" in cmdline:
                children[int(entry.name)] = cmdline
        time.sleep(0.2)
    output = worker.communicate(timeout=600)[0]
    assert len(children) == 3, children
    assert not any("bench:bench@" in cmdline for cmdline in children.values())
    assert worker.returncode == 0, output
    study = optuna.load_study(study_name="shared", storage=storage)
    trials = records(study)
    complete = [t for t in trials if t.state == "COMPLETE"]
    assert sum(t.counted for t in trials) == 4, output  # distinct networks, however many draws repeated one
    assert len({t.worker for t in trials if t.worker}) >= 2  # really shared
    # each network trained once, every other trial reuses a result
    trained = [t.config_hash for t in complete if t.trained and t.duplicate_of is None]
    assert len(trained) == len(set(trained)) == 4
    for t in complete:
        if t.duplicate_of is not None:
            original = trials[t.duplicate_of]
            assert original.config_hash == t.config_hash and original.duplicate_of is None
    client, parents, children = tracked_runs(tracking, "shared")
    assert len(parents) == 1
    by_trial = {}
    for child in children:
        assert child.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
        by_trial.setdefault(int(child.data.tags["bench.trial"]), []).append(child)
    assert sorted(by_trial) == [t.number for t in trials] and all(len(v) == 1 for v in by_trial.values())
    for t in complete:
        assert by_trial[t.number][0].info.status == "FINISHED"
    report = {f.path for f in client.list_artifacts(parents[0].info.run_id, "report")}
    assert "report/pareto.csv" in report  # artifacts went through the server
    assert "Pareto front of 'shared'" in output


@pytest.mark.slow
def test_a_killed_worker_is_retried_and_the_others_finish(postgres, tracking, tmp_path):
    storage = postgres.database("killed")
    args = ("run", "--space", "quick", "--study", "killed", "--trials", "4", "--storage", storage,
            "--tracking-uri", tracking, "--heartbeat", "1", "--threads", "1", "--quiet")
    victim = bench(*args, cwd=tmp_path)
    deadline, running = time.time() + 180, None
    while running is None:  # wait until the victim is inside a trial
        assert victim.poll() is None and time.time() < deadline, victim.stdout.read()
        time.sleep(0.2)
        try:
            study = optuna.load_study(study_name="killed", storage=storage)
        except KeyError:
            continue
        running = next((t for t in records(study, states=(TrialState.RUNNING,))  # sampled and tracked
                        if t.worker.endswith(f":{victim.pid}") and "mlflow_run_id" in t.links and t.sample), None)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    killed_at = time.time()
    survivor = bench(*args, cwd=tmp_path)
    output = survivor.communicate(timeout=600)[0]
    assert survivor.returncode == 0, output
    study = optuna.load_study(study_name="killed", storage=storage)
    dead = study.trials[running.number]
    assert dead.state == TrialState.FAIL
    assert (dead.datetime_complete.timestamp() - killed_at) < 60  # failed soon after the grace period
    assert sum(t.counted for t in records(study)) == 4
    retried = [t for t in records(study) if t.retry_of == running.number]
    assert len(retried) == 1 and retried[0].sample == dead.params  # as sampled before the kill
    client, _, children = tracked_runs(tracking, "killed")
    run = client.get_run(running.links["mlflow_run_id"])
    assert run.info.status == "FAILED" and "heartbeat" in run.data.tags["bench.fail_reason"]
    assert sorted(int(c.data.tags["bench.trial"]) for c in children) == [t.number for t in study.trials]


def test_wrong_credentials_and_unreachable_storage_fail_before_anything_is_written(postgres, tmp_path, run_cli,
                                                                                  monkeypatch):
    monkeypatch.chdir(tmp_path)
    postgres.database("creds")
    wrong = f"postgresql://bench:not-the-password@127.0.0.1:{postgres.port}/creds"
    result = run_cli("run", "--space", "quick", "--storage", wrong)
    assert result.exit_code == 2
    assert "cannot connect to the study storage postgresql://bench:***@127.0.0.1" in result.output
    assert "password authentication failed" in result.output and "not-the-password" not in result.output
    assert not (tmp_path / "runs").exists() and not (tmp_path / "reports").exists()
    closed = f"postgresql://bench:bench@127.0.0.1:{free_port()}/creds"
    result = run_cli("run", "--space", "quick", "--storage", closed)
    assert result.exit_code == 2 and "check that the database server is running" in result.output
    assert not (tmp_path / "runs").exists()
