"""A small sweep's MLflow record: one parent per study, one child per trial, artifacts and tags,
and a logged front equal to the front computed independently from the children's metrics."""
from __future__ import annotations

from mlflow.tracking import MlflowClient

from bench.pareto import pareto_front


def test_sweep_is_tracked_in_mlflow(run_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run_cli("run", "--space", "quick", "--trials", "3", "--repeats", "2", "--quiet")
    assert result.exit_code == 0, result.output
    client = MlflowClient(f"sqlite:///{tmp_path}/runs/mlflow.db")
    experiment = client.get_experiment_by_name("quick")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    parents = [r for r in runs if r.data.tags.get("bench.role") == "study"]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and len(children) == len(runs) - 1
    parent = parents[0]
    assert {"space", "data.source", "split.hash", "objectives"} <= set(parent.data.params)
    assert {"git.revision", "version.torch", "version.optuna"} <= set(parent.data.tags)
    parent_files = {f.path for f in client.list_artifacts(parent.info.run_id, "report")}
    assert {"report/pareto.csv", "report/pareto.png", "report/pareto.html", "report/report.md",
            "report/results.csv", "report/table.tex"} <= parent_files
    assert any(f.path == "quick.yaml" for f in client.list_artifacts(parent.info.run_id))

    numbers = sorted(int(c.data.tags["bench.trial"]) for c in children)
    assert numbers == list(range(len(children))) and len(children) >= 3
    for child in children:
        tags = child.data.tags
        assert tags["mlflow.parentRunId"] == parent.info.run_id
        assert tags["bench.state"] in ("COMPLETE", "FAIL") and tags["bench.on_front"] in ("yes", "no")
        assert "block.encoder.block" in tags
        if tags["bench.state"] == "COMPLETE":
            metrics = child.data.metrics
            assert {"val_dice", "params", "macs", "flops", "deploy_params", "deploy_macs"} <= set(metrics)
            assert any(f.path == "architecture.yaml" for f in client.list_artifacts(child.info.run_id))
            # each seed's figures beside their mean, std and 95 % interval
            assert tags["bench.seeds"] == "0,1"
            assert metrics["val_dice"] == (metrics["val_dice/seed_0"] + metrics["val_dice/seed_1"]) / 2
            assert {"val_dice_std", "val_dice_ci95_low", "val_dice_ci95_high", "test_dice/seed_1"} <= set(metrics)

    candidates = [c for c in children if c.data.tags["bench.state"] == "COMPLETE"
                  and c.data.tags["bench.trained"] == "True" and "bench.duplicate_of" not in c.data.tags]
    expected = {int(candidates[i].data.tags["bench.trial"]) for i in pareto_front(
        [(c.data.metrics["val_dice"], c.data.metrics["params"]) for c in candidates], ["maximize", "minimize"])}
    logged = {int(c.data.tags["bench.trial"]) for c in children if c.data.tags["bench.on_front"] == "yes"}
    assert logged == expected and parent.data.tags["bench.front"] == ",".join(map(str, sorted(expected)))
    assert (tmp_path / "reports" / "quick" / "pareto.csv").exists()


def test_report_command_rebuilds_the_report_from_the_study(run_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run_cli("run", "--space", "quick", "--trials", "2", "--quiet").exit_code == 0
    result = run_cli("report", "--study", "quick", "--out", str(tmp_path / "again"))
    assert result.exit_code == 0, result.output
    assert {p.name for p in (tmp_path / "again").iterdir()} == {
        "results.csv", "pareto.csv", "report.md", "table.tex", "pareto.png", "pareto.html"}
    assert (tmp_path / "again" / "pareto.csv").read_text() == (tmp_path / "reports" / "quick" / "pareto.csv").read_text()
    missing = run_cli("report", "--study", "nope")
    assert missing.exit_code == 2 and "no study 'nope'" in missing.output


def test_latency_sweep_logs_the_protocol_and_times_the_front_interleaved(run_cli, tmp_path, monkeypatch,
                                                                          write_yaml):
    import bench.sweep
    from bench.latency import Protocol
    from bench.study import load_study
    from bench.sweep import load_result

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(bench.sweep, "SWEEP_LATENCY", Protocol(warmup=1, min_repeats=3, max_seconds=0.1))
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
