"""Dataset layouts, mask encodings, the synthetic set, splits, augmentation, and bad input."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bench.data.dataset import inspect_folder, load_folder as load_with, load_synthetic
from bench.data.protocol import Protocol
from bench.data.split import load_split, make_split
from bench.data.transforms import augment
from bench.core.errors import BenchError
from needs import required

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def load_folder(root: Path, size: int | None = None, **layout):
    """The folder resized to ``size`` (or at its own size), images and labels stacked."""
    return load_with(root, Protocol(size=size), **layout)


def stacked(data) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.stack(data.images), torch.stack(data.labels)


def save(path: Path, array: np.ndarray, mode: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array.astype(np.uint8), mode).save(path)
    return path


def square_mask(size: int = 16, value: int = 255) -> np.ndarray:
    mask = np.zeros((size, size), np.uint8)
    mask[4:10, 5:12] = value
    return mask


def make_folder(root: Path, layout: str, n: int = 4, value: int = 255) -> Path:
    rng = np.random.default_rng(0)
    for i in range(n):
        image = rng.integers(0, 255, (16, 16, 3))
        if layout == "image_label":
            save(root / "image" / f"{i}.png", image[..., 0])
            save(root / "label" / f"{i}.png", square_mask(value=value))
        elif layout == "masks_per_class":
            save(root / "images" / f"s{i}.png", image)
            save(root / "masks" / "0" / f"s{i}.png", square_mask(value=value))
        else:
            save(root / "images" / f"s{i}.jpg", image)
            save(root / "masks" / f"s{i}.png", square_mask(value=value))
    return root


@pytest.mark.parametrize("layout", ["image_label", "masks_per_class", "images_masks"])
def test_layouts_are_detected_and_loaded(tmp_path, layout):
    data = load_folder(make_folder(tmp_path, layout), size=8)
    images, labels = stacked(data)
    assert images.shape == (4, 3, 8, 8) and images.dtype == torch.uint8 and labels.shape == (4, 8, 8)
    assert data.classes == 2 and set(labels.unique().tolist()) == {0, 1}
    assert inspect_folder(tmp_path)["layout"] == layout


def test_masks_stored_as_0_1_and_as_class_indices(tmp_path):
    assert load_folder(make_folder(tmp_path / "a", "images_masks", value=1)).classes == 2
    root = make_folder(tmp_path / "b", "images_masks", value=2)
    save(root / "masks" / "s0.png", np.where(square_mask() > 0, 1, 0))
    data = load_folder(root)
    assert data.classes == 3 and set(stacked(data)[1].unique().tolist()) == {0, 1, 2}


def test_palette_masks_give_their_indices(tmp_path):
    root = make_folder(tmp_path, "images_masks", value=2)
    palette = Image.fromarray(square_mask(value=2), "P")
    palette.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * 759)
    palette.save(root / "masks" / "s1.png")
    assert load_folder(root).classes == 3


def test_one_mask_folder_per_class(tmp_path):
    root = make_folder(tmp_path, "masks_per_class")
    for i in range(4):
        second = np.zeros((16, 16), np.uint8)
        second[12:, 12:] = 255
        save(root / "masks" / "1" / f"s{i}.png", second)
    data = load_folder(root)
    assert data.classes == 3 and (stacked(data)[1] == 2).sum() == 4 * 16


def test_resized_binary_masks_are_thresholded(tmp_path):
    root = make_folder(tmp_path, "images_masks")
    soft = square_mask().astype(float)
    soft[4, 5:12] = 100  # interpolation residue: below the threshold
    soft[5, 5:12] = 200
    save(root / "masks" / "s0.png", soft)
    for i in range(1, 4):  # many distinct intermediate values, as a resize leaves them
        values = square_mask().astype(int)
        values[12, :] = np.arange(16) * 7 + i
        save(root / "masks" / f"s{i}.png", values)
    data = load_folder(root)
    assert data.labels[0][4].sum() == 0 and data.labels[0][5].sum() == 7
    assert "thresholded at > 127" in " ".join(inspect_folder(root)["notes"])


@pytest.mark.skipif(not SHARED.is_dir() and not required("SHARED_DATA"),
                    reason="../shared/data is not beside the checkout (BENCH_REQUIRE_SHARED_DATA=1 fails instead)")
def test_the_shared_datasets_load_unchanged():
    isbi = inspect_folder(SHARED / "isbi2012")
    assert (isbi["layout"], isbi["pairs"], isbi["classes"]) == ("image_label", 30, 2)
    assert isbi["class_balance"][1] == pytest.approx(0.78, abs=0.01)
    dsb = load_folder(SHARED / "dsb2018_96", size=32)
    assert stacked(dsb)[0].shape == (670, 3, 32, 32) and dsb.classes == 2


# ------------------------------------------------------------------------------- bad input


def test_empty_folder(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    with pytest.raises(BenchError, match="no images"):
        load_folder(tmp_path)
    with pytest.raises(BenchError, match="no known dataset layout"):
        load_folder(tmp_path / "images")


def test_images_without_masks_and_masks_without_images_are_named(tmp_path):
    root = make_folder(tmp_path, "images_masks")
    (root / "masks" / "s1.png").unlink()
    save(root / "masks" / "orphan.png", square_mask())
    with pytest.raises(BenchError) as info:
        load_folder(root)
    assert "1 images in" in str(info.value) and "(s1)" in str(info.value)
    assert "1 masks in" in str(info.value) and "(orphan)" in str(info.value)


def test_image_and_mask_sizes_differ(tmp_path):
    root = make_folder(tmp_path, "images_masks")
    save(root / "masks" / "s2.png", np.zeros((8, 8)))
    with pytest.raises(BenchError, match=r"s2.jpg is 16x16 but its mask .*s2.png is 8x8"):
        load_folder(root)


def test_truncated_image(tmp_path):
    root = make_folder(tmp_path, "images_masks")
    path = root / "images" / "s3.jpg"
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(BenchError, match=r"s3.jpg: cannot read this image"):
        load_folder(root)


def test_mask_values_of_no_known_encoding(tmp_path):
    root = make_folder(tmp_path, "images_masks", value=100)
    with pytest.raises(BenchError, match=r"s\d.png: mask values \{0, 100\} \(2 distinct\) are neither binary"):
        load_folder(root)


def test_split_that_no_longer_matches_the_folder(tmp_path):
    data = load_folder(make_folder(tmp_path / "d", "images_masks", n=6))
    split = make_split(data.stems, data.source, data.content_hash, seed=3)
    split.save(tmp_path / "split.json")
    (tmp_path / "d" / "images" / f"{split.test[0]}.jpg").unlink()
    (tmp_path / "d" / "masks" / f"{split.test[0]}.png").unlink()
    again = load_folder(tmp_path / "d")
    with pytest.raises(BenchError, match=rf"1 samples of the split are no longer in .*\({split.test[0]}\)"):
        load_split(tmp_path / "split.json", again.stems, again.content_hash)


# ------------------------------------------------------------------ split, synthetic, augmentation


def test_split_is_seeded_complete_and_round_trips(tmp_path):
    stems = [f"x{i}" for i in range(20)]
    split = make_split(stems, "src", "h", seed=1)
    assert (len(split.train), len(split.val), len(split.test)) == (12, 4, 4)
    assert sorted(split.train + split.val + split.test) == sorted(stems)
    assert make_split(list(reversed(stems)), "src", "h", seed=1) == split
    assert make_split(stems, "src", "h", seed=2).hash != split.hash
    split.save(tmp_path / "s.json")
    assert load_split(tmp_path / "s.json", stems, "h") == split
    assert json.loads((tmp_path / "s.json").read_text())["hash"] == split.hash


def test_synthetic_set_is_seeded_and_not_separable_by_intensity():
    a, b = load_synthetic(12, 32, seed=5), load_synthetic(12, 32, seed=5)
    (a_images, a_labels), (b_images, b_labels) = stacked(a), stacked(b)
    assert torch.equal(a_images, b_images) and torch.equal(a_labels, b_labels)
    assert not torch.equal(a_images, stacked(load_synthetic(12, 32, seed=6))[0])
    gray, fg = a_images.float().mean(1) / 255, a_labels > 0
    best = max(
        float(2 * ((gray > t) & fg).sum() / ((gray > t).sum() + fg.sum()))
        for t in torch.linspace(0.2, 0.9, 36)
    )
    assert 0.05 < fg.float().mean() < 0.5 and best < 0.8  # a global threshold does not solve it


def test_augmentation_moves_images_and_labels_together():
    labels = stacked(load_synthetic(8, 32, seed=0))[1].long()
    images = labels[:, None].float().expand(-1, 3, -1, -1).clone()  # the image is its label
    aug_images, aug_labels = augment(images, labels, torch.Generator().manual_seed(0))
    agreement = ((aug_images[:, 0] > 0.5).long() == aug_labels).float().mean()
    assert agreement > 0.97 and not torch.equal(aug_labels, labels)


@pytest.mark.parametrize("height, width", [(24, 56), (56, 24), (37, 50)])
def test_augmentation_of_non_square_batches_keeps_the_shape_and_image_and_mask_aligned(height, width):
    """Property: over many draws, the augmented image still is its augmented label."""
    yy, xx = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    labels = torch.stack([(((yy - height * f) / (height / 4)) ** 2 + ((xx - width * (1 - f)) / (width / 5)) ** 2 <= 1)
                          for f in (0.3, 0.4, 0.5, 0.6)]).long()
    images = labels[:, None].float().expand(-1, 3, -1, -1).clone()
    for seed in range(25):
        aug_images, aug_labels = augment(images, labels, torch.Generator().manual_seed(seed))
        assert aug_images.shape == images.shape and aug_labels.shape == labels.shape
        agreement = ((aug_images[:, 0] > aug_images[:, 0].mean((1, 2), keepdim=True)).long() == aug_labels)
        assert agreement.float().mean() > 0.97, seed


def test_the_affine_is_rigid_in_pixels_on_a_non_square_batch():
    """A disk stays a disk: its extent along both axes grows alike under rotation, whatever the aspect."""
    height, width = 40, 120
    yy, xx = torch.meshgrid(torch.arange(height) - height / 2 + 0.5, torch.arange(width) - width / 2 + 0.5,
                            indexing="ij")
    labels = ((yy ** 2 + xx ** 2) <= 12 ** 2).long()[None].repeat(64, 1, 1)
    images = labels[:, None].float().expand(-1, 3, -1, -1).clone()
    _, out = augment(images, labels, torch.Generator().manual_seed(0))
    rows = out.any(2).sum(1).float()  # extent along H
    cols = out.any(1).sum(1).float()  # extent along W
    assert (rows - cols).abs().max() <= 3  # squeezed by the aspect (120 / 40) it would differ by far more
