"""One way to train a design over seeds (bench.training.seeds.train_seeds) and one registry of
objectives: a sweep and ``bench.compare`` give the same per-seed figures for the same network,
seed and split; an objective registered here (validation HD95) reaches a sweep's front table,
its MLflow runs, and compare's table and runs, with no edit elsewhere."""
from __future__ import annotations

from pathlib import Path

import pytest
from mlflow import MlflowClient

import bench
from bench.arch.config import resolve_architecture
from bench.data.source import data_source
from bench.results.tables import front_table
from bench.run.sweep import Sweep
from bench.search.objectives import AFTER_TRAINING, MINIMIZE, OBJECTIVES, Objective
from bench.training.recipe import get_recipe
from bench.training.seeds import SeedRun

QUICK = Path(__file__).resolve().parents[1] / "search_spaces" / "quick.yaml"
STOCK_ONLY = """description: the stock TinyU-Net only, for comparing the seed loops
architecture: tinyunet
vary:
  encoder.block:
    cmrf: {N: {choices: [8]}}
  width_multiplier: {choices: [0.25]}
objectives: {val_dice: maximize, params: minimize}
recipe: {name: default, epochs: 1, batch: 8}
data: {source: synthetic, size: 32, count: 120}
study: {sampler: random, trials: 1, seed: 0, repeats: 2, stock: false}
"""


@pytest.fixture
def val_hd95():
    objective = OBJECTIVES.register(Objective(
        "val_hd95", MINIMIZE, AFTER_TRAINING, "Validation HD95", "px", 1.0,
        lambda scores: scores["val_hd95_mean_fg"], "HD95 of the foreground on the validation split", column=True))
    yield objective
    OBJECTIVES.unregister("val_hd95")


def test_a_sweep_and_compare_train_a_network_the_same_way_seed_by_seed(tmp_path):
    space = tmp_path / "stock.yaml"
    space.write_text(STOCK_ONLY)
    swept = Sweep(str(space), storage=f"sqlite:///{tmp_path}/optuna.db", tracking_uri=None, weights_dir=None).run()
    record = next(r for r in swept.records if r.status == "trained")
    quarter = resolve_architecture("tinyunet", ["width_multiplier=0.25"])  # the sweep's only design
    compared = bench.compare([quarter], data_source(None, size=32), recipe=get_recipe("default", epochs=1, batch=8),
                             repeats=2, out_dir=tmp_path / "compared", max_seconds=0.1)
    net = compared.networks[0]
    assert net.arch.hash == record.config_hash and compared.split.hash == swept.info.data["split_hash"]
    assert [run.seed for run in net.runs] == [run.seed for run in record.seeds] == [0, 1]
    for mine, theirs in zip(record.seeds, net.runs):
        assert isinstance(mine, SeedRun) and isinstance(theirs, SeedRun)
        timeless = lambda run: {k: v for k, v in run.metrics.items() if k != "train_seconds"}
        assert timeless(mine) == timeless(theirs)
        assert mine.test == theirs.test and mine.val == theirs.val
        assert mine.test_dice_fg_per_image == theirs.test_dice_fg_per_image
        assert [h["val_dice"] for h in mine.history] == [h["val_dice"] for h in theirs.history]
    assert record.metrics["val_dice"] == pytest.approx(net.estimates()["best_val_dice"].mean, abs=0)


def test_an_objective_registered_here_reaches_sweeps_compare_and_mlflow(tmp_path, val_hd95):
    space = tmp_path / "hd95.yaml"
    space.write_text(QUICK.read_text().replace("objectives: {val_dice: maximize, params: minimize}",
                                               "objectives: {val_dice: maximize, val_hd95: minimize}")
                     .replace("trials: 4", "trials: 2"))
    result = Sweep(str(space), storage=f"sqlite:///{tmp_path}/optuna.db", weights_dir=None,
                   tracking_uri=f"sqlite:///{tmp_path}/mlflow.db").run()
    trained = [r for r in result.records if r.status == "trained"]
    assert trained
    for r in trained:  # the mean over seeds of the validation metric, as the objective computes it
        assert r.value("val_hd95") == pytest.approx(r.seeds[0].val["hd95_mean_fg"])
    table = front_table(result)
    assert "Validation HD95 (px)" in table.columns
    assert list(table["Validation HD95 (px)"]) == [result.record(t).value("val_hd95") for t in table["Trial"]]
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("hd95").experiment_id], "tags.`bench.trial` != ''")
    logged = {int(run.data.tags["bench.trial"]): run.data.metrics for run in runs}
    assert all(logged[r.number]["val_hd95"] == pytest.approx(r.value("val_hd95")) for r in trained)

    compared = bench.compare(["tinyunet", "ulite"], data_source(None, size=32),
                             recipe=get_recipe("default", epochs=1, batch=8), out_dir=tmp_path / "compared",
                             max_seconds=0.1, tracking_uri=f"sqlite:///{tmp_path}/mlflow.db", experiment="hd95 compare")
    assert "Validation HD95 (px)" in compared.table.columns
    for net, shown in zip(compared.networks, compared.table["Validation HD95 (px)"]):
        assert shown == pytest.approx(net.first.val["hd95_mean_fg"])
    assert "Validation HD95" in (tmp_path / "compared" / "table.md").read_text()
    runs = client.search_runs([client.get_experiment_by_name("hd95 compare").experiment_id],
                              "tags.`bench.role` = 'network'")
    assert {run.info.run_name: run.data.metrics["val_hd95"] for run in runs} == pytest.approx(
        {net.name: net.first.val["hd95_mean_fg"] for net in compared.networks})
