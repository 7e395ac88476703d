"""Trained networks kept once (issue 30): a sweep keeps the front's and the stock network's weights,
moved into their MLflow runs as MLflow models (the deploy form beside where it differs), deletes
the others and says why on the run; a logged model loads with mlflow.pytorch and gives the trained
network's outputs."""
from __future__ import annotations

import hashlib
from pathlib import Path

import mlflow
import optuna
import torch
from mlflow.tracking import MlflowClient

from bench.arch.assemble import build_model
from bench.arch.config import resolve_architecture
from bench.arch.reparameterize import deploy
from bench.results.logged_models import DEPLOY, MODEL, load_logged, log_checkpoint, tracking_at
from bench.run.sweep import Sweep
from bench.run.weights import release
from bench.search.records import COMPLETE, TrialRecord
from bench.search.study import weights_decisions
from bench.training.checkpoint import save_checkpoint

SPACE = """\
description: the stock TinyU-Net, a quarter of it, and RepVGG blocks (whose deploy form differs)
architecture: tinyunet
vary:
  encoder.block:
    cmrf: {N: {choices: [8]}}
    repvgg: {}
  width_multiplier: {choices: [1.0, 0.25]}
objectives: {val_dice: maximize}  # one objective: a front of one, so that some networks are off it
recipe: {name: default, epochs: 1, batch: 8}
data: {source: synthetic, size: 32, count: 12}
study: {sampler: random, trials: 4, seed: 0, repeats: 2}
"""


def trained(number: int, dice: float, params: float, folder: Path) -> TrialRecord:
    path = folder / f"trial_{number}" / "seed_0" / "model.pt"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"w" * 1000)
    return TrialRecord(number, state=COMPLETE, values={"val_dice": dice, "params": params}, trained=True,
                       sample={"width_multiplier": number}, config_hash=f"h{number}",
                       artifacts={"seed_0/model.pt": str(path)})


def test_a_network_pushed_off_the_front_loses_its_weights_and_says_by_which_trial(tmp_path):
    study = optuna.create_study()
    objectives = {"val_dice": "maximize", "params": "minimize"}
    first = trained(0, 0.80, 100.0, tmp_path)
    assert release(study, [first], objectives, "stock", "front", ended=first) == []  # alone: on the front
    better = trained(1, 0.90, 50.0, tmp_path)  # better and smaller: trial 0 leaves the front
    assert release(study, [first, better], objectives, "stock", "front", ended=better) == [0]
    assert not (tmp_path / "trial_0").exists() and Path(better.artifacts["seed_0/model.pt"]).is_file()
    decision = weights_decisions(study)[0]
    assert decision == {"kept": False, "why": "left the front when trial 1 (x1) was trained", "bytes": 1000,
                        "where": []}
    worse = trained(2, 0.50, 80.0, tmp_path)  # never on the front
    release(study, [first, better, worse], objectives, "stock", "front", ended=worse)
    assert weights_decisions(study)[2]["why"] == "not on the front when it was trained"
    assert release(study, [first, better, worse], objectives, "stock", "all") == []  # all: nothing released


def test_a_logged_model_loads_with_mlflow_pytorch_and_gives_the_trained_network_s_outputs(tmp_path):
    arch = resolve_architecture("tinyunet", ["width_multiplier=0.25", "encoder.block.type=repvgg"])
    network = build_model(arch, seed=3)
    with torch.no_grad():  # weights and BatchNorm statistics unlike a fresh network's
        for module in network.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    save_checkpoint(tmp_path / "model.pt", network, arch, {"note": "trained"})
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(uri)
    experiment = client.create_experiment("e", artifact_location=(tmp_path / "artifacts").as_uri())
    run = client.create_run(experiment).info.run_id
    logged = log_checkpoint(client, uri, experiment, run, tmp_path / "model.pt", 32)
    assert set(logged) == {MODEL, DEPLOY}  # RepVGG's deploy form differs: logged beside
    images = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        expected = network.eval()(images)
        with tracking_at(uri):
            loaded = mlflow.pytorch.load_model(f"runs:/{run}/model")
            fused = mlflow.pytorch.load_model(f"runs:/{run}/{DEPLOY}")
        assert torch.allclose(loaded(images), expected, atol=1e-6)
        assert torch.allclose(fused(images), deploy(network)(images), atol=1e-6)
        assert torch.allclose(fused(images), expected, atol=1e-4)
    model, again, record = load_logged(f"runs:/{run}/model", uri)
    assert again.hash == arch.hash and record == {"note": "trained"}
    info = mlflow.models.get_model_info(logged[MODEL])
    assert info.signature.inputs.to_dict()[0]["tensor-spec"]["shape"] == (-1, 3, 32, 32)


