"""A small sweep's MLflow record: one parent per study, one child per trial, artifacts and tags,
and a logged front equal to the front computed independently from the children's metrics."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from bench.search.pareto import pareto_front
from signalling import default_dispositions


def test_sweep_is_tracked_in_mlflow_as_a_user_of_its_ui_expects(run_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run_cli("run", "--space", "quick", "--trials", "3", "--repeats", "2", "--quiet")
    assert result.exit_code == 0, result.output
    client = MlflowClient(f"sqlite:///{tmp_path}/runs/mlflow.db")
    experiment = client.get_experiment_by_name("quick")
    url = (f"http://127.0.0.1:5000/#/experiments/{experiment.experiment_id}/runs?workflowType=machine_learning"
           "&viewStateShareKey=bench")
    assert url in result.output  # the address that opens the runs table on the saved view
    view = json.loads(experiment.tags["mlflow.sharedViewState.bench"])  # MLflow's "Share" form
    assert view == {"orderByKey": "metrics.`val_dice_best`", "orderByAsc": False,
                    "selectedColumns": ["metrics.`val_dice_best`", "metrics.`n_params`", "metrics.`p_on_front`"],
                    "columnOrder": ["attributes.`Run Name`", "metrics.`val_dice_best`", "metrics.`n_params`",
                                    "metrics.`p_on_front`"],
                    "columnWidths": {"attributes.`Run Name`": 380}}
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    parents = [r for r in runs if r.data.tags.get("bench.role") == "study"]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and len(children) == len(runs) - 1
    parent = parents[0]
    assert parent.info.status == "FINISHED" and parent.info.end_time
    assert {"space", "data.source", "split.hash", "objectives", "recipe.lr", "repeats"} <= set(parent.data.params)
    assert parent.data.params["data.test_split"].startswith("random 60/20/20 split, seed 0")
    [lineage] = parent.inputs.dataset_inputs  # the Datasets column: the data, its split as digest
    assert (lineage.dataset.name, lineage.dataset.digest) == ("synthetic", parent.data.params["split.hash"][:12])
    assert {"mlflow.source.git.commit", "version.torch", "version.optuna"} <= set(parent.data.tags)
    assert "Pareto front of val_dice, params" in parent.data.tags["mlflow.note.content"]
    assert {"designs_trained", "front_size", "best_val_dice", "hypervolume"} <= set(parent.data.metrics)
    parent_files = {f.path for f in client.list_artifacts(parent.info.run_id)}
    report = {f.path for f in client.list_artifacts(parent.info.run_id, "report")}
    assert "pareto.png" in parent_files and any(f == "quick.yaml" for f in parent_files)
    assert {"report/pareto.csv", "report/pareto.png", "report/pareto.html", "report/report.md",
            "report/results.csv", "report/table.tex"} <= report

    numbers = sorted(int(c.data.tags["bench.trial"]) for c in children)
    assert numbers == list(range(len(children))) and len(children) >= 3
    for child in children:
        tags, metrics = child.data.tags, child.data.metrics
        assert tags["mlflow.parentRunId"] == parent.info.run_id
        assert tags["bench.state"] in ("COMPLETE", "FAIL") and tags["bench.on_front"] in ("yes", "no")
        assert "block.encoder.block" in tags
        assert tags["mlflow.note.content"].startswith(child.info.run_name.split(" · ")[-1])
        if tags["bench.state"] != "COMPLETE":
            continue
        if tags["bench.on_front"] == "yes":  # how sure: the share of resamples with it on the front
            assert 0.0 < metrics["p_on_front"] <= 1.0
        label = " ".join(f"{v}" if k.endswith(".type") else f"x{v}" if k == "width_multiplier" else f"N={v}"
                         for k, v in child.data.params.items() if k.startswith(("encoder", "width")))
        repeat = f" (repeat of trial {tags['bench.duplicate_of']})" if "bench.duplicate_of" in tags else ""
        assert child.info.run_name == f"trial {tags['bench.trial']} · {label}{repeat}"
        assert {"val_dice_best", "n_params", "macs", "flops", "deploy_n_params", "deploy_macs"} <= set(metrics)
        assert "params" not in metrics  # never beside MLflow's Parameters
        assert {"recipe.lr", "recipe.epochs", "data.source", "data.size", "seeds"} <= set(child.data.params)
        files = {f.path for f in client.list_artifacts(child.info.run_id)}
        assert "architecture.yaml" in files
        architecture = client.download_artifacts(child.info.run_id, "architecture.yaml", str(tmp_path))
        assert "name: tinyunet-" in open(architecture).read()  # its own name, not the base's
        # each seed's figures beside their mean, std and 95 % interval; curves with one point per epoch
        assert tags["bench.seeds"] == "0,1"
        assert metrics["val_dice_best"] == (metrics["val_dice_best/seed_0"] + metrics["val_dice_best/seed_1"]) / 2
        assert {"val_dice_best_std", "val_dice_best_ci95_low", "test_dice/seed_1"} <= set(metrics)
        if "bench.duplicate_of" not in tags:
            assert [i.dataset.digest for i in child.inputs.dataset_inputs] == [lineage.dataset.digest]
            assert [m.step for m in client.get_metric_history(child.info.run_id, "val_dice")] == [1]
            assert len(client.get_metric_history(child.info.run_id, "train_loss/seed_1")) == 1
            # the front's weights once, in the run: seed 0 as its MLflow model, seed 1 as a checkpoint
            models = [m for m in client.search_logged_models([child.info.experiment_id])
                      if m.source_run_id == child.info.run_id]
            seeds = {f.path for f in client.list_artifacts(child.info.run_id, "seed_1")}
            if tags["bench.on_front"] == "yes":
                assert tags["bench.weights"].startswith("kept (on the front)") and [m.name for m in models] == ["model"]
                assert seeds == {"seed_1/model.pt"}
            else:
                assert tags["bench.weights"].startswith("deleted (") and not models and not seeds

    candidates = [c for c in children if c.data.tags["bench.state"] == "COMPLETE"
                  and c.data.tags["bench.trained"] == "True" and "bench.duplicate_of" not in c.data.tags]
    expected = {int(candidates[i].data.tags["bench.trial"]) for i in pareto_front(
        [(c.data.metrics["val_dice_best"], c.data.metrics["n_params"]) for c in candidates], ["maximize", "minimize"])}
    logged = {int(c.data.tags["bench.trial"]) for c in children if c.data.tags["bench.on_front"] == "yes"}
    assert logged == expected and parent.data.tags["bench.front"] == ",".join(map(str, sorted(expected)))
    assert (tmp_path / "reports" / "quick" / "pareto.csv").exists()


def test_untrained_designs_log_no_accuracy_and_say_why(tmp_path, write_yaml):
    from bench.run.sweep import Sweep

    space = write_yaml("budget.yaml", """
        architecture: tinyunet
        vary:
          encoder.block:
            cmrf: {N: {choices: [4]}}
            double_conv: {}
          width_multiplier: {choices: [0.25]}
        objectives: {val_dice: maximize, params: minimize}
        constraints: {params: {max: 100000}}
        recipe: {name: default, epochs: 2, batch: 8}
        data: {source: synthetic, size: 32, count: 24}
        study: {sampler: random, trials: 1, seed: 0}
    """)
    sweep = Sweep(str(space), storage=f"sqlite:///{tmp_path}/optuna.db", tracking_uri=f"sqlite:///{tmp_path}/mlflow.db",
                  weights_dir=tmp_path / "weights")
    sweep.study.enqueue_trial({"encoder.block.type": "double_conv", "width_multiplier": 0.25})
    sweep.study.enqueue_trial({"encoder.block.type": "cmrf", "encoder.block.cmrf.N": 4, "width_multiplier": 0.25})
    sweep.run()
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    runs = {int(r.data.tags["bench.trial"]): r for r in client.search_runs(
        [client.get_experiment_by_name("budget").experiment_id], "tags.`bench.trial` != ''")}
    untrained, trained = runs[0], runs[1]
    assert untrained.data.tags["bench.not_trained"] == "not trained: params 0.931 M > 0.1 M"
    assert not {"val_dice", "val_dice_best", "test_dice"} & set(untrained.data.metrics)
    assert untrained.data.metrics["n_params"] == 930_898 and untrained.info.status == "FINISHED"
    assert "no accuracy" in untrained.data.tags["mlflow.note.content"]
    assert [m.step for m in client.get_metric_history(trained.info.run_id, "val_dice")] == [1, 2]
    assert [m.step for m in client.get_metric_history(trained.info.run_id, "train_loss")] == [1, 2]


def test_report_command_rebuilds_the_report_from_the_study(run_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run_cli("run", "--space", "quick", "--trials", "2", "--quiet").exit_code == 0
    result = run_cli("report", "--study", "quick", "--out", str(tmp_path / "again"))
    assert result.exit_code == 0, result.output
    assert {p.name for p in (tmp_path / "again").iterdir()} == {
        "results.csv", "pareto.csv", "report.md", "table.md", "table.csv", "table.tex", "table_2col.tex",
        "table_full.tex", "pareto.png", "pareto.pdf", "pareto.html"}
    assert (tmp_path / "again" / "pareto.csv").read_text() == (tmp_path / "reports" / "quick" / "pareto.csv").read_text()
    missing = run_cli("report", "--study", "nope")
    assert missing.exit_code == 2 and "no study 'nope'" in missing.output


def test_latency_sweep_logs_the_protocol_and_times_the_front_interleaved(run_cli, tmp_path, monkeypatch,
                                                                          write_yaml):
    import bench.run.sweep
    import bench.run.trial
    from bench.arch.latency import Protocol
    from bench.search.study import load_study
    from bench.results.loading import load_result

    monkeypatch.chdir(tmp_path)
    quick_timing = Protocol(warmup=1, min_repeats=3, max_seconds=0.1)
    monkeypatch.setattr(bench.run.trial, "SWEEP_LATENCY", quick_timing)  # each trial's
    monkeypatch.setattr(bench.run.sweep, "FRONT_LATENCY", quick_timing)  # the front's, again at the end
    space = write_yaml("fast.yaml", """
        architecture: tinyunet
        vary:
          encoder.block.N: {choices: [2, 4]}
          width_multiplier: {choices: [0.25]}
        objectives: {val_dice: maximize, latency_ms: minimize}
        recipe: {name: default, epochs: 1, batch: 8}
        data: {source: synthetic, size: 32, count: 24}
        study: {sampler: random, trials: 2, seed: 0}
    """)
    result = run_cli("run", "--space", str(space), "--quiet")
    assert result.exit_code == 0, result.output
    assert "front timed again, interleaved with tinyunet (stock)" in result.output
    study = load_study("fast", "sqlite:///runs/optuna.db")
    timed = study.user_attrs["front_latency"]
    best = {str(n) for n in load_result(study).front}
    assert set(timed["trials"]) == best and timed["protocol"]["interleaved_with"]
    for figures in timed["trials"].values():
        assert figures["ratio"] == figures["median_ms"] / timed["reference_ms"]

    client = MlflowClient(f"sqlite:///{tmp_path}/runs/mlflow.db")
    experiment = client.get_experiment_by_name("fast")
    children = [r for r in client.search_runs([experiment.experiment_id]) if "mlflow.parentRunId" in r.data.tags]
    for child in children:
        tags = child.data.tags
        if tags["bench.state"] == "COMPLETE":
            assert tags["latency.backend"] == "eager" and tags["latency.form"] == "deploy"
            assert {"latency.threads", "latency.torch", "latency.cpu", "latency.input_size"} <= set(tags)
            assert "latency_ms" in child.data.metrics
        if tags["bench.on_front"] == "yes":
            assert child.data.metrics["latency_ratio"] == timed["trials"][tags["bench.trial"]]["ratio"]
    pareto = (tmp_path / "reports" / "fast" / "pareto.csv").read_text()
    assert "latency_interleaved_ms" in pareto.splitlines()[0] and "latency_ratio" in pareto.splitlines()[0]
    plot = (tmp_path / "reports" / "fast" / "pareto.html").read_text()
    assert "Latency (ms, 1 thread): each design as timed in its trial; the tables give the front timed again" in plot


def test_the_study_run_ends_killed_after_ctrl_c(tmp_path, write_yaml):
    import os
    import signal
    import subprocess
    import sys
    import time

    import optuna

    storage = f"sqlite:///{tmp_path}/optuna.db"
    space = write_yaml("slow.yaml", """
        architecture: tinyunet
        vary: {encoder.block.N: {choices: [2, 4]}, width_multiplier: {choices: [0.25]}}
        objectives: {val_dice: maximize, params: minimize}
        recipe: {name: default, epochs: 20, batch: 8}
        data: {source: synthetic, size: 32, count: 24}
        study: {sampler: random, trials: 2, seed: 0}
    """)  # trials long enough to be interrupted in
    env = {k: v for k, v in os.environ.items() if k not in ("BENCH_STORAGE", "MLFLOW_TRACKING_URI")}
    sweep = subprocess.Popen([sys.executable, "-m", "bench", "run", "--space", str(space), "--study", "quick",
                              "--storage", storage, "--quiet"], cwd=tmp_path, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             preexec_fn=default_dispositions)  # whatever this process inherited
    deadline, running = time.time() + 120, False
    while not running:
        assert sweep.poll() is None and time.time() < deadline, sweep.stdout.read()
        time.sleep(0.3)
        try:
            trials = optuna.load_study(study_name="quick", storage=storage).trials
        except KeyError:
            continue
        running = any(t.state.name == "RUNNING" and t.user_attrs.get("links", {}).get("mlflow_run_id") for t in trials)
    sweep.send_signal(signal.SIGINT)
    out, _ = sweep.communicate(timeout=120)
    assert sweep.returncode == 130, out
    client = MlflowClient(f"sqlite:///{tmp_path}/runs/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("quick").experiment_id], "tags.`bench.role` = 'study'")
    assert runs[0].info.status == "KILLED" and runs[0].data.tags["bench.status"] == "interrupted"


def test_compare_logs_one_run_per_network_with_its_curves_and_weights(run_cli, tmp_path):
    store = f"sqlite:///{tmp_path}/mlflow.db"
    result = run_cli("compare", "tinyunet", "ulite", "--size", "32", "--epochs", "2", "--repeats", "2",
                     "--max-seconds", "1", "--out", str(tmp_path / "cmp"), "--tracking-uri", store)
    assert result.exit_code == 0, result.output
    client = MlflowClient(store)
    experiment = client.get_experiment_by_name("cmp")
    assert f"#/experiments/{experiment.experiment_id}/runs?workflowType=machine_learning" in result.output
    runs = client.search_runs([experiment.experiment_id])
    parent = next(r for r in runs if r.data.tags.get("bench.role") == "comparison")
    networks = {r.info.run_name: r for r in runs if r.data.tags.get("bench.role") == "network"}
    assert set(networks) == {"tinyunet", "ulite"} and len(runs) == 3
    assert {f.path for f in client.list_artifacts(parent.info.run_id)} >= {"table.md", "table.tex", "table.csv",
                                                                           "comparison.json"}
    for name, run in networks.items():
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id and run.info.status == "FINISHED"
        assert [m.step for m in client.get_metric_history(run.info.run_id, "val_dice")] == [1, 2]
        assert len(client.get_metric_history(run.info.run_id, "val_dice/seed_1")) == 2
        assert {"test_dice_mean", "test_dice_mean_std", "n_params", "latency_ms"} <= set(run.data.metrics)
        assert {"recipe.lr", "seeds", "data.split"} <= set(run.data.params)
        files = {f.path for f in client.list_artifacts(run.info.run_id, "seed_1")}
        assert "seed_1/model.pt" in files
    assert "bench.vs_reference" in networks["ulite"].data.tags


def test_the_run_of_a_trial_killed_as_it_completed_is_closed_when_the_study_ends(tmp_path, monkeypatch):
    """A SIGKILL between a trial turning COMPLETE and its MLflow run closing left the run RUNNING
    for ever (only FAIL trials were repaired)."""
    from bench.run.sweep import Sweep

    storage, uri = f"sqlite:///{tmp_path}/optuna.db", f"sqlite:///{tmp_path}/mlflow.db"
    Sweep("quick", storage=storage, tracking_uri=uri, trials=1, weights_dir=None).run()
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("quick").experiment_id
    child = next(r for r in client.search_runs([experiment]) if r.data.tags.get("bench.state") == "COMPLETE")
    client.update_run(child.info.run_id, status="RUNNING")  # what the kill leaves
    monkeypatch.setattr("bench.results.tracking.LOGGING_GRACE_S", 0)  # its worker is long gone
    Sweep("quick", storage=storage, tracking_uri=uri, trials=1, weights_dir=None).run()  # nothing left to train
    assert client.get_run(child.info.run_id).info.status == "FINISHED"


def test_a_study_run_whose_set_up_fails_is_closed_failed_not_left_running(tmp_path, monkeypatch):
    """The study's run exists before its files are uploaded: a failing upload ends it FAILED with
    one error, not a second traceback and a run RUNNING for ever."""
    from bench.run.sweep import Sweep
    from bench.results.mlflow_store import MlflowStore

    def broken(self, run_id, path, folder=None):
        raise NotADirectoryError(20, "Not a directory", "runs/mlartifacts/abc")

    monkeypatch.setattr(MlflowStore, "upload", broken)
    space = tmp_path / "quick.yaml"  # a file, so that the study's run uploads it
    space.write_text((Path(__file__).resolve().parents[1] / "search_spaces" / "quick.yaml").read_text())
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    with pytest.raises(NotADirectoryError):
        Sweep(str(space), storage=f"sqlite:///{tmp_path}/optuna.db", tracking_uri=uri, trials=1).run()
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("quick").experiment_id])
    assert [(r.info.status, r.data.tags["bench.status"]) for r in runs] == [("FAILED", "failed")]


def test_run_names_say_what_a_trial_became():
    from bench.results.tracking import run_name
    from bench.search.records import COMPLETE, FAIL, PRUNED, TrialRecord

    sample = {"encoder.block.type": "repvgg", "width_multiplier": 0.25}
    kinds = {
        "trial 1 · repvgg x0.25": TrialRecord(1, state=COMPLETE, sample=sample, trained=True),
        "trial 2 · repvgg x0.25 (not trained)": TrialRecord(2, state=PRUNED, sample=sample,
                                                            violations={"params": 5.0}, skipped="not trained: ..."),
        "trial 3 · repvgg x0.25 (repeat of trial 1)": TrialRecord(3, state=COMPLETE, sample=sample, duplicate_of=1),
        "trial 4 · repvgg x0.25 (pruned)": TrialRecord(4, state=PRUNED, sample=sample, pruned={"reason": "MO-ASHA"}),
        "trial 5 · repvgg x0.25 (failed)": TrialRecord(5, state=FAIL, sample=sample, fail_reason="ValueError: x"),
        "trial 6 (interrupted)": TrialRecord(6, state=FAIL, fail_reason="interrupted"),
    }
    assert {run_name(record): name for name, record in kinds.items()} == {name: name for name in kinds}
