"""How sure a figure is.

- Repeats: a metric from K training runs (seeds seed, seed+1, ... on one split) is reported as
  its mean, sample standard deviation (ddof 1) and a 95 % confidence interval of the mean from
  Student's t distribution, mean +- t(0.975, K-1) * std / sqrt(K). One seed gives no spread:
  std and interval are NaN.
- Paired comparisons: two designs scored image by image on the same test set (per-image
  foreground Dice, each averaged over the seeds first). The difference is candidate minus
  reference; images where either score is undefined (the structure absent from both mask and
  prediction) are left out; differences are rounded to 12 decimals so that floating-point noise
  does not break ties. Reported: the mean difference, its 95 % bootstrap confidence interval
  (percentile method, 10,000 resamples of the images, seeded), and the two-sided Wilcoxon
  signed-rank p-value (scipy; zero differences dropped, exact distribution for small samples).
  The verdict is *better* (or *worse*) only when both agree: p < alpha and the interval excludes
  0 on the same side; otherwise *not distinguishable*. This works with one seed too: then the
  per-image scores come from one training run each, and the test says nothing about seed noise.
  No correction for multiple comparisons is applied.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass
from typing import Any, Sequence

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
    """Candidate against reference, image by image (see the module docstring)."""

    reference: str
    candidate: str
    n: int  # images compared
    dropped: int  # images left out: a score undefined for either design
    mean_difference: float  # candidate - reference
    ci_low: float
    ci_high: float
    p_value: float
    verdict: str
    seeds: int = 1  # runs averaged per image and design

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> "PairedComparison":
        return cls(**record)

    def short(self) -> str:
        """``better (+0.012, p 0.003)``."""
        return self.verdict if self.n == 0 else f"{self.verdict} ({self.mean_difference:+.3f}, p {self.p_value:.2g})"

    def text(self) -> str:
        """``better: +0.0123 [+0.0050, +0.0201], p 0.003, 19 images``."""
        if self.n == 0:
            return f"{self.verdict}: no image scored by both"
        return (f"{self.verdict}: {self.mean_difference:+.4f} [{self.ci_low:+.4f}, {self.ci_high:+.4f}], "
                f"p {self.p_value:.3g}, {self.n} images")


def compare_paired(reference: Sequence[float], candidate: Sequence[float], *, reference_name: str = "reference",
                   candidate_name: str = "candidate", alpha: float = ALPHA, resamples: int = RESAMPLES,
                   seed: int = 0, seeds: int = 1) -> PairedComparison:
    """Paired comparison of per-image scores of two designs on the same images (same order).

    Raises:
        ValueError: the two lists have different lengths (not the same images).
    """
    a, b = np.asarray(reference, dtype=float), np.asarray(candidate, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired scores need the same images: {a.size} against {b.size}")
    both = ~(np.isnan(a) | np.isnan(b))
    d = np.round(b[both] - a[both], 12)
    n, dropped = int(d.size), int((~both).sum())
    if n == 0:
        return PairedComparison(reference_name, candidate_name, 0, dropped, math.nan, math.nan, math.nan, 1.0,
                                SAME, seeds)
    mean = float(d.mean())
    if n < 2:  # nothing to resample or rank
        return PairedComparison(reference_name, candidate_name, n, dropped, mean, math.nan, math.nan, 1.0, SAME,
                                seeds)
    low, high = bootstrap_mean_ci(d, resamples, seed)
    p = wilcoxon_p(d)
    verdict = SAME
    if p < alpha and low > 0:
        verdict = BETTER
    elif p < alpha and high < 0:
        verdict = WORSE
    return PairedComparison(reference_name, candidate_name, n, dropped, mean, low, high, p, verdict, seeds)


def bootstrap_mean_ci(values: np.ndarray, resamples: int = RESAMPLES, seed: int = 0,
                      confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (at least two), seeded."""
    if np.all(values == values[0]):  # no spread: every resample has the same mean
        return float(values[0]), float(values[0])
    result = stats.bootstrap((values,), np.mean, confidence_level=confidence, n_resamples=resamples,
                             method="percentile", rng=np.random.default_rng(seed))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def wilcoxon_p(differences: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p-value; 1.0 when every difference is zero."""
    if not np.any(differences != 0):
        return 1.0
    return float(stats.wilcoxon(differences, zero_method="wilcox", alternative="two-sided", method="auto").pvalue)


def mean_over_runs(per_run: Sequence[Sequence[float]]) -> list[float]:
    """Per-image scores averaged over runs; an image undefined in every run stays NaN."""
    array = np.asarray(per_run, dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy's "mean of empty slice"
        return [float(v) for v in np.nanmean(array, axis=0)]