def test_a_sweep_keeps_the_front_s_and_the_stock_network_s_weights_once_and_the_rest_not(tmp_path, write_yaml):
    space = write_yaml("keep.yaml", SPACE)
    result = Sweep(space, storage=f"sqlite:///{tmp_path}/optuna.db", tracking_uri=f"sqlite:///{tmp_path}/mlflow.db",
                   report_dir=tmp_path / "report", weights_dir=tmp_path / "weights").run()
    networks = {r.number for r in result.records if r.trained and r.duplicate_of is None}
    keep = set(result.front) | {result.stock}
    assert result.stock is not None and networks - keep, "the test needs a network off the front"
    assert {n for n, w in result.weights.items() if w["kept"]} == keep
    assert {n for n, w in result.weights.items() if not w["kept"]} == networks - keep
    assert not list((tmp_path / "weights").rglob("model.pt"))  # moved into MLflow or deleted
    weights = [p for p in tmp_path.rglob("*") if p.suffix in (".pt", ".pt2", ".pth")]
    digests = [hashlib.sha256(p.read_bytes()).hexdigest() for p in weights]
    assert len(set(digests)) == len(digests)  # no weight file twice
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    runs = {int(r.data.tags["bench.trial"]): r for r in client.search_runs(
        [client.get_experiment_by_name(result.info.study).experiment_id], "tags.`bench.trial` != ''")}
    models = client.search_logged_models([runs[result.stock].info.experiment_id])
    for number in keep:
        names = {m.name for m in models if m.source_run_id == runs[number].info.run_id}
        repvgg = result.record(number).blocks["encoder.block"] == "repvgg"
        assert names == ({MODEL, DEPLOY} if repvgg else {MODEL})
        assert runs[number].data.tags["bench.weights"].startswith("kept (")
        assert [f.path for f in client.list_artifacts(runs[number].info.run_id, "seed_1")] == ["seed_1/model.pt"]
        model, arch, record = load_logged(f"runs:/{runs[number].info.run_id}/model", f"sqlite:///{tmp_path}/mlflow.db")
        assert arch.hash == result.record(number).config_hash and record["trial"] == number
    for number in networks - keep:
        assert runs[number].data.tags["bench.weights"].startswith("deleted (")
        assert not [m for m in models if m.source_run_id == runs[number].info.run_id]
    page = (tmp_path / "report" / "report.md").read_text()
    assert f"Weights (`--keep-weights front`): kept for {len(keep)} network(s)" in page
    assert f"deleted for {len(networks - keep)} network(s)" in page


def test_keep_weights_none_writes_no_weights(tmp_path):
    Sweep("quick", storage=f"sqlite:///{tmp_path}/optuna.db", tracking_uri=None, weights_dir=tmp_path / "weights",
          trials=2, keep_weights="none").run()
    assert not list(tmp_path.rglob("model.pt"))


def test_weights_decisions_come_in_trial_order_not_in_the_order_of_their_names():
    study = optuna.create_study()
    for number in (0, 14, 2, 5, 10):
        study.set_user_attr(f"weights:{number}", {"kept": True})
    assert list(weights_decisions(study)) == [0, 2, 5, 10, 14]
