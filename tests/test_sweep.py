"""Sweeps from Python (bench.run.sweep.Sweep): a quick study end to end and the same through `bench run`,
duplicates, constraints, failures, a toy objective registered through the registry alone, and
resuming after SIGKILL."""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from bench.search.objectives import BEFORE_TRAINING, MINIMIZE, OBJECTIVES, Objective
from bench.search.design import Design
from bench.search.pareto import pareto_front
from bench.search.space import Distribution, load_space
from bench.search.study import records
from bench.run.sweep import Sweep


def quick(tmp_path: Path, space="quick", **settings) -> Sweep:
    """A sweep of the quick space in its own storage, without MLflow unless asked."""
    settings.setdefault("tracking_uri", None)
    return Sweep(space, storage=f"sqlite:///{tmp_path}/optuna.db", **settings)


def test_quick_sweep_from_python_completes_and_its_front_matches_an_independent_computation(tmp_path):
    sweep = quick(tmp_path, trials=4)
    result = sweep.run()
    complete = [r for r in result.records if r.state == "COMPLETE"]
    assert sum(r.counted for r in result.records) == 4 and result.records == sweep.records()  # distinct networks
    assert all(r.counted == (r.duplicate_of is None) for r in complete)
    for r in complete:
        assert r.config_hash and r.config["encoder"]["block"]["type"] == r.sample["encoder.block.type"]
        assert r.cost["params"] == r.values["params"] and r.cost["deploy"]["params"] > 0
        assert r.values["peak_memory_mb"] > 0 and r.worker and r.overrides and r.blocks["encoder.block"]
        assert r.trained and r.metrics["test_dice"] >= 0 and len(r.seeds) == 1
        assert len(r.seeds[0].history) == 1
    unique = [r for r in complete if r.duplicate_of is None]
    expected = [unique[i].number for i in pareto_front([(r.value("val_dice"), r.value("params")) for r in unique],
                                                        ["maximize", "minimize"])]
    assert sorted(result.front) == sorted(expected)
    assert [r.number for r in sweep.front()] == result.front


def test_the_python_api_and_bench_run_give_the_same_front(run_cli, tmp_path, monkeypatch):
    python = quick(tmp_path / "python", trials=3, report_dir=tmp_path / "python" / "report").run()
    monkeypatch.chdir(tmp_path)
    result = run_cli("run", "--space", "quick", "--trials", "3", "--quiet")
    assert result.exit_code == 0, result.output
    from bench.search.study import load_study
    from bench.results.loading import load_result

    cli = load_result(load_study("quick", "sqlite:///runs/optuna.db"))
    assert cli.front == python.front and cli.front
    untimed = lambda r: {k: v for k, v in r.metrics.items() if k != "train_seconds"}  # noqa: E731
    for mine, theirs in zip(cli.front_records, python.front_records):
        assert (mine.sample, mine.values, untimed(mine)) == (theirs.sample, theirs.values, untimed(theirs))
    assert (tmp_path / "reports" / "quick" / "pareto.csv").exists()


class Printer:
    """A listener of our own, as a user would write one."""

    def __init__(self) -> None:
        self.events: list[tuple] = []

    def study_started(self, info, past):
        self.events.append(("study_started", info.study, len(past)))

    def trial_started(self, record):
        self.events.append(("trial_started", record.number))

    def epoch_ended(self, record, epoch):
        self.events.append(("epoch_ended", record.number, epoch["epoch"]))

    def trial_ended(self, record):
        self.events.append(("trial_ended", record.number, record.status))

    def study_ended(self, result):
        self.events.append(("study_ended", tuple(result.front)))

    def for_worker(self, index):
        return None


def test_a_worker_of_a_sweep_runs_trials_and_starts_no_workers_of_its_own(tmp_path, monkeypatch):
    """Workers receive the coordinator's settings, worker count included: a worker that started
    workers in turn would multiply processes until memory ran out."""
    import bench.run.sweep

    def no_workers(*args, **kwargs):
        raise AssertionError("a worker started workers")

    monkeypatch.setattr(bench.run.sweep, "run_workers", no_workers)
    coordinator_settings = quick(tmp_path, trials=1, workers=2, weights_dir=None).settings
    assert coordinator_settings.workers == 2 and coordinator_settings.threads >= 1
    records = bench.run.sweep.Sweep(coordinator_settings, worker_index=0).run().records
    assert [r.status for r in records] == ["trained"]
    with pytest.raises(AssertionError, match="a worker started workers"):  # the coordinator does start them
        bench.run.sweep.Sweep(coordinator_settings).run()


