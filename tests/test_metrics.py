"""Metric values on hand-made masks, one test per convention of bench/training/metrics.py, and agreement
with MONAI on random masks."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bench.training.metrics import hd95, segmentation_metrics


def masks(*rows_per_image: list[str]) -> torch.Tensor:
    """Label maps from strings: one string per row, digits are classes."""
    return torch.tensor([[[int(ch) for ch in row] for row in image] for image in rows_per_image])


def test_partial_overlap_by_hand():
    target = masks(["0000", "0110", "0110", "0000"])
    pred = masks(["0000", "0110", "0100", "0000"])  # TP 3, FP 0, FN 1 for class 1
    m = segmentation_metrics(pred, target, 2)
    assert m.per_image["dice"][0, 1] == pytest.approx(6 / 7)
    assert m.per_image["iou"][0, 1] == pytest.approx(3 / 4)
    assert m.per_image["precision"][0, 1] == 1.0
    assert m.per_image["recall"][0, 1] == 0.75
    assert m.per_image["dice"][0, 0] == pytest.approx(2 * 12 / (12 + 13))  # background
    assert m.accuracy[0] == pytest.approx(15 / 16)


def test_perfect_prediction():
    target = masks(["0110", "0110", "0000"])
    s = segmentation_metrics(target.clone(), target, 2).summary()
    assert s["dice_mean"] == s["iou_mean"] == s["accuracy"] == 1.0
    assert s["hd95_c1"] == 0.0


def test_class_absent_from_both_is_left_out_of_the_mean():
    target = masks(["11", "00"], ["00", "00"])
    pred = masks(["10", "00"], ["00", "00"])
    m = segmentation_metrics(pred, target, 2)
    assert math.isnan(m.per_image["dice"][1, 1]) and math.isnan(m.per_image["hd95"][1, 1])
    assert m.per_class("dice")[1] == pytest.approx(2 / 3)  # image 1 only, not (2/3 + 1) / 2


def test_predicted_but_absent_and_present_but_missed():
    false_alarm = segmentation_metrics(masks(["10", "00"]), masks(["00", "00"]), 2)
    assert false_alarm.per_image["dice"][0, 1] == 0.0
    assert false_alarm.per_image["precision"][0, 1] == 0.0
    assert math.isnan(false_alarm.per_image["recall"][0, 1])
    missed = segmentation_metrics(masks(["00", "00"]), masks(["01", "00"]), 2)
    assert missed.per_image["dice"][0, 1] == 0.0 and missed.per_image["recall"][0, 1] == 0.0
    assert math.isnan(missed.per_image["precision"][0, 1])


def test_hd95_of_a_missed_structure_is_the_image_diagonal():
    empty, one = np.zeros((30, 40), bool), np.zeros((30, 40), bool)
    one[5, 5] = True
    assert hd95(empty, one) == hd95(one, empty) == 50.0
    assert math.isnan(hd95(empty, empty))
    assert hd95(empty, one, spacing=(0.5, 0.5)) == 25.0


def test_hd95_of_shifted_squares_is_the_shift():
    a, b = np.zeros((20, 20), bool), np.zeros((20, 20), bool)
    a[5:10, 5:10] = True
    b[5:10, 8:13] = True  # shifted 3 px right
    assert hd95(a, b) == pytest.approx(3.0)
    assert hd95(a, b, spacing=(1.0, 2.0)) == pytest.approx(6.0)


def test_pooled_differs_from_per_image_mean():
    target = masks(["1111", "1111"], ["1000", "0000"])
    pred = masks(["1111", "1111"], ["0100", "0000"])
    s = segmentation_metrics(pred, target, 2).summary()
    assert s["dice_c1"] == pytest.approx(0.5)  # (1 + 0) / 2
    # pooled: class 1 TP 8, FP 1, FN 1; background TP 6, FP 1, FN 1
    assert s["dice_pooled_mean"] == pytest.approx((16 / 18 + 12 / 14) / 2)


def random_label_maps(n: int, classes: int, size: int, seed: int) -> torch.Tensor:
    """Blobby random label maps (N, size, size); some classes missing from some images."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.rand(n, classes, size // 4, size // 4, generator=g)
    labels = F.interpolate(noise, size=(size, size), mode="bilinear", align_corners=False).argmax(1)
    for i in range(n):  # empty cells on purpose: a class erased from a third of the images
        if torch.rand(1, generator=g).item() < 0.33:
            labels[i][labels[i] == 1 + i % (classes - 1)] = 0
    return labels


