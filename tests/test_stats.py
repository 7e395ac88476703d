"""How sure a figure is: estimates over seeds on known samples, and paired per-image comparisons
checked against scipy and hand-computed values, ties and all-zero differences included."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from bench.stats import BETTER, SAME, WORSE, bootstrap_mean_ci, compare_paired, estimate, mean_over_runs


def test_estimate_of_three_seeds_uses_the_t_distribution():
    figure = estimate([0.80, 0.82, 0.84])
    half = 4.302652729749464 * 0.02 / math.sqrt(3)  # t(0.975, 2), R: qt(0.975, 2)
    assert figure.mean == pytest.approx(0.82, abs=1e-12) and figure.std == pytest.approx(0.02, abs=1e-12)
    assert figure.ci_low == pytest.approx(0.82 - half, abs=1e-12)
    assert figure.ci_high == pytest.approx(0.82 + half, abs=1e-12)
    assert figure.n == 3 and figure.text(3) == "0.820 ± 0.020"


def test_one_seed_has_no_spread_and_nan_runs_are_left_out():
    one = estimate([0.7])
    assert one.mean == 0.7 and math.isnan(one.std) and math.isnan(one.ci_low) and one.text(2) == "0.70"
    assert estimate([0.5, math.nan, 0.7]).n == 2 and estimate([0.5, math.nan, 0.7]).mean == pytest.approx(0.6)
    assert estimate([]).n == 0


def test_per_image_scores_are_averaged_over_seeds_and_all_nan_images_stay_nan():
    means = mean_over_runs([[0.5, math.nan, 0.2], [0.7, math.nan, math.nan]])
    assert means[0] == pytest.approx(0.6) and math.isnan(means[1]) and means[2] == pytest.approx(0.2)


def test_five_improvements_are_too_few_for_the_wilcoxon_test():
    reference = [0.80, 0.70, 0.90, 0.60, 0.75]
    candidate = [0.85, 0.75, 0.95, 0.65, 0.80]  # +0.05 everywhere: ties after rounding
    test = compare_paired(reference, candidate)
    assert test.mean_difference == pytest.approx(0.05) and (test.ci_low, test.ci_high) == (pytest.approx(0.05),) * 2
    assert test.p_value == pytest.approx(2 / 2**5)  # exact: all five ranks on one side, two-sided
    assert test.verdict == SAME  # p 0.0625: the interval alone does not make it better


def test_ten_consistent_improvements_are_better_and_their_mirror_is_worse():
    reference = np.linspace(0.5, 0.9, 10)
    candidate = reference + np.linspace(0.01, 0.10, 10)
    better = compare_paired(reference, candidate)
    assert better.p_value == pytest.approx(2 / 2**10) and better.verdict == BETTER and better.ci_low > 0
    worse = compare_paired(candidate, reference)
    assert worse.verdict == WORSE and worse.ci_high < 0
    assert worse.mean_difference == pytest.approx(-better.mean_difference)


def test_p_values_equal_scipys_with_ties_and_zero_differences():
    reference = np.array([0.60, 0.70, 0.80, 0.50, 0.65, 0.72, 0.90, 0.55, 0.61, 0.83, 0.77, 0.68])
    delta = np.array([0.02, -0.02, 0.02, 0.00, 0.05, 0.00, -0.01, 0.02, 0.03, 0.05, -0.02, 0.04])
    test = compare_paired(reference, reference + delta)
    expected = scipy_stats.wilcoxon(np.round(delta, 12), zero_method="wilcox", method="auto").pvalue
    assert test.p_value == pytest.approx(expected, rel=1e-12) and test.n == 12


def test_all_zero_differences_are_not_distinguishable():
    scores = [0.3, 0.9, 0.5, 0.7]
    test = compare_paired(scores, scores)
    assert (test.mean_difference, test.ci_low, test.ci_high, test.p_value) == (0, 0, 0, 1.0)
    assert test.verdict == SAME


def test_images_undefined_for_either_design_are_dropped():
    test = compare_paired([0.5, math.nan, 0.6, 0.7], [0.6, 0.8, math.nan, 0.9])
    assert test.n == 2 and test.dropped == 2 and test.mean_difference == pytest.approx(0.15)
    with pytest.raises(ValueError, match="same images"):
        compare_paired([0.5, 0.6], [0.5])


def test_bootstrap_interval_agrees_with_scipy_and_an_independent_resampling():
    rng = np.random.default_rng(7)
    differences = rng.normal(0.02, 0.05, 30)
    ours = bootstrap_mean_ci(differences, 10_000, seed=3)
    theirs = scipy_stats.bootstrap((differences,), np.mean, n_resamples=10_000, method="percentile",
                                   rng=np.random.default_rng(3)).confidence_interval
    assert ours == (pytest.approx(theirs.low), pytest.approx(theirs.high))
    means = differences[np.random.default_rng(11).integers(0, 30, (20_000, 30))].mean(1)  # by hand
    assert ours[0] == pytest.approx(np.percentile(means, 2.5), abs=2e-3)
    assert ours[1] == pytest.approx(np.percentile(means, 97.5), abs=2e-3)
    default = compare_paired([0.0] * 30, differences)  # seeded: the same interval every time
    assert (default.ci_low, default.ci_high) == bootstrap_mean_ci(np.round(differences, 12), 10_000, seed=0)