def test_listeners_see_every_event_in_order(tmp_path):
    printer = Printer()
    result = quick(tmp_path, trials=2, listeners=[printer]).run()
    kinds = [e[0] for e in printer.events]
    assert kinds[0] == "study_started" and kinds[-1] == "study_ended"
    assert printer.events[-1] == ("study_ended", tuple(result.front))
    for number in (0, 1):
        mine = [e for e in printer.events if len(e) > 1 and e[1] == number and e[0] != "study_started"]
        assert [e[0] for e in mine] == ["trial_started", "epoch_ended", "trial_ended"]


def test_same_network_is_not_trained_twice(tmp_path):
    sweep = quick(tmp_path, trials=2)
    for _ in range(2):
        sweep.study.enqueue_trial({"encoder.block.type": "cmrf", "encoder.block.cmrf.N": 4, "width_multiplier": 0.25})
    first, second = sweep.run().records[:2]
    assert second.duplicate_of == first.number and second.values == first.values and second.status == "duplicate"
    assert second.trained and second.metrics == first.metrics


def test_a_design_over_the_parameter_budget_is_never_built_nor_trained_and_has_no_accuracy(tmp_path, monkeypatch):
    space = load_space("quick")
    space.constraints["params"]["max"] = 50_000.0  # the double conv at quarter width has 930,898
    built, build = [], Design.build
    monkeypatch.setattr(Design, "build", lambda arch, *args, **kwargs: built.append(arch.hash) or build(arch, *args, **kwargs))
    sweep = quick(tmp_path, space, trials=1)
    sweep.study.enqueue_trial({"encoder.block.type": "double_conv", "width_multiplier": 0.25})
    result = sweep.run()
    record = result.records[0]
    assert record.config_hash not in built and not record.cost  # decided on the plan: nothing built, counted
    assert record.state == "PRUNED" and record.status == "not trained" and not record.trained
    assert record.values == {"params": 930_898} and record.value("val_dice") is None and not record.metrics
    assert record.violations["params"] == 930_898 - 50_000 and not record.feasible
    assert record.skipped == "not trained: params 0.931 M > 0.05 M"
    assert record.number not in result.front
    trial = sweep.study.trials[0]
    assert trial.constraints == {"params": 930_898 - 50_000}  # the samplers see it as infeasible
    assert sum(r.state == "COMPLETE" for r in result.records) == 1  # an untrained design is no complete trial


def test_failed_trial_is_recorded_and_the_sweep_goes_on(tmp_path):
    space = load_space("quick")
    space.vary["encoder.block"].options["cmrf"]["N"] = Distribution("choices", (3,))
    sweep = quick(tmp_path, space, trials=1)  # N = 3 does not divide quarter-width TinyU-Net's 16 channels
    sweep.study.enqueue_trial({"encoder.block.type": "cmrf", "encoder.block.cmrf.N": 3, "width_multiplier": 0.25})
    sweep.study.enqueue_trial({"encoder.block.type": "double_conv", "width_multiplier": 0.25})
    failed, done = sweep.run().records[:2]
    assert failed.state == "FAIL" and "3 does not divide out_channels 16" in failed.fail_reason
    assert failed.status == "failed" and failed.config is not None and failed.cost is None
    assert done.state == "COMPLETE"


@pytest.fixture
def deploy_params():
    """A toy objective, registered through the registry alone."""
    OBJECTIVES.register(Objective("deploy_params", MINIMIZE, BEFORE_TRAINING, "Deploy parameters", "M", 1e-6,
                                  lambda design: design.cost.deploy.params, "parameters of the deploy form"))
    yield
    OBJECTIVES.unregister("deploy_params")


def test_an_objective_registered_through_the_registry_alone_can_be_swept(deploy_params, tmp_path, write_yaml,
                                                                        run_cli):
    space = write_yaml("toy.yaml", """
        architecture: tinyunet
        vary:
          encoder.block:
            repvgg: {}
            cmrf: {N: {choices: [4]}}
          width_multiplier: {choices: [0.25]}
        objectives: {val_dice: maximize, deploy_params: minimize}
        constraints: {deploy_params: {max: 1000000}}
        recipe: {name: default, epochs: 1, batch: 8}
        data: {source: synthetic, size: 32, count: 24}
        study: {sampler: random, trials: 2, seed: 0}
    """)
    result = quick(tmp_path, str(space)).run()
    for record in result.records:
        assert record.values["deploy_params"] == record.cost["deploy"]["params"] > 0
        if record.sample["encoder.block.type"] == "repvgg":  # fused: fewer parameters than it trains with
            assert record.values["deploy_params"] < record.values["params"]
    assert result.front and all(result.record(n).state == "COMPLETE" for n in result.front)
    listed = run_cli("list", "objectives")
    assert "deploy_params " in listed.output and "before training" in listed.output


