"""Native resolution: patches, sliding windows, ignored regions, and memory."""
from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from torch import nn

from bench.arch.assemble import build_model
from bench.arch.config import resolve_architecture
from bench.data.dataset import SegmentationData
from bench.data.images import IGNORE
from bench.data.patches import random_patches
from bench.data.protocol import Protocol
from bench.training.inference import predict, sliding_window_logits
from bench.training.losses import SegmentationLoss
from bench.training.metrics import segmentation_metrics
from bench.core.errors import BenchError


def pointwise_network() -> nn.Module:
    """Fully convolutional with a receptive field of one pixel: windows cannot change its output."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 1), nn.ReLU(), nn.Conv2d(8, 2, 1)).eval()


def test_sliding_windows_equal_the_whole_image_where_they_must():
    image = torch.rand(1, 3, 70, 90)
    model = pointwise_network()
    with torch.no_grad():
        whole = model(image)
        windows = sliding_window_logits(model, image, 32, overlap=0.5, mode="constant")
    assert windows.shape == whole.shape and torch.allclose(windows, whole, atol=1e-6)


def windows_by_hand(model: nn.Module, image: torch.Tensor, window: int, overlap: float) -> torch.Tensor:
    """Sliding windows as documented, computed independently: starts every window * (1 - overlap)
    pixels, the last window flush with the border, each pixel the plain mean of the windows over it."""
    def starts(n: int) -> list[int]:
        found = list(range(0, n - window + 1, max(1, int(window * (1 - overlap)))))
        return found if found[-1] == n - window else found + [n - window]

    height, width = image.shape[2:]
    total, count = None, torch.zeros(1, 1, height, width)
    for y in starts(height):
        for x in starts(width):
            logits = model(image[:, :, y:y + window, x:x + window])
            if total is None:
                total = torch.zeros(1, logits.shape[1], height, width)
            total[:, :, y:y + window, x:x + window] += logits
            count[:, :, y:y + window, x:x + window] += 1
    return total / count


def test_sliding_windows_on_a_real_network_equal_windows_computed_by_hand():
    model = build_model(resolve_architecture("tinyunet", ["width_multiplier=0.25"]), seed=0).eval()
    image = torch.rand(1, 3, 70, 90)
    with torch.no_grad():
        ours = sliding_window_logits(model, image, 32, overlap=0.5, mode="constant")
        assert torch.allclose(ours, windows_by_hand(model, image, 32, 0.5), atol=1e-5)
        gaussian = sliding_window_logits(model, image, 32, overlap=0.5)  # weights differ: the values do too
        assert gaussian.shape == ours.shape and not torch.allclose(gaussian, ours, atol=1e-5)


def test_prediction_by_patches_of_an_image_one_patch_large_is_the_networks_own_output():
    model = build_model(resolve_architecture("tinyunet", ["width_multiplier=0.25"]), seed=0).eval()
    g = torch.Generator().manual_seed(0)
    images = [torch.randint(0, 256, (3, 32, 32), generator=g, dtype=torch.uint8) for _ in range(2)]
    data = SegmentationData("fixture", ["a", "b"], images, [(i[0] > 128).to(torch.uint8) for i in images], 2,
                            "binary", "h", Protocol(patch=32, overlap=0.5))
    with torch.no_grad():
        direct = [model(i[None].float() / 255).argmax(1)[0] for i in images]
    assert all(torch.equal(a, b) for a, b in zip(predict(model, data), direct))


def varied_sizes(protocol: Protocol) -> SegmentationData:
    """Three images of different, odd sizes (one smaller than a patch)."""
    g = torch.Generator().manual_seed(0)
    images = [torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8)
              for h, w in ((50, 70), (37, 41), (20, 45))]
    labels = [(image[0] > 128).to(torch.uint8) for image in images]
    return SegmentationData("fixture", ["a", "b", "c"], images, labels, 2, "binary", "h", protocol)


def test_scaled_patches_are_scored_at_native_size():
    data = varied_sizes(Protocol(patch=32, scale=0.5))
    data.targets = data.labels
    data.images = [torch.nn.functional.interpolate(i[None].float(), scale_factor=0.5)[0].to(torch.uint8)
                   for i in data.images]
    predicted = predict(pointwise_network(), data)
    assert [tuple(p.shape) for p in predicted] == [(50, 70), (37, 41), (20, 45)]


def test_metrics_leave_ignored_pixels_out_as_by_hand():
    target = torch.tensor([[1, 1, 0, IGNORE],
                           [1, 0, 0, IGNORE],
                           [0, 0, 0, IGNORE],
                           [0, 0, 1, IGNORE]])
    pred = torch.tensor([[1, 0, 0, 1],
                         [1, 0, 0, 1],
                         [0, 1, 0, 1],
                         [0, 0, 1, 1]])
    m = segmentation_metrics([pred], [target], 2).summary()
    # foreground over the 12 pixels kept: tp 3 (0,0),(1,0),(3,2); fp 1 (2,1); fn 1 (0,1)
    assert m["dice_c1"] == pytest.approx(2 * 3 / (2 * 3 + 1 + 1))
    assert m["iou_c1"] == pytest.approx(3 / 5)
    # background: tp 7, fp 1 (0,1), fn 1 (2,1)
    assert m["dice_c0"] == pytest.approx(14 / 16)
    assert m["accuracy"] == pytest.approx(10 / 12)
    unmasked = segmentation_metrics([pred], [target.masked_fill(target == IGNORE, 0)], 2).summary()
    assert unmasked["dice_c1"] < m["dice_c1"]  # the ignored column would have counted as false positives


def test_the_loss_does_not_see_ignored_pixels():
    torch.manual_seed(0)
    logits = torch.randn(2, 2, 8, 8)
    labels = torch.randint(0, 2, (2, 8, 8))
    labels[:, :, :3] = IGNORE
    changed = logits.clone()
    changed[:, :, :, :3] = torch.randn(2, 2, 8, 3) * 10
    for kind in ("ce_dice", "weighted_ce", "bce_dice"):
        loss = SegmentationLoss(kind, 2)
        assert torch.allclose(loss(logits, labels), loss(changed, labels))
    single = SegmentationLoss("ce_dice", 2)
    assert torch.allclose(single(logits[:, :1], labels), single(changed[:, :1], labels))


def test_foreground_oversampling_and_padding():
    data = varied_sizes(Protocol(patch=32, oversample=1.0))
    data.labels = [torch.zeros_like(label) for label in data.labels]
    data.labels[0][40, 60] = 1  # one foreground pixel, near a corner
    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        _, labels = random_patches(data, [0], 32, 1.0, g)
        assert labels.sum() == 1  # every patch holds it
    images, labels = random_patches(data, [2], 32, 0.0, g)  # 20 x 45: padded to 32 rows
    assert images.shape == (1, 3, 32, 32) and (labels == IGNORE).sum() == 12 * 32


def test_protocol_options_that_contradict_are_named(run_cli):
    with pytest.raises(BenchError, match="--size 64 and --patch 32 exclude each other"):
        Protocol(size=64, patch=32)
    with pytest.raises(BenchError, match="--scale 0.5 works with --patch only"):
        Protocol(size=64, scale=0.5)
    result = run_cli("train", "unet", "--patch", "32", "--size", "64", "--no-tracking")
    assert result.exit_code == 2 and "exclude each other" in result.output


@pytest.mark.slow
def test_train_on_patches_then_evaluate_by_the_same_protocol(run_cli, tmp_path):
    from tests.test_layouts import drive

    root = drive(tmp_path / "DRIVE")
    # a 3-image set cannot be split 60/20/20 with more than one per subset; copy to 5 images
    for n in (24, 25):
        for sub, name in (("images", "{}_training.tif"), ("1st_manual", "{}_manual1.gif"),
                          ("mask", "{}_training_mask.gif")):
            (root / "training" / sub / name.format(n)).write_bytes(
                (root / "training" / sub / name.format(21)).read_bytes())
    out = tmp_path / "run"
    result = run_cli("train", "tinyunet", "--set", "width_multiplier=0.25", "--data", str(root), "--patch", "64",
                     "--epochs", "1", "--batch", "2", "--iterations", "2", "--out", str(out), "--no-tracking")
    assert result.exit_code == 0, result.output
    record = json.loads((out / "metrics.json").read_text())
    assert record["data"]["protocol"]["mode"] == "patch" and record["data"]["layout"]["name"] == "drive"
    assert "sliding windows" in record["data"]["protocol_text"] and math.isfinite(record["test"]["dice_c1"])
    again = run_cli("evaluate", str(out / "model.pt"), "--split", str(out / "split.json"), "--format", "json")
    assert again.exit_code == 0, again.output
    assert json.loads(again.output)["dice_c1"] == pytest.approx(record["test"]["dice_c1"], abs=1e-9)


@pytest.mark.slow
def test_memory_stays_at_the_working_scale(tmp_path):
    """120 JPEGs of 1024 x 768 loaded at 256 px: peak RSS grows by about what the uint8 working
    set needs (23.6 MB), not by the decoded originals (283 MB) or floats (94 MB)."""
    rng = np.random.default_rng(0)
    from PIL import Image

    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    base = rng.integers(0, 256, (768, 1024, 3), dtype=np.uint8)
    for i in range(120):
        Image.fromarray(np.roll(base, i, axis=1)).save(tmp_path / "images" / f"{i}.jpg", quality=85)
        mask = np.zeros((768, 1024), np.uint8)
        mask[100 + i:300 + i, 200:500] = 255
        Image.fromarray(mask).save(tmp_path / "masks" / f"{i}.png")
    script = textwrap.dedent(f"""
        import resource, torch
        from bench.data.dataset import load_folder
        from bench.data.protocol import Protocol
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        data = load_folder(__import__("pathlib").Path({str(tmp_path)!r}), Protocol(size=256))
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(before, after, sum(i.numel() for i in data.images), data.images[0].dtype)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.split()
    before, after, pixels, dtype = int(out[0]), int(out[1]), int(out[2]), out[3]
    assert pixels == 120 * 3 * 256 * 256 and dtype == "torch.uint8"
    assert (after - before) / 1024 < 80  # MB: working set 24 + one decoded image and its resize


