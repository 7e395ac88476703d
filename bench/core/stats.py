"""How sure a figure is.

- Repeats: a metric from K training runs (seeds seed, seed+1, ... on one split) is reported as
  its mean, sample standard deviation (ddof 1) and a 95 % confidence interval of the mean from
  Student's t distribution, mean +- t(0.975, K-1) * std / sqrt(K). One seed gives no spread:
  std and interval are NaN.
- Paired comparisons (:func:`compare_paired`): two designs scored image by image on the same
  test set, each by K training runs (seeds), as a (runs, images) array of per-image foreground
  Dice. The difference is candidate minus reference. The tests below, each one-sided in the
  direction of the observed mean difference, must all agree (an intersection-union test, so its
  p-value is the largest of theirs, doubled to be two-sided):

  1. a **hierarchical bootstrap** of the mean difference: each resample draws the images with
     replacement (the same images for both designs: paired) and, within it, each design's runs
     with replacement, so that an interval widens when the seeds disagree (Bouthillier et al.,
     MLSys 2021, randomise every source of variation). 10,000 resamples, seeded; it gives the
     95 % percentile interval and P(candidate better), the share of resamples in which the
     candidate's mean is higher (ties count half).
  2. the **Wilcoxon signed-rank test** of the per-image differences of the seed means (scipy,
     zero differences dropped, exact for small samples): most images must move the same way.
  3. with two or more runs of each design, **Welch's t-test** of the runs' mean scores: the
     designs must differ by more than their seeds do. With three seeds a bootstrap of the seeds
     alone is too sure of itself (it cannot widen its interval as Student's t does for three
     values); benchmarks/verdict_calibration.py measured 21 % false verdicts without this test.

  The verdict is *better* (or *worse*, following the mean) when that p-value, Holm-adjusted over
  the comparisons judged together (:func:`holm`, :func:`adjust`: one report, one ``compare``), is
  below alpha = 0.05; otherwise *not distinguishable*. So "better" never points against the mean,
  and 40 images a little better with 9 much worse is not "better" on the mean either. With one
  run per design the bootstrap draws images only, and the text says that seed variance is not
  seen. An image without foreground scores 1 for a design that predicts none there and 0 for one
  that predicts some (:meth:`bench.training.metrics.SegmentationMetrics.per_image_mean_fg_paired`), so a
  false positive counts against its design. Images with no score for either design (NaN: records of the older empty-mask convention)
  are left out and counted; differences are rounded to 12 decimals so that floating-point noise
  does not break ties.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Optional, Sequence

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
ALPHA = 0.05
RESAMPLES = 10_000
BETTER, WORSE, SAME = "better", "worse", "not distinguishable"


@dataclass(frozen=True)
class Estimate:
    """A metric over repeated runs: mean, sample std, t-based 95 % interval of the mean, runs."""

    mean: float
    std: float
    ci_low: float
    ci_high: float
    n: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> "Estimate":
        return cls(**record)

    def text(self, digits: int = 4, scale: float = 1.0) -> str:
        """``0.8123 ± 0.0102`` (mean ± std), or the mean alone for one run."""
        if self.n < 2 or math.isnan(self.std):
            return f"{self.mean * scale:.{digits}f}"
        return f"{self.mean * scale:.{digits}f} ± {self.std * scale:.{digits}f}"


def estimate(samples: Sequence[float], confidence: float = CONFIDENCE) -> Estimate:
    """Mean, std and the t confidence interval of ``samples`` (NaN values left out)."""
    values = np.asarray([v for v in samples if v is not None and not math.isnan(v)], dtype=float)
    n = int(values.size)
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, math.nan, 0)
    mean = float(values.mean())
    if n == 1:
        return Estimate(mean, math.nan, math.nan, math.nan, 1)
    std = float(values.std(ddof=1))
    half = float(stats.t.ppf((1 + confidence) / 2, n - 1)) * std / math.sqrt(n)
    return Estimate(mean, std, mean - half, mean + half, n)


@dataclass(frozen=True)
class PairedComparison:
    """Candidate against reference, image by image over their runs (see the module docstring)."""

    reference: str
    candidate: str
    n: int  # images compared
    dropped: int  # images left out: a score undefined for either design
    mean_difference: float  # candidate - reference, over the images and each design's runs
    ci_low: float  # 95 % hierarchical bootstrap interval of the mean difference
    ci_high: float
    p_value: float  # the two tests together, two-sided, before any correction
    verdict: str
    seeds: int = 1  # runs per design (the fewer of the two)
    p_better: float = math.nan  # P(candidate better), over the bootstrap resamples
    p_bootstrap: float = math.nan  # hierarchical bootstrap, two-sided
    p_wilcoxon: float = math.nan  # signed-rank test in the direction of the mean, doubled
    p_seeds: float = math.nan  # Welch's t-test of the runs' means in that direction, doubled (2+ runs each)
    p_adjusted: float = math.nan  # Holm over the ``family`` comparisons judged together
    family: int = 1
    empty: int = 0  # images with no foreground: 1 where a design predicts none, else 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> "PairedComparison":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in record.items() if k in known})

    @property
    def p(self) -> float:
        """The p-value the verdict was taken on (Holm-adjusted where it was judged in a family)."""
        return self.p_value if math.isnan(self.p_adjusted) else self.p_adjusted

    def short(self) -> str:
        """``better (+0.012, P 0.99, p 0.003)``."""
        if self.n == 0:
            return self.verdict
        return f"{self.verdict} ({self.mean_difference:+.3f}, P(better) {self.p_better:.2f}, p {self.p:.2g})"

    def text(self) -> str:
        """``better: +0.0123 [+0.0050, +0.0201], P(better) 0.998, p 0.003 (Holm, 3 tests), 19 images, 3 seeds``."""
        if self.n == 0:
            return f"{self.verdict}: no image scored by both"
        holm = f" (Holm over {self.family} tests)" if self.family > 1 else ""
        seeds = f"{self.seeds} seeds" if self.seeds > 1 else "1 seed: seed variance not seen"
        empty = (f" ({self.empty} without foreground: 1 if predicted empty, else 0)" if self.empty else "")
        return (f"{self.verdict}: {self.mean_difference:+.4f} [{self.ci_low:+.4f}, {self.ci_high:+.4f}], "
                f"P(better) {self.p_better:.3f}, p {self.p:.3g}{holm}, {self.n} images{empty}, {seeds}")


RULE = ("A verdict needs one-sided tests in the direction of the mean difference to agree: a hierarchical "
        "bootstrap over seeds and images, a Wilcoxon signed-rank test of the per-image differences, and with 2+ "
        "seeds a Welch t-test of the seeds' means; their joint p-value (the largest, two-sided), Holm-adjusted "
        "over the comparisons shown together, must be below 0.05. P(better) is the bootstrap share in which the "
        "candidate's mean is higher. With one seed, seed variance is not seen.")


def smallest_p(images: int, family: int = 1) -> float:
    """The smallest p-value a verdict on ``images`` paired images can reach, judged in a family of
    ``family``: the exact two-sided Wilcoxon signed-rank test gives at best 2 / 2^n (every
    difference of one sign), and Holm multiplies the smallest p by the family's size."""
    return min(1.0, family * 2.0 / 2.0 ** images) if images > 0 else 1.0


