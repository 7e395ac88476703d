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
    with pytest.raises(BenchError, match="--split-mode kfold: unknown"):
        data_source(str(root), split_mode="kfold")


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
