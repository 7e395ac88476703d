"""Official splits as downloads ship them (DRIVE, MoNuSeg, ISIC 2018, train/ + test/ folders), and
the random split kept for sets that ship none. Fixtures are small and not square (60 x 44)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.core.errors import BenchError
from bench.data.dataset import inspect_folder, load_folder
from bench.data.protocol import Protocol
from bench.data.source import data_source
from bench.data.split import make_split

H, W = 44, 60
rng = np.random.default_rng(0)


def save(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array.astype(np.uint8)).save(path)


def photo() -> np.ndarray:
    return rng.integers(0, 256, (H, W, 3))


def blob() -> np.ndarray:
    mask = np.zeros((H, W))
    mask[10:30, 15:40] = 255
    return mask


def drive(root: Path) -> Path:
    """DRIVE: training/ (21..) and test/ (01..), each with images, 1st_manual and FOV masks."""
    for folder, numbers, word in (("training", (21, 22, 23, 24, 25), "training"), ("test", (1, 2, 3), "test")):
        for n in numbers:
            save(root / folder / "images" / f"{n:02d}_{word}.tif", photo())
            save(root / folder / "1st_manual" / f"{n:02d}_manual1.gif", blob())
            fov = np.zeros((H, W))
            fov[2:-2, 2:-2] = 255
            save(root / folder / "mask" / f"{n:02d}_{word}_mask.gif", fov)
    return root


def monuseg(root: Path) -> Path:
    """MoNuSeg as UCTransNet ships it: Train_Folder, Val_Folder, Test_Folder with img/ + labelcol/."""
    for folder, count in (("Train_Folder", 4), ("Val_Folder", 2), ("Test_Folder", 3)):
        for k in range(count):
            name = f"TCGA-{folder[:2]}-{k:04d}"
            save(root / folder / "img" / f"{name}.tif", photo())
            save(root / folder / "labelcol" / f"{name}.png", blob())
    return root


def isic2018(root: Path) -> Path:
    """ISIC 2018 task 1 with its Training, Validation and Test folders side by side."""
    for word, ids in (("Training", range(0, 5)), ("Validation", range(100, 102)), ("Test", range(200, 203))):
        for k in ids:
            save(root / f"ISIC2018_Task1-2_{word}_Input" / f"ISIC_{k:07d}.jpg", photo())
            save(root / f"ISIC2018_Task1_{word}_GroundTruth" / f"ISIC_{k:07d}_segmentation.png", blob())
    return root


def numbered(root: Path) -> Path:
    """train/ and test/ folders of ISBI-style image/ + label/ pairs, numbered from 0 in each."""
    for folder, count in (("train", 5), ("test", 2)):
        for k in range(count):
            save(root / folder / "image" / f"{k}.png", photo())
            save(root / folder / "label" / f"{k}.png", blob())
    return root


@pytest.mark.parametrize("build, train, val, test, val_official", [
    (drive, 4, 1, 3, False), (monuseg, 4, 2, 3, True), (isic2018, 5, 2, 3, True), (numbered, 4, 1, 2, False)])
def test_a_download_with_an_official_split_keeps_its_test_set(tmp_path, build, train, val, test, val_official):
    root = build(tmp_path / "set")
    data = load_folder(root, Protocol(size=32))
    split = data_source(str(root)).split(data, seed=0)
    assert (len(split.train), len(split.val), len(split.test)) == (train, val, test)
    assert split.mode == "official" and split.describe() == f"official test split ({test} images)"
    assert {data.subsets[s] for s in split.test} == {"test"}
    assert {data.subsets[s] for s in split.val} == {"val" if val_official else "train"}
    assert not set(split.train) & set(split.val) | set(split.train) & set(split.test)


def test_validation_drawn_from_official_training_is_seeded_and_the_test_set_never_moves(tmp_path):
    root = drive(tmp_path / "DRIVE")
    data = load_folder(root, Protocol(size=32))
    source = data_source(str(root))
    splits = [source.split(data, seed) for seed in range(6)]
    assert source.split(data, 0) == splits[0]
    assert len({s.val for s in splits}) > 1 and len({s.test for s in splits}) == 1
    assert splits[0].test == ("01", "02", "03")


def test_random_mode_keeps_the_former_split_of_every_image(tmp_path):
    root = drive(tmp_path / "DRIVE")
    data = load_folder(root, Protocol(size=32))
    split = data_source(str(root), split_mode="random").split(data, seed=3)
    assert split == make_split(data.stems, data.source, data.content_hash, 3)
    assert split.mode == "random" and len(split.test) == 2 and "random 60/20/20 split, seed 3" in split.describe()


def test_official_mode_on_a_set_that_ships_no_split_says_so(tmp_path):
    root = numbered(tmp_path / "set") / "train"
    data = load_folder(root, Protocol(size=32))
    assert data.subsets is None
    assert data_source(str(root)).split(data, 0).mode == "random"
    with pytest.raises(BenchError, match="ships no official split.*--split-mode random"):
        data_source(str(root), split_mode="official").split(data, 0)
    with pytest.raises(BenchError, match="--split-mode folds: unknown.*official, random, kfold"):
        data_source(str(root), split_mode="folds")
    with pytest.raises(BenchError, match="several splits: give --folds K"):
        data_source(str(root), split_mode="kfold").split(data, 0)


def test_stems_that_recur_across_subsets_are_told_apart(tmp_path):
    data = load_folder(numbered(tmp_path / "set"), Protocol(size=32))
    assert sorted(data.stems) == ["test-0", "test-1", "train-0", "train-1", "train-2", "train-3", "train-4"]


def test_inspect_shows_each_split_and_region_masks_as_information(tmp_path, run_cli):
    report = inspect_folder(drive(tmp_path / "DRIVE"))
    assert report["splits"] == {"train": 5, "test": 3} and report["pairs"] == 8
    result = run_cli("data", "inspect", str(tmp_path / "DRIVE"))
    text = " ".join(result.output.split())
    assert result.exit_code == 0 and "official: train 5 (training/), test 3 (test/)" in text
    assert "problems" not in text and "{'" not in text  # rows in words, not a Python dict


def test_bench_train_scores_on_the_official_test_set_and_says_so_everywhere(tmp_path, run_cli):
    root, out = drive(tmp_path / "DRIVE"), tmp_path / "run"
    store = f"sqlite:///{tmp_path}/mlflow.db"
    result = run_cli("train", "tinyunet", "--set", "width_multiplier=0.25", "--data", str(root), "--size", "32",
                     "--epochs", "1", "--batch", "2", "--out", str(out), "--tracking-uri", store)
    assert result.exit_code == 0, result.output
    assert "official test split (3 images)" in " ".join(result.output.split())
    record = json.loads((out / "metrics.json").read_text())
    assert record["split"]["description"] == "official test split (3 images)" and record["split"]["sizes"] == [4, 1, 3]
    assert json.loads((out / "split.json").read_text())["mode"] == "official"
    import mlflow

    client = mlflow.MlflowClient(store)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert runs and all(r.data.params["data.test_split"] == "official test split (3 images)" for r in runs)
    inputs = [i for r in runs for i in r.inputs.dataset_inputs]
    assert len(inputs) == len(runs) and {i.dataset.name for i in inputs} == {"DRIVE"}
    split = json.loads((out / "split.json").read_text())
    assert {i.dataset.digest for i in inputs} == {split["hash"][:12]}
    assert json.loads(inputs[0].dataset.profile)["split"] == "official test split (3 images)"


def test_a_space_names_its_split_mode_and_a_bad_one_is_refused_at_its_key(write_yaml):
    from bench.core.errors import ConfigError
    from bench.data.source import source_from_space
    from bench.search.space import load_space

    text = """
        architecture: tinyunet
        vary: {{width_multiplier: {{choices: [0.25, 0.5]}}}}
        objectives: {{val_dice: maximize}}
        data: {{source: synthetic, size: 32, split_mode: {mode}}}
    """
    space = load_space(str(write_yaml("random.yaml", text.format(mode="random"))))
    assert source_from_space(space.data).split_mode == "random"
    with pytest.raises(ConfigError, match="data.split_mode.*official, random"):
        load_space(str(write_yaml("bad.yaml", text.format(mode="folds"))))


# ------------------------------------------------------------------------------------- k folds
def test_folds_are_disjoint_cover_every_image_once_and_follow_the_seed():
    from bench.data.split import kfold_splits

    stems = [f"{k:03d}" for k in range(23)]
    folds = kfold_splits(stems, "set", "hash", folds=5, seed=7)
    tests = [set(s.test) for s in folds]
    assert sorted(s for t in tests for s in t) == stems  # every image tested exactly once
    assert {len(t) for t in tests} <= {4, 5}
    for split in folds:
        assert not set(split.train) & set(split.val) and not (set(split.train) | set(split.val)) & set(split.test)
        assert len(split.train) + len(split.val) + len(split.test) == 23 and split.mode == "kfold"
    assert kfold_splits(stems, "set", "hash", folds=5, seed=7) == folds
    assert [s.test for s in kfold_splits(stems, "set", "hash", folds=5, seed=8)] != [s.test for s in folds]
    assert folds[1].describe() == f"fold 2 of 5, seed 7 ({len(folds[1].test)} test images)"


def test_too_few_images_or_folds_are_refused_with_the_fix():
    from bench.data.split import kfold_splits

    with pytest.raises(BenchError, match="7 images are too few for 5 folds.*--folds 3"):
        kfold_splits([str(k) for k in range(7)], "set", "hash", folds=5)
    with pytest.raises(BenchError, match="at least 2 folds"):
        kfold_splits([str(k) for k in range(7)], "set", "hash", folds=1)
    with pytest.raises(BenchError, match="--folds 3 and --split-mode random exclude each other"):
        data_source(None, folds=3, split_mode="random")


def test_a_cross_validated_comparison_scores_every_image_once_per_fold_and_pooled(tmp_path):
    import mlflow

    from bench.arch.config import resolve_architecture
    from bench.run.compare import compare
    from bench.training.recipe import get_recipe

    archs = [resolve_architecture("tinyunet", ["width_multiplier=0.25"]),
             resolve_architecture("tinyunet", ["width_multiplier=0.25", "encoder.block.N=2", "name=tinyunet_n2"])]
    store, root = f"sqlite:///{tmp_path}/mlflow.db", tmp_path / "set"
    for k in range(14):
        save(root / "image" / f"{k}.png", photo())
        save(root / "label" / f"{k}.png", blob())
    result = compare(archs, data_source(str(root), size=32, folds=3), recipe=get_recipe("default", epochs=1, batch=4),
                     out_dir=tmp_path / "cmp", max_seconds=0.2, tracking_uri=store)
    folds = json.loads((tmp_path / "cmp" / "comparison.json").read_text())["folds"]
    tested = [s for fold in folds for s in fold["test"]]
    assert len(folds) == 3 and sorted(tested) == sorted(result.dataset.stems)  # 14 images, each once
    assert result.versus[1].n == 14 and len(result.networks[1].seed_scores()[0]) == 14
    table = result.folds
    assert list(table.fold) == [1, 1, 2, 2, 3, 3, "pooled", "pooled"]
    assert table[table.fold == "pooled"].test_images.tolist() == [14, 14]
    assert table[table.fold != "pooled"].groupby("network").test_images.sum().tolist() == [14, 14]
    assert (tmp_path / "cmp" / "folds.csv").exists() and "3-fold cross-validation" in result.caption
    client = mlflow.MlflowClient(store)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    fold_runs = {r.info.run_id for r in runs if r.data.tags["bench.role"] == "fold"}
    for fold_folder in ("fold_1", "fold_2", "fold_3"):  # each fold's weights moved into its run, once
        record = json.loads((tmp_path / "cmp" / archs[0].name / fold_folder / "seed_0" / "metrics.json").read_text())
        assert record["model"].startswith("models:/")
        assert not (tmp_path / "cmp" / archs[0].name / fold_folder / "seed_0" / "model.pt").exists()
    models = client.search_logged_models([e.experiment_id for e in client.search_experiments()])
    assert sorted(m.source_run_id for m in models) == sorted(fold_runs)
    roles = sorted(r.data.tags["bench.role"] for r in runs)
    assert roles == ["comparison"] + ["fold"] * 6 + ["network"] * 2
    networks = {r.info.run_id for r in runs if r.data.tags["bench.role"] == "network"}
    assert {r.data.tags["mlflow.parentRunId"] for r in runs if r.data.tags["bench.role"] == "fold"} == networks


def test_bench_train_with_folds_trains_once_per_fold_and_pools(tmp_path, run_cli):
    root = numbered(tmp_path / "set") / "train"  # 5 images, no official split
    result = run_cli("train", "tinyunet", "--set", "width_multiplier=0.25", "--data", str(root), "--size", "32",
                     "--epochs", "1", "--batch", "2", "--folds", "2", "--no-tracking", "--out", str(tmp_path / "run"))
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "fold 1 of 2" in text and "fold 2 of 2" in text and "2-fold cross-validation, seed 0 (5 images" in text
    tested = [json.loads((tmp_path / "run" / f"fold_{k}" / "split.json").read_text())["test"] for k in (1, 2)]
    assert sorted(tested[0] + tested[1]) == ["0", "1", "2", "3", "4"]