def too_few_images(comparisons: Sequence["PairedComparison"], alpha: float = ALPHA) -> Optional[str]:
    """A warning when the compared images are too few for any verdict whatever the networks do,
    with the fix; None when a verdict is possible."""
    judged = [c for c in comparisons if c.n > 0]
    if not judged:
        return None
    fewest = min(judged, key=lambda c: c.n)
    floor = smallest_p(fewest.n, fewest.family)
    if floor < alpha:
        return None
    needed = next(n for n in range(fewest.n, 64) if smallest_p(n, fewest.family) < alpha)
    return (f"No verdict is possible here: with {fewest.n} paired test images the Wilcoxon test's p is at least "
            f"{floor:.3g}{f' after Holm over {fewest.family} tests' if fewest.family > 1 else ''} (alpha {alpha:g}), "
            f"whatever the networks do. Score at least {needed} images: a larger test split, or folds (--folds 5 "
            "scores every image once).")


def compare_paired(reference: Sequence, candidate: Sequence, *, reference_name: str = "reference",
                   candidate_name: str = "candidate", alpha: float = ALPHA, resamples: int = RESAMPLES,
                   seed: int = 0, empty: int = 0) -> PairedComparison:
    """Paired comparison of two designs scored on the same images (same order): per-image
    scores (images,) of one run, or (runs, images) of several; the two may have different runs.
    ``empty``: how many of the images hold no foreground (stated in the text).

    Raises:
        ValueError: the two do not score the same number of images.
    """
    a, b = _runs(reference), _runs(candidate)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"paired scores need the same images: {a.shape[1]} against {b.shape[1]}")
    both = ~(np.isnan(a).any(0) | np.isnan(b).any(0))
    a, b = a[:, both], b[:, both]
    n, dropped, seeds = int(both.sum()), int((~both).sum()), min(a.shape[0], b.shape[0])
    if n == 0:
        return PairedComparison(reference_name, candidate_name, 0, dropped, math.nan, math.nan, math.nan, 1.0,
                                SAME, seeds, empty=empty)
    d = np.round(b.mean(0) - a.mean(0), 12)
    mean = float(d.mean())
    if n < 2:  # nothing to resample or rank
        return PairedComparison(reference_name, candidate_name, n, dropped, mean, math.nan, math.nan, 1.0, SAME,
                                seeds, math.nan, 1.0, 1.0, empty=empty)
    differences = hierarchical_bootstrap(a, b, resamples, seed)
    low, high = (float(v) for v in np.percentile(differences, [100 * (1 - CONFIDENCE) / 2,
                                                               100 * (1 + CONFIDENCE) / 2]))
    p_better = float((differences > 0).mean() + 0.5 * (differences == 0).mean())
    if mean == 0:
        p_boot = p_wilcoxon = p_seeds = 1.0
    else:
        side = "greater" if mean > 0 else "less"
        against = (differences <= 0).sum() if mean > 0 else (differences >= 0).sum()
        p_boot = min(1.0, 2 * (int(against) + 1) / (differences.size + 1))
        p_wilcoxon = min(1.0, 2 * wilcoxon_p(d, side))
        p_seeds = min(1.0, 2 * welch_p(a.mean(1), b.mean(1), side)) if seeds > 1 else math.nan
    p = max(p_boot, p_wilcoxon, 0.0 if math.isnan(p_seeds) else p_seeds)
    return PairedComparison(reference_name, candidate_name, n, dropped, mean, low, high, p,
                            _verdict(mean, p, alpha), seeds, p_better, p_boot, p_wilcoxon, p_seeds, empty=empty)