def test_a_sweep_on_patches_says_so_in_its_record(tmp_path, write_yaml):
    from bench.run.sweep import Sweep

    space = write_yaml("patches.yaml", """
architecture: tinyunet
vary: {width_multiplier: {choices: [0.25]}}
objectives: {val_dice: maximize, params: minimize}
recipe: {name: default, epochs: 1, batch: 8}
data: {source: synthetic, patch: 32, count: 24}
study: {sampler: random, trials: 1, seed: 0}
""")
    result = Sweep(str(space), storage=f"sqlite:///{tmp_path}/optuna.db", tracking_uri=None).run()
    assert result.info.data["mode"] == "patch" and "32 px patches" in result.info.data_at()
    assert result.records[0].state == "COMPLETE"
    with pytest.raises(BenchError, match="--size 64 and --patch 32 exclude each other"):
        Sweep(str(space), storage=f"sqlite:///{tmp_path}/other.db", tracking_uri=None, size=64, patch=32).open()


def test_an_epoch_of_patches_covers_the_training_area_once_unless_iterations_say_otherwise():
    from bench.training.loop import steps_per_epoch, train_model
    from bench.training.recipe import get_recipe

    def images(count: int, height: int, width: int, protocol: Protocol) -> SegmentationData:
        labels = [torch.zeros(height, width, dtype=torch.uint8) for _ in range(count)]
        for label in labels:
            label[height // 4:height // 2, width // 4:width // 2] = 1
        pictures = [torch.full((3, height, width), 128, dtype=torch.uint8) for _ in range(count)]
        return SegmentationData("x", [str(k) for k in range(count)], pictures, labels, 2, "binary", "h", protocol)

    recipe = get_recipe("default", batch=8)
    assert steps_per_epoch(images(20, 584, 565, Protocol(patch=96)), recipe) == math.ceil(20 * 584 * 565 / 96 ** 2 / 8)
    assert steps_per_epoch(images(2000, 96, 96, Protocol(patch=96)), recipe) == 250  # small images: one pass
    assert steps_per_epoch(images(58, 32, 32, Protocol(size=32)), recipe) == 8  # whole images: one pass, as ever
    assert steps_per_epoch(images(57, 32, 32, Protocol(size=32)), recipe) == 7  # a last batch of one dropped
    assert steps_per_epoch(images(57, 32, 32, Protocol(size=32)), get_recipe("default", iterations=3)) == 3

    model = build_model(resolve_architecture("tinyunet", ["width_multiplier=0.25"]), seed=0)
    train = images(4, 40, 40, Protocol(patch=32))
    result = train_model(model, train, images(2, 40, 40, Protocol(patch=32)),
                         get_recipe("default", epochs=1, batch=2, iterations=7, precise_bn=False), 2)
    assert result.history[0]["steps"] == 7  # four images, seven steps: the permutation repeats
