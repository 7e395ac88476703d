"""Metric values on hand-made masks, one test per convention of bench/metrics.py."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bench.metrics import hd95, segmentation_metrics


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