def _runs(scores: Sequence) -> np.ndarray:
    array = np.asarray(scores, dtype=float)
    return array[None, :] if array.ndim == 1 else array


def _verdict(mean: float, p: float, alpha: float) -> str:
    if p < alpha and mean > 0:
        return BETTER
    if p < alpha and mean < 0:
        return WORSE
    return SAME


def hierarchical_bootstrap(reference: np.ndarray, candidate: np.ndarray, resamples: int = RESAMPLES,
                           seed: int = 0, chunk: int = 1000) -> np.ndarray:
    """(resamples,) mean differences, candidate minus reference, of (runs, images) scores: each
    resample draws the images with replacement (shared by both designs) and each design's runs
    with replacement. Seeded; computed in chunks of resamples to bound memory."""
    rng = np.random.default_rng(seed)
    runs_a, runs_b, images = reference.shape[0], candidate.shape[0], reference.shape[1]
    out = np.empty(resamples)
    for start in range(0, resamples, chunk):
        k = min(chunk, resamples - start)
        weights_a = rng.multinomial(runs_a, np.full(runs_a, 1 / runs_a), size=k) / runs_a  # (k, runs)
        weights_b = rng.multinomial(runs_b, np.full(runs_b, 1 / runs_b), size=k) / runs_b
        drawn = rng.multinomial(images, np.full(images, 1 / images), size=k) / images  # (k, images)
        per_image = weights_b @ candidate - weights_a @ reference  # (k, images): each resample's seed means
        out[start:start + k] = np.round((drawn * per_image).sum(1), 12)
    return out


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment of ``p_values`` (same order), each at most 1: the i-th smallest
    is multiplied by (m - i) and kept at least as large as the one before it."""
    p = np.asarray(p_values, dtype=float)
    order = np.argsort(p, kind="stable")
    adjusted, running = np.empty_like(p), 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (p.size - rank) * p[index]))
        adjusted[index] = running
    return [float(v) for v in adjusted]


def adjust(comparisons: Sequence[PairedComparison], alpha: float = ALPHA) -> list[PairedComparison]:
    """The comparisons judged together: Holm-adjusted p-values over those that compared images,
    and verdicts taken on them."""
    judged = [c for c in comparisons if c.n > 0]
    adjusted = dict(zip(map(id, judged), holm([c.p_value for c in judged])))
    return [replace(c, p_adjusted=adjusted[id(c)], family=len(judged),
                    verdict=_verdict(c.mean_difference, adjusted[id(c)], alpha)) if id(c) in adjusted else c
            for c in comparisons]


def welch_p(reference: np.ndarray, candidate: np.ndarray, alternative: str) -> float:
    """One-sided Welch t-test p of candidate's runs against reference's (``alternative``
    ``greater`` or ``less``, as scipy's); runs without any spread differ surely or not at all."""
    if reference.std() == 0 and candidate.std() == 0:
        gap = candidate.mean() - reference.mean()
        return 0.0 if (gap > 0 if alternative == "greater" else gap < 0) else 1.0
    return float(stats.ttest_ind(candidate, reference, equal_var=False, alternative=alternative).pvalue)


def wilcoxon_p(differences: np.ndarray, alternative: str = "two-sided") -> float:
    """Wilcoxon signed-rank p-value (``alternative`` as scipy's); 1.0 when every difference is zero."""
    if not np.any(differences != 0):
        return 1.0
    return float(stats.wilcoxon(differences, zero_method="wilcox", alternative=alternative, method="auto").pvalue)


def mean_over_runs(per_run: Sequence[Sequence[float]]) -> list[float]:
    """Per-image scores averaged over runs; an image undefined in every run stays NaN."""
    array = np.asarray(per_run, dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy's "mean of empty slice"
        return [float(v) for v in np.nanmean(array, axis=0)]
