"""Training end to end on small synthetic data: determinism, learning, failures, checkpoints,
and the train / evaluate / compare commands."""
from __future__ import annotations

import json
import re

import pandas as pd
import pytest
import torch

from bench.arch.assemble import build_model
from bench.arch.config import resolve_architecture
from bench.data.dataset import load_synthetic
from bench.data.split import make_split
from bench.training.recipe import get_recipe
from bench.training.loop import TrainingDiverged, evaluate, train_model


def small_split(count: int = 30, size: int = 32):
    data = load_synthetic(count, size, seed=0)
    split = make_split(data.stems, data.source, data.content_hash, seed=0)
    return data.subset(list(split.train)), data.subset(list(split.val)), data.subset(list(split.test))


def fit(epochs: int, **recipe):
    train, val, test = small_split()
    model = build_model(resolve_architecture("tinyunet", ["width_multiplier=0.5"]), seed=0)
    result = train_model(model, train, val, get_recipe("default", epochs=epochs, **recipe), 2)
    return result, evaluate(model, test, 2).summary()


def test_same_seed_same_initial_weights():
    arch = resolve_architecture("tinyunet")
    a, b = build_model(arch, seed=3).state_dict(), build_model(arch, seed=3).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(build_model(arch, seed=4).head.weight, a["head.weight"])


def test_same_seed_same_metrics_to_the_last_digit():
    first, second = fit(2), fit(2)
    without_time = lambda history: [{k: v for k, v in h.items() if not k.endswith("seconds")} for h in history]
    assert without_time(first[0].history) == without_time(second[0].history)
    assert json.dumps(first[1]) == json.dumps(second[1])  # NaN-safe, every digit


def test_synthetic_default_learns_well_above_chance_at_32px():
    result, test = fit(10, lr=3e-3)
    assert test["dice_c1"] > 0.5  # chance: predicting all background gives 0
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]


def test_diverging_loss_is_a_clear_error():
    train, val, _ = small_split()
    model = build_model(resolve_architecture("tinyunet", ["width_multiplier=0.5"]), seed=0)
    with torch.no_grad():
        next(model.parameters()).view(-1)[0] = float("inf")  # one non-finite weight: the loss becomes NaN
    with pytest.raises(TrainingDiverged, match="lower the learning rate"):
        train_model(model, train, val, get_recipe("default", epochs=1, augment=False, batch=30), 2)


def test_train_writes_checkpoint_that_evaluate_reproduces(run_cli, tmp_path):
    out = tmp_path / "run"
    result = run_cli("train", "tinyunet", "--set", "width_multiplier=0.25", "--size", "32",
                     "--epochs", "1", "--out", str(out), "--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db")
    assert result.exit_code == 0, result.output
    record = json.loads((out / "metrics.json").read_text())
    assert record["split"]["hash"] == json.loads((out / "split.json").read_text())["hash"]
    assert record["recipe"]["epochs"] == 1 and record["data"]["source"] == "synthetic"
    assert not (out / "model.pt").exists() and record["model"].startswith("models:/")  # kept once, in MLflow
    run_id = re.search(r"runs:/(\w+)/model", result.output).group(1)
    again = run_cli("evaluate", f"runs:/{run_id}/model", "--split", "recorded", "--format", "json",
                    "--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db")
    assert again.exit_code == 0, again.output
    assert json.loads(again.output[again.output.index("{"):])["dice_mean"] == pytest.approx(record["test"]["dice_mean"])


def test_class_count_that_disagrees_with_the_masks(run_cli):
    result = run_cli("train", "tinyunet", "--classes", "3", "--size", "32", "--epochs", "1", "--no-tracking")
    assert result.exit_code == 2
    assert "tinyunet has classes: 3, but the masks of synthetic have 2 classes" in result.output
    assert "Use --classes 2 (or 1, for a single sigmoid output)" in result.output