def test_metrics_equal_monais_where_both_define_a_value_and_differ_only_in_the_stated_cells():
    import monai.metrics as monai_metrics  # a test dependency (setup.cfg: test)
    classes = 3
    target = random_label_maps(40, classes, 32, seed=1)
    pred = random_label_maps(40, classes, 32, seed=2)
    pred[:10] = target[:10]  # some perfect predictions
    ours = segmentation_metrics(pred, target, classes)
    onehot = lambda x: F.one_hot(x, classes).permute(0, 3, 1, 2).float()  # noqa: E731
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MONAI warns about the empty cells compared below
        p, t = onehot(pred), onehot(target)
        dice = monai_metrics.compute_dice(p, t, include_background=True, ignore_empty=True).numpy()
        dice_all = monai_metrics.compute_dice(p, t, include_background=True, ignore_empty=False).numpy()
        iou = monai_metrics.compute_iou(p, t, include_background=True, ignore_empty=True).numpy()
        hd95 = monai_metrics.compute_hausdorff_distance(onehot(pred), onehot(target), include_background=True,
                                                        percentile=95).numpy()
    has_pred = (onehot(pred).sum((2, 3)) > 0).numpy()
    has_gt = (onehot(target).sum((2, 3)) > 0).numpy()
    both, neither = has_pred & has_gt, ~has_pred & ~has_gt
    pred_only, gt_only = has_pred & ~has_gt, ~has_pred & has_gt
    assert both.sum() > 50 and neither.sum() > 3 and pred_only.sum() > 3 and gt_only.sum() > 3
    np.testing.assert_allclose(ours.per_image["dice"][both], dice[both], atol=1e-6)
    np.testing.assert_allclose(ours.per_image["iou"][both], iou[both], atol=1e-6)
    np.testing.assert_allclose(ours.per_image["hd95"][both], hd95[both], atol=1e-5)
    # the convention cells, as the module docstring states them
    assert np.isnan(ours.per_image["dice"][neither]).all() and np.isnan(dice[neither]).all()
    assert (dice_all[neither] == 1).all()  # MONAI without ignore_empty
    assert (ours.per_image["dice"][pred_only] == 0).all() and np.isnan(dice[pred_only]).all()
    assert (dice_all[pred_only] == 0).all()
    assert (ours.per_image["dice"][gt_only] == 0).all() and (dice[gt_only] == 0).all()
    one_side = pred_only | gt_only
    assert (ours.per_image["hd95"][one_side] == pytest.approx(math.hypot(32, 32))) and np.isnan(hd95[one_side]).all()
    assert np.isnan(ours.per_image["hd95"][neither]).all() and np.isnan(hd95[neither]).all()


def test_per_image_foreground_dice_averages_the_foreground_classes_defined_in_each_image():
    target = torch.tensor([[[1, 2], [0, 0]], [[0, 0], [0, 0]], [[1, 1], [0, 0]]])
    pred = torch.tensor([[[1, 0], [0, 0]], [[0, 0], [0, 0]], [[0, 0], [0, 0]]])
    per_image = segmentation_metrics(pred, target, 3, distances=False).per_image_mean_fg("dice")
    assert per_image[0] == pytest.approx(0.5)  # class 1 perfect, class 2 missed
    assert np.isnan(per_image[1])  # no foreground anywhere: undefined
    assert per_image[2] == 0.0


def test_paired_scores_give_an_empty_image_1_when_nothing_is_predicted_and_0_for_a_false_positive():
    """MONAI's ignore_empty=False, for paired tests: a false positive on an image without the
    structure counts against its design instead of dropping the image."""
    target = masks(["00", "00"], ["00", "00"], ["11", "00"])
    silent = masks(["00", "00"], ["00", "00"], ["10", "00"])
    noisy = masks(["01", "00"], ["00", "00"], ["10", "00"])
    quiet = segmentation_metrics(silent, target, 2, distances=False)
    loud = segmentation_metrics(noisy, target, 2, distances=False)
    assert list(quiet.per_image_mean_fg_paired()) == pytest.approx([1.0, 1.0, 2 / 3])
    assert list(loud.per_image_mean_fg_paired()) == pytest.approx([0.0, 1.0, 2 / 3])
    assert np.isnan(quiet.per_image_mean_fg()[0])  # the reported mean keeps nnU-Net's convention
    assert quiet.images_without_foreground() == loud.images_without_foreground() == 2
    three = segmentation_metrics(masks(["12"]), masks(["10"]), 3, distances=False)  # class 2 predicted, absent
    assert three.per_image_mean_fg_paired()[0] == pytest.approx(0.5)
