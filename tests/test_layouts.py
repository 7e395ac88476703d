"""Public datasets as downloaded: each fixture follows its set's folder names, file names, image
sizes and encodings (a few samples each), so that detection meets what users unpack."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bench.data.dataset import inspect_folder, load_folder
from bench.data.images import IGNORE
from bench.data.protocol import Protocol
from bench.data.source import data_source
from bench.core.errors import BenchError
from needs import required

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
rng = np.random.default_rng(0)


def save(path: Path, array: np.ndarray, **options) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array.astype(np.uint8)).save(path, **options)
    return path


def photo(height: int, width: int, channels: int = 3) -> np.ndarray:
    shape = (height, width, channels) if channels > 1 else (height, width)
    return rng.integers(0, 256, shape)


def blob(height: int, width: int, value: int = 255, where: float = 0.3) -> np.ndarray:
    yy, xx = np.mgrid[:height, :width]
    inside = (yy - height * where) ** 2 / (height / 5) ** 2 + (xx - width / 2) ** 2 / (width / 6) ** 2 <= 1
    return np.where(inside, value, 0)


def drive(root: Path) -> Path:
    """DRIVE: 565 x 584 RGB TIFF, 1st_manual GIF vessels 0/255, FOV masks GIF 0/255."""
    for n in (21, 22, 23):
        save(root / "training" / "images" / f"{n}_training.tif", photo(584, 565))
        save(root / "training" / "1st_manual" / f"{n}_manual1.gif", blob(584, 565))
        fov = np.zeros((584, 565))
        yy, xx = np.mgrid[:584, :565]
        fov[(yy - 292) ** 2 + (xx - 282) ** 2 <= 270 ** 2] = 255
        save(root / "training" / "mask" / f"{n}_training_mask.gif", fov)
    return root


def kvasir(root: Path) -> Path:
    """Kvasir-SEG: images/ and masks/ JPEGs of equal names; masks RGB with JPEG noise."""
    for n, (h, w) in zip(("cju0qkwl35piu0993l0dewei2", "cju0qoxqj9q6s0835b43399p4", "cju0roawvklrq0799vmjorwfv"),
                         ((529, 622), (576, 720), (1024, 1280))):
        save(root / "Kvasir-SEG" / "images" / f"{n}.jpg", photo(h, w), quality=90)
        mask = np.repeat(blob(h, w)[..., None], 3, axis=2)
        save(root / "Kvasir-SEG" / "masks" / f"{n}.jpg", mask, quality=75)
    return root / "Kvasir-SEG"


def isic2018(root: Path) -> Path:
    """ISIC 2018 task 1: *_Input/ISIC_*.jpg and *_GroundTruth/ISIC_*_segmentation.png (0/255)."""
    for n, (h, w) in zip(("ISIC_0000000", "ISIC_0000001", "ISIC_0000003"), ((767, 1022), (767, 1022), (576, 767))):
        save(root / "ISIC2018_Task1-2_Training_Input" / f"{n}.jpg", photo(h, w))
        save(root / "ISIC2018_Task1_Training_GroundTruth" / f"{n}_segmentation.png", blob(h, w))
    (root / "ISIC2018_Task1-2_Training_Input" / "LICENSE.txt").write_text("CC-BY-NC")
    return root


def glas(root: Path) -> Path:
    """GlaS: train_1.bmp + train_1_anno.bmp in one folder; masks hold instance ids 0..N."""
    for n, (h, w) in zip(("train_1", "train_2", "testA_1"), ((522, 775), (522, 775), (453, 589))):
        save(root / "Warwick QU Dataset (Released 2016_07_08)" / f"{n}.bmp", photo(h, w))
        glands = np.zeros((h, w))
        for k in range(1, 41):  # 40 glands: more ids than any class-index mask holds
            y, x = rng.integers(20, h - 20), rng.integers(20, w - 20)
            glands[y - 8:y + 8, x - 8:x + 8] = k
        save(root / "Warwick QU Dataset (Released 2016_07_08)" / f"{n}_anno.bmp", glands)
    (root / "Warwick QU Dataset (Released 2016_07_08)" / "Grade.csv").write_text("name,grade\n")
    return root / "Warwick QU Dataset (Released 2016_07_08)"


def busi(root: Path) -> Path:
    """BUSI: benign/, malignant/, normal/ with 'benign (1).png' + 'benign (1)_mask.png' (+ _mask_1)."""
    base = root / "Dataset_BUSI_with_GT"
    for kind, (h, w) in (("benign", (471, 562)), ("malignant", (552, 580)), ("normal", (449, 499))):
        for n in (1, 2):
            save(base / kind / f"{kind} ({n}).png", photo(h, w))
            save(base / kind / f"{kind} ({n})_mask.png", blob(h, w) if kind != "normal" else np.zeros((h, w)))
    second = np.zeros((471, 562))
    second[400:440, 50:100] = 255  # a second lesion, in its own file
    save(base / "benign" / "benign (1)_mask_1.png", second)
    return base


def monuseg(root: Path) -> Path:
    """MoNuSeg as UCTransNet ships it: Train_Folder/img/*.tif + Train_Folder/labelcol/*.png."""
    for n in ("TCGA-18-5592-01Z-00-DX1", "TCGA-21-5784-01Z-00-DX1", "TCGA-2Z-A9J9-01A-01-TS1"):
        save(root / "MoNuSeg" / "Train_Folder" / "img" / f"{n}.tif", photo(1000, 1000))
        save(root / "MoNuSeg" / "Train_Folder" / "labelcol" / f"{n}.png", blob(1000, 1000))
    save(root / "MoNuSeg" / "Val_Folder" / "img" / "TCGA-AR-A1AK-01Z-00-DX1.tif", photo(1000, 1000))
    return root / "MoNuSeg"


@pytest.mark.parametrize("build, layout, pairs", [
    (drive, "drive", 3), (kvasir, "images_masks", 3), (isic2018, "isic2018", 3), (glas, "glas", 3),
    (busi, "busi", 6), (monuseg, "monuseg", 3)])
def test_public_sets_are_recognised_as_downloaded(tmp_path, build, layout, pairs):
    report = inspect_folder(build(tmp_path))
    assert (report["layout"], report["pairs"], report["classes"]) == (layout, pairs, 2)
    assert 0 < report["class_balance"][1] < 0.5


def test_drive_field_of_view_masks_are_ignored_regions(tmp_path):
    report = inspect_folder(drive(tmp_path))
    assert report["region_masks"] == 3 and 0.15 < report["ignored"] < 0.45
    data = load_folder(tmp_path, Protocol(patch=64))
    label = data.labels[0]
    assert tuple(label.shape) == (584, 565) and tuple(data.images[0].shape) == (3, 584, 565)  # native
    assert label[0, 0] == IGNORE and label[292, 282] != IGNORE and set(label.unique().tolist()) == {0, 1, IGNORE}
    assert any("left out of loss and metrics" in note for note in data.notes)


def test_jpeg_masks_are_binary_file_by_file(tmp_path):
    root = kvasir(tmp_path)
    assert set(np.unique(np.array(Image.open(next((root / "masks").iterdir())))).tolist()) - {0, 255}  # noisy
    report = inspect_folder(root)
    assert report["mask_files"] == {"binary255": 3} and "thresholded at > 127" in " ".join(report["notes"])
    data = load_folder(root, Protocol(size=64))
    assert set(torch.cat([label.flatten() for label in data.labels]).unique().tolist()) == {0, 1}


def test_glas_instances_become_one_foreground(tmp_path):
    data = load_folder(glas(tmp_path), Protocol(size=64))
    assert data.classes == 2 and "instance ids" in data.encoding
    assert max(int(label.max()) for label in data.labels) == 1


def test_busi_merges_a_second_mask_file_and_keeps_normal_images(tmp_path):
    data = load_folder(busi(tmp_path), Protocol(patch=64))
    first = data.labels[data.stems.index("benign (1)")]
    assert first[420, 70] == 1 and first[471 * 3 // 10, 281] == 1  # both lesions
    assert int(data.labels[data.stems.index("normal (1)")].sum()) == 0
    assert len(data.stems) == 6 and len(data.sizes()) == 3  # native sizes kept


def test_isic_and_monuseg_under_their_download_folders(tmp_path):
    assert inspect_folder(isic2018(tmp_path / "isic"))["folders"]["mask_pattern"] == "{stem}_segmentation"
    report = inspect_folder(monuseg(tmp_path / "monuseg"))
    assert report["root"].endswith("Train_Folder") and report["sizes"] == {"1000x1000": 3}


def test_any_other_layout_by_folders_and_patterns(tmp_path, run_cli):
    for n in ("a", "b", "c"):
        save(tmp_path / "set" / "raw" / f"{n}_img.png", photo(40, 50))
        save(tmp_path / "set" / "gt" / f"{n}_label.png", blob(40, 50))
        save(tmp_path / "set" / "roi" / f"{n}_roi.png", np.full((40, 50), 255))
    source = data_source(str(tmp_path / "set"), images="raw", masks="gt", image_pattern="{stem}_img",
                         mask_pattern="{stem}_label", ignore="roi", ignore_pattern="{stem}_roi")
    report = inspect_folder(Path(source.folder), source.layout)
    assert (report["layout"], report["pairs"], report["region_masks"]) == ("explicit", 3, 3)
    result = run_cli("data", "inspect", str(tmp_path / "set"), "--images", "raw", "--masks", "gt",
                     "--image-pattern", "{stem}_img", "--mask-pattern", "{stem}_label", "--format", "json")
    assert result.exit_code == 0 and '"pairs": 3' in result.output
    wrong = run_cli("data", "inspect", str(tmp_path / "set"), "--images", "raw", "--masks", "gt")
    assert wrong.exit_code == 2 and "--mask-pattern" in wrong.output and "have no mask named '{stem}'" in wrong.output
    no_stem = run_cli("data", "inspect", str(tmp_path / "set"), "--images", "raw", "--masks", "gt",
                      "--mask-pattern", "label")
    assert no_stem.exit_code == 2 and "must contain {stem} once" in no_stem.output
    alone = run_cli("data", "inspect", str(tmp_path / "set"), "--images", "raw")
    assert alone.exit_code == 2 and "--images and --masks go together" in alone.output


def test_a_noise_mask_is_refused_by_name(tmp_path):
    root = kvasir(tmp_path)
    save(root / "masks" / "cju0qoxqj9q6s0835b43399p4.jpg", photo(576, 720))
    with pytest.raises(BenchError, match=r"cju0qoxqj9q6s0835b43399p4.jpg: mask values .* are neither binary"):
        inspect_folder(root)


def test_mixed_encodings_are_refused_naming_both_files(tmp_path):
    for n, mask in (("a", blob(20, 20)), ("b", blob(20, 20, value=2)), ("c", blob(20, 20))):
        save(tmp_path / "images" / f"{n}.png", photo(20, 20))
        save(tmp_path / "masks" / f"{n}.png", mask)
    with pytest.raises(BenchError, match=r"masks mix encodings: .*a.png is binary stored 0/255, but .*b.png"):
        load_folder(tmp_path, Protocol(size=16))


@pytest.mark.skipif(not SHARED.is_dir() and not required("SHARED_DATA"),
                    reason="../shared/data is not beside the checkout (BENCH_REQUIRE_SHARED_DATA=1 fails instead)")
def test_four_unmodified_dsb_pairs_are_binary(tmp_path):
    """Four pairs with interpolated values, copied as they are: the set's other masks cannot
    change what these are."""
    masks = sorted((SHARED / "dsb2018_96" / "masks" / "0").iterdir())
    chosen = [m for m in masks if len(np.unique(np.array(Image.open(m)))) > 2][:4]
    for mask in chosen:
        shutil.copy(SHARED / "dsb2018_96" / "images" / mask.name, (tmp_path / "images").mkdir(exist_ok=True)
                    or tmp_path / "images" / mask.name)
        (tmp_path / "masks" / "0").mkdir(parents=True, exist_ok=True)
        shutil.copy(mask, tmp_path / "masks" / "0" / mask.name)
    report = inspect_folder(tmp_path)
    assert report["pairs"] == 4 and report["mask_files"] == {"binary255": 4} and report["classes"] == 2


def test_inspect_refuses_a_mask_of_another_size_and_a_symbolic_link_that_leads_nowhere(tmp_path):
    """`bench data inspect` says what `bench train` would refuse, and drops no file silently."""
    sized = tmp_path / "sized"
    for i in range(3):
        save(sized / "images" / f"{i}.png", np.zeros((32, 32), np.uint8))
        save(sized / "masks" / f"{i}.png", np.zeros((16, 16) if i == 1 else (32, 32), np.uint8))
    with pytest.raises(BenchError, match=r"1.png is 32x32 but its mask .*1.png is 16x16"):
        inspect_folder(sized)
    looped = tmp_path / "looped"
    for i in range(3):
        save(looped / "images" / f"{i}.png", np.zeros((32, 32), np.uint8))
        save(looped / "masks" / f"{i}.png", np.zeros((32, 32), np.uint8))
    (looped / "images" / "3.png").symlink_to(looped / "images" / "3.png")  # a loop
    with pytest.raises(BenchError, match=r"3.png is a symbolic link that leads nowhere"):
        inspect_folder(looped)