def test_compare_with_repeats_writes_mean_std_cells_a_paired_verdict_and_costs_that_match_profile(run_cli, tmp_path,
                                                                                                   monkeypatch):
    import itertools

    from bench.run import compare as compare_module

    revisions = itertools.count()  # a commit made while a compare trains is not the code that trained
    monkeypatch.setattr(compare_module, "git_revision", lambda: f"revision-{next(revisions)}")
    result = run_cli("compare", "tinyunet", "ulite", "--size", "32", "--epochs", "1", "--repeats", "2",
                     "--max-seconds", "1", "--out", str(tmp_path), "--no-tracking")
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "table.csv")
    assert list(table["Model"]) == ["tinyunet", "ulite"] and list(table["Seeds"]) == [2, 2]
    for _, row in table.iterrows():
        profile = json.loads(run_cli("profile", row["Model"], "--size", "32", "--format", "json").output)
        assert row["Params (M)"] == pytest.approx(profile["params"] / 1e6, abs=1e-6)
        assert row["FLOPs (G)"] == pytest.approx(profile["flops"] / 1e9, abs=1e-6)
    runs = {name: [json.loads((tmp_path / name / f"seed_{s}" / "metrics.json").read_text()) for s in (0, 1)]
            for name in ("tinyunet", "ulite")}
    for name, (first, second) in runs.items():  # the table's cells are the seeds' mean and std
        row = table[table["Model"] == name].iloc[0]
        dice = [100 * r["test"]["dice_mean"] for r in (first, second)]
        assert row["Dice mean (%)"] == pytest.approx(sum(dice) / 2)
        assert row["Dice mean (%) std"] == pytest.approx(abs(dice[0] - dice[1]) / 2 ** 0.5)
        assert (first["seed"], second["seed"]) == (0, 1) and first["split"]["hash"] == second["split"]["hash"]
    markdown = (tmp_path / "table.md").read_text()
    assert markdown.startswith("| Model") and " ± " in markdown and "Verdict" in markdown
    assert "\\begin{tabularx}" in (tmp_path / "table.tex").read_text()
    assert "\\begin{tabular}" in (tmp_path / "table_full.tex").read_text()
    assert table["Verdict"][0] == "reference"
    test = table.iloc[1]  # the verdict follows from its own figures, by the stated rule
    assert table["Verdict"][1] == ("not distinguishable" if test["p (Holm)"] >= 0.05 else
                                   "better" if test["Δ Dice fg"] > 0 else "worse")
    assert test["Δ CI low"] <= test["Δ Dice fg"] <= test["Δ CI high"] and 0 <= test["P(better)"] <= 1
    comparison = json.loads((tmp_path / "comparison.json").read_text())
    paired = comparison["paired"][0]
    assert paired["reference"] == "tinyunet" and paired["candidate"] == "ulite" and paired["seeds"] == 2
    assert paired["n"] + paired["dropped"] == len(runs["ulite"][0]["test_dice_fg_per_image"])
    assert f"ulite against tinyunet, paired over {paired['n']} test images" in " ".join(result.output.split())
    assert comparison["commit"] == "revision-0"
    assert ("No verdict is possible here" in " ".join(result.output.split())) == (2 / 2 ** paired["n"] >= 0.05)
    # off a terminal (80 columns) the table is whole or one entry per network: never a verdict cut or wrapped
    assert any(table["Verdict"][1] in line for line in result.output.splitlines()) and "…" not in result.output
    splits = {r["split"]["hash"] for pair in runs.values() for r in pair}
    assert len(splits) == 1  # the same split for every network and seed
    assert list(table["Latency ratio"])[0] == 1.0  # timed together, tinyunet the reference
    timed = runs["ulite"][0]["latency"]
    assert timed["reference"] == "tinyunet" and timed["protocol"]["interleaved_with"] == "tinyunet"
    assert timed["ratio"] == pytest.approx(timed["median_ms"] / table["Latency (ms)"][0], rel=1e-3)


def test_model_selection_and_the_epoch_record_use_foreground_dice_and_keep_the_all_class_figure():
    result, _ = fit(2)
    assert {"val_dice", "val_dice_all"} <= set(result.history[0])
    best = result.history[result.best_epoch - 1]
    assert result.best_val_dice == max(h["val_dice"] for h in result.history) == best["val_dice"]
    assert result.best_val_dice_all == best["val_dice_all"] and best["val_dice_all"] != best["val_dice"]


def test_a_resumed_run_tells_its_listener_every_epoch_of_its_history(tmp_path):
    """A pruner must judge a resumed trial at the rungs it passed before the stop, on the best
    Dice over its whole history, not only the epochs since the resume."""
    train, val, _ = small_split()
    recipe, checkpoint = get_recipe("default", epochs=3), tmp_path / "resume.pt"

    def stop_after_two(event, done, total, values):
        if event == "epoch" and done == 2:
            raise KeyboardInterrupt

    arch = resolve_architecture("tinyunet", ["width_multiplier=0.25"])
    with pytest.raises(KeyboardInterrupt):
        train_model(build_model(arch, seed=0), train, val, recipe, 2, stop_after_two, checkpoint=checkpoint)
    told = []
    train_model(build_model(arch, seed=0), train, val, recipe, 2,
                lambda event, done, total, values: told.append(done) if event == "epoch" else None,
                checkpoint=checkpoint)
    assert told == [1, 2, 3]


def test_checkpoints_keep_the_cuda_generator_of_the_device_they_train_on(monkeypatch):
    """Dropout on a GPU draws from the device's generator: a resumed run needs it back, on that
    device (cuda:1 here, not the current device)."""
    from bench.training.loop import restore_rng_states, rng_states

    states = {1: torch.tensor([7], dtype=torch.uint8)}
    monkeypatch.setattr(torch.cuda, "get_rng_state", lambda device: states[torch.device(device).index].clone())
    monkeypatch.setattr(torch.cuda, "set_rng_state",
                        lambda state, device: states.__setitem__(torch.device(device).index, state))
    saved = rng_states(torch.device("cuda", 1))
    assert torch.equal(saved["cuda_rng"], torch.tensor([7], dtype=torch.uint8)) and "rng" in saved
    states[1] = torch.tensor([9], dtype=torch.uint8)  # training went on
    restore_rng_states(saved, torch.device("cuda", 1))
    assert torch.equal(states[1], torch.tensor([7], dtype=torch.uint8))
    assert "cuda_rng" not in rng_states(torch.device("cpu"))