def test_unknown_objective_in_a_space_names_the_registry(write_yaml):
    from bench.core.errors import ConfigError

    space = write_yaml("bad.yaml", """
        architecture: tinyunet
        vary: {width_multiplier: {choices: [0.25]}}
        objectives: {val_dice: maximize, deploy_params: minimize}
    """)
    with pytest.raises(ConfigError, match=r"objectives.deploy_params: 'deploy_params' is not an objective bench "
                                          r"measures.*bench list objectives"):
        load_space(str(space))


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
    assert sum(r.counted for r in records(study)) == 3
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
    sweep = quick(tmp_path, trials=2)
    sweep.run()
    # a third worker that started late: its trial finds two trials ahead and is skipped
    sweep.study.optimize(sweep.objective, n_trials=1)
    records = sweep.records()
    assert sum(r.counted for r in records) == 2 and records[-1].state == "PRUNED"
    assert records[-1].status == "skipped" and "already had 2 networks" in records[-1].skipped


def test_a_trial_whose_worker_died_before_its_first_heartbeat_does_not_block_the_study(tmp_path):
    sweep = quick(tmp_path, trials=1, heartbeat=1, timeout=60)
    orphan = sweep.study.ask()  # RUNNING, never a heartbeat, never an objective: a worker killed right there
    result = sweep.run()  # without reaping: waits until the timeout, then fails
    assert result.record(orphan.number).state == "FAIL"
    assert "worker stopped" in result.record(orphan.number).fail_reason
    assert [r.state for r in result.records[1:]] == ["COMPLETE"]


KILLED_AFTER_ITS_WORKER_WAS_SAVED = """
import os, signal, sys
from optuna.storages import _heartbeat
# Optuna's heartbeat thread loses the race to the objective's first write every time: it records nothing
_heartbeat.HeartbeatThread.start = _heartbeat.HeartbeatThread.join = lambda self: None
from bench.run.sweep import Sweep
from bench.search.listeners import SweepListener

class KilledThere(SweepListener):
    def trial_started(self, record):  # the trial's worker is saved: reap() leaves it to the heartbeats
        os.kill(os.getpid(), signal.SIGKILL)

Sweep("quick", storage=sys.argv[1], trials=1, heartbeat=1, tracking_uri=None, listeners=[KilledThere()]).run()
"""


def test_a_worker_killed_before_its_heartbeat_thread_wrote_does_not_block_the_study(tmp_path):
    # CI once hung here: the heartbeat thread had not yet written when the worker was killed, and
    # reap() skips a trial whose worker is saved, so neither Optuna nor bench ever failed it.
    storage = f"sqlite:///{tmp_path}/optuna.db"
    killed = subprocess.run([sys.executable, "-c", KILLED_AFTER_ITS_WORKER_WAS_SAVED, storage], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    (orphan,) = optuna.load_study(study_name="quick", storage=storage).trials
    assert orphan.state == TrialState.RUNNING and orphan.user_attrs.get("worker")
    result = quick(tmp_path, trials=1, heartbeat=1, timeout=60).run()  # without a heartbeat: waits out the timeout
    assert result.record(orphan.number).state == "FAIL"
    assert [r.state for r in result.records[1:]] == ["COMPLETE"]
    assert result.exhausted is None


def untimed(record) -> str:
    """Everything a trial found except wall-clock figures, as text."""
    import json

    seeds = [{**s.to_dict(), "metrics": {k: v for k, v in s.metrics.items() if k != "train_seconds"},
              "history": [{k: v for k, v in h.items() if not k.endswith("seconds")} for h in s.history]} for s in record.seeds]
    return json.dumps([record.sample, {k: v for k, v in record.values.items()}, seeds, record.per_image])


def test_repeats_train_each_design_with_consecutive_seeds_and_the_front_is_on_means(tmp_path):
    result = quick(tmp_path, trials=2, repeats=2).run()
    trained = [r for r in result.records if r.status == "trained"]
    assert trained and result.info.repeats == 2
    for r in trained:
        assert [s.seed for s in r.seeds] == [0, 1]
        first, second = (s.metrics["val_dice"] for s in r.seeds)
        assert first != second  # other initial weights, batch order and augmentation
        assert r.value("val_dice") == pytest.approx((first + second) / 2)
        assert r.estimate("val_dice").n == 2 and r.estimate("val_dice").std > 0
        assert len(r.per_image) == result.info.data["test"]
        assert r.per_image[0] == pytest.approx(sum(s.test_dice_fg_per_image[0] for s in r.seeds) / 2)
    unique = [r for r in result.records if r.state == "COMPLETE" and r.duplicate_of is None]
    on_means = [unique[i].number for i in pareto_front([(r.value("val_dice"), r.value("params")) for r in unique],
                                                       ["maximize", "minimize"])]
    assert sorted(result.front) == sorted(on_means)


def test_the_same_seed_gives_the_same_figures_to_the_last_digit_with_repeats(tmp_path):
    first = quick(tmp_path / "a", trials=1, repeats=2).run().records
    second = quick(tmp_path / "b", trials=1, repeats=2).run().records
    assert [untimed(r) for r in first] == [untimed(r) for r in second]


def test_the_stock_network_is_trained_first_and_every_front_member_is_tested_against_it(tmp_path, write_yaml):
    write_yaml("base.yaml", "base: tinyunet\nwidth_multiplier: 0.25\n")
    space = write_yaml("small.yaml", """
        architecture: base.yaml
        vary:
          encoder.block:
            cmrf: {N: {choices: [4, 8]}}
            double_conv: {}
        objectives: {val_dice: maximize, params: minimize}
        recipe: {name: default, epochs: 1, batch: 8}
        data: {source: synthetic, size: 32, count: 40}
        study: {sampler: random, trials: 3, seed: 0, repeats: 2}
    """)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    result = quick(tmp_path, str(space), report_dir=tmp_path / "report", tracking_uri=uri).run()
    stock = result.records[0]
    assert stock.sample == {"encoder.block.type": "cmrf", "encoder.block.cmrf.N": 8}
    assert stock.config_hash == result.info.reference_hash and result.stock == 0
    others = [n for n in result.front if n != 0]
    assert set(result.versus_stock) == set(others)
    for number, test in result.versus_stock.items():
        assert test.n == result.info.data["test"] - test.dropped and test.seeds == 2
        judged = len(result.versus_stock) + len(result.front_pairs)
        assert test.family == judged and test.p_adjusted >= test.p_value  # Holm over the report's tests
        assert test.verdict == ("not distinguishable" if test.p_adjusted >= 0.05 else
                                "better" if test.mean_difference > 0 else "worse")
    report = (tmp_path / "report" / "report.md").read_text()
    assert "## Against the stock network" in report and "each design trained 2 times" in report
    assert set(result.front) <= set(result.front_probability) and "P(front)" in report
    assert all(0.0 <= p <= 1.0 for p in result.front_probability.values())
    assert max(result.front_probability[n] for n in result.front) > 0
    for number, test in result.versus_stock.items():
        assert f"(trial {number}) against the stock cmrf N=8 (trial 0): {test.text()}." in report
    from mlflow import MlflowClient  # each front member's run carries its verdict and P(better)

    client = MlflowClient(uri)
    runs = {r.data.tags.get("bench.trial"): r for r in client.search_runs([client.get_experiment_by_name(
        result.info.study).experiment_id])}
    for number, test in result.versus_stock.items():
        run = runs[str(number)]
        assert run.data.tags["bench.vs_stock"] == test.text()
        assert run.data.metrics["p_better_than_stock"] == pytest.approx(test.p_better)


def test_a_resumed_study_refuses_other_repeats(tmp_path):
    from bench.core.errors import BenchError

    quick(tmp_path, trials=1).run()
    with pytest.raises(BenchError, match=r"trains each design 1 time\(s\); --repeats 2 would mix"):
        quick(tmp_path, trials=2, repeats=2).run()


def _take_waiting_trials(url: str, name: str, start: float, taken) -> None:
    from bench.search.storage import make_storage

    study = optuna.load_study(study_name=name, storage=make_storage(url, heartbeat=10, grace=60))
    while time.time() < start:
        time.sleep(0.001)
    mine = []
    while True:
        trial = study.ask()
        if "job" not in trial.user_attrs:  # the queue is empty: ask made a new trial
            break
        mine.append(trial.user_attrs["job"])
    taken.put(mine)


def test_workers_on_one_sqlite_file_never_take_the_same_waiting_trial(tmp_path):
    # SQLite ignores SELECT ... FOR UPDATE: without serialised transactions two workers both
    # took a waiting trial, and the second failed with "Cannot tell a COMPLETE trial"
    import multiprocessing

    from bench.search.storage import make_storage

    url, name, jobs, workers = f"sqlite:///{tmp_path / 'queue.db'}", "queue", 60, 4
    study = optuna.create_study(study_name=name, storage=make_storage(url, heartbeat=10, grace=60))
    for job in range(jobs):
        study.enqueue_trial({}, user_attrs={"job": job})
    context = multiprocessing.get_context("fork")
    taken = context.Queue()
    start = time.time() + 3
    processes = [context.Process(target=_take_waiting_trials, args=(url, name, start, taken)) for _ in range(workers)]
    for process in processes:
        process.start()
    shares = [taken.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=30)
    every = sorted(job for share in shares for job in share)
    assert every == list(range(jobs)), f"taken twice: {sorted({j for j in every if every.count(j) > 1})}"
    assert sum(1 for share in shares if share) > 1  # the workers really competed
