"""What a tabulated benchmark says about the harness itself (pure functions of the table):

1. :func:`variance_by_epoch`: the share of validation-Dice variance the design explains, against
   the seed, after every epoch (one-way ANOVA over designs with two or more seeds);
2. :func:`fidelity_by_epoch`: Spearman's rho between the designs' ranking at epoch e with one
   seed and the final ranking (last epoch, mean over the seeds);
3. :func:`verdict_calibration`: the paired verdict (:func:`bench.core.stats.compare_paired`)
   from 3-seed draws of the calibration designs against the verdict of all their seeds;
4. :func:`proxy_correlations`: zero-cost proxies, params and FLOPs against the final Dice;
5. :func:`strategy_curves`: replays of samplers and pruners, share of the true front's
   hypervolume against simulated time, interquartile mean with bootstrap 95 % intervals.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from ..core.stats import BETTER, SAME, WORSE, compare_paired
from ..search.benchmark_table import BenchmarkTable
from ..search.pruners import parse_pruner
from ..search.replay import Components, ReplayCurve, ReplayResult, replay
from ..search.space import SearchSpace


def _curves(table: BenchmarkTable) -> dict[int, np.ndarray]:
    """Design -> (seeds, epochs) validation Dice."""
    return {int(d): np.array([list(v) for v in group["val_dice"]], dtype=float)
            for d, group in table.frame.groupby("design")}


def variance_by_epoch(table: BenchmarkTable) -> pd.DataFrame:
    """Per epoch: the share of the validation Dice's variance between designs (their means) and
    within them (the seeds), over the designs with at least two seeds; and how many designs."""
    curves = {d: c for d, c in _curves(table).items() if c.shape[0] >= 2}
    rows = []
    for e in range(table.epochs):
        groups = [c[:, e] for c in curves.values()]
        values = np.concatenate(groups) if groups else np.array([])
        total = float(((values - values.mean()) ** 2).sum()) if values.size else math.nan
        between = float(sum(g.size * (g.mean() - values.mean()) ** 2 for g in groups)) if groups else math.nan
        share = between / total if total and total > 0 else math.nan
        rows.append({"epoch": e + 1, "design_share": share, "seed_share": 1 - share, "designs": len(groups)})
    return pd.DataFrame(rows)


def fidelity_by_epoch(table: BenchmarkTable, seed: int = 0) -> pd.DataFrame:
    """Per epoch e: Spearman's rho between the validation Dice after epoch e of seed ``seed``
    and the final ranking (last epoch's validation Dice, mean over every seed), and the same for
    the best validation Dice so far (what a pruner at epoch e sees)."""
    curves = _curves(table)
    seeds = {int(d): group["seed"].tolist() for d, group in table.frame.groupby("design")}
    designs = [d for d in curves if seed in seeds[d]]
    final = [curves[d][:, -1].mean() for d in designs]
    rows = []
    for e in range(table.epochs):
        at = [curves[d][seeds[d].index(seed), e] for d in designs]
        so_far = [curves[d][seeds[d].index(seed), :e + 1].max() for d in designs]
        rows.append({"epoch": e + 1, "spearman": _rho(at, final), "spearman_best_so_far": _rho(so_far, final),
                     "designs": len(designs)})
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class Calibration:
    """Per pair of calibration designs: the verdict with all their seeds, and the share of
    ``draws`` 3-seed verdicts that say better, worse or the same."""

    pairs: pd.DataFrame
    seeds_drawn: int
    draws: int
    null: pd.DataFrame = field(default_factory=pd.DataFrame)  # per design: itself against itself

    def null_rate(self) -> float:
        """A design against itself, on disjoint seed draws (no difference by construction): the
        share of verdicts that call one, the type I error of the rule with no assumption about
        which pairs truly differ."""
        return float((self.null["better"] + self.null["worse"]).mean()) if len(self.null) else math.nan

    def false_rate(self) -> float:
        """Share of drawn verdicts that call a difference the all-seed verdict does not
        (better/worse where the truth is the same, or the opposite direction)."""
        p = self.pairs
        same = p[p["truth"] == SAME]
        differ = p[p["truth"] != SAME]
        false = same["better"].sum() + same["worse"].sum()
        false += differ.apply(lambda r: r["worse"] if r["truth"] == BETTER else r["better"], axis=1).sum()
        return float(false / len(p)) if len(p) else math.nan

    def false_rate_when_same(self) -> float:
        """Among pairs whose all-seed verdict is the same: the share of drawn verdicts that call a
        difference (the type I error, against the best truth the table has)."""
        same = self.pairs[self.pairs["truth"] == SAME]
        return float((same["better"] + same["worse"]).mean()) if len(same) else math.nan

    def opposite_rate(self) -> float:
        """Among pairs with a real difference: the share of drawn verdicts in the wrong direction."""
        differ = self.pairs[self.pairs["truth"] != SAME]
        if not len(differ):
            return math.nan
        return float(differ.apply(lambda r: r["worse"] if r["truth"] == BETTER else r["better"], axis=1).mean())

    def power(self) -> float:
        """Among pairs with a real difference: the share of drawn verdicts that find it."""
        differ = self.pairs[self.pairs["truth"] != SAME]
        if not len(differ):
            return math.nan
        return float(differ.apply(lambda r: r["better"] if r["truth"] == BETTER else r["worse"], axis=1).mean())


def verdict_calibration(table: BenchmarkTable, seeds: int = 3, draws: int = 200, resamples: int = 2000,
                        seed: int = 0, designs: Optional[Sequence[int]] = None) -> Calibration:
    """For every pair of the calibration designs (or ``designs``): the paired verdict on the
    per-image test Dice of all their seeds (the truth), and ``draws`` verdicts each from
    ``seeds`` seeds drawn without replacement for each design; and for every design with at
    least twice ``seeds`` seeds, ``draws`` verdicts of the design against itself on disjoint
    seed draws (the null: no difference by construction)."""
    frame = table.frame
    chosen = list(designs) if designs is not None else sorted(frame.loc[frame["calibration"], "design"].unique())
    scores = {int(d): np.array([list(v) for v in frame.loc[frame["design"] == d, "test_dice_fg_per_image"]])
              for d in chosen}
    chosen = [d for d in chosen if scores[d].shape[0] > seeds]
    rng = np.random.default_rng(seed)
    rows = []
    for a, b in itertools.combinations(chosen, 2):
        truth = compare_paired(scores[a], scores[b], resamples=resamples)
        counts = {BETTER: 0, WORSE: 0, SAME: 0}
        for i in range(draws):
            pick_a = rng.choice(scores[a].shape[0], seeds, replace=False)
            pick_b = rng.choice(scores[b].shape[0], seeds, replace=False)
            counts[compare_paired(scores[a][pick_a], scores[b][pick_b], resamples=resamples, seed=i).verdict] += 1
        rows.append({"reference": a, "candidate": b, "seeds_a": scores[a].shape[0], "seeds_b": scores[b].shape[0],
                     "truth": truth.verdict, "difference": truth.mean_difference, "p": truth.p_value,
                     "better": counts[BETTER] / draws, "worse": counts[WORSE] / draws, "same": counts[SAME] / draws})
    null = []
    for d in chosen:
        if scores[d].shape[0] < 2 * seeds:
            continue
        counts = {BETTER: 0, WORSE: 0, SAME: 0}
        for i in range(draws):
            pick = rng.permutation(scores[d].shape[0])
            counts[compare_paired(scores[d][pick[:seeds]], scores[d][pick[seeds:2 * seeds]], resamples=resamples,
                                  seed=i).verdict] += 1
        null.append({"design": d, "seeds": scores[d].shape[0], "better": counts[BETTER] / draws,
                     "worse": counts[WORSE] / draws, "same": counts[SAME] / draws})
    return Calibration(pd.DataFrame(rows), seeds, draws, pd.DataFrame(null))


def proxy_correlations(table: BenchmarkTable) -> pd.DataFrame:
    """Spearman's rho of every zero-cost proxy, params and FLOPs with the final validation Dice
    (last epoch, mean over the seeds) and with the test Dice (mean over the seeds)."""
    designs = table.design_frame()
    columns = [c for c in designs.columns if c.startswith("proxy_")] + ["params", "flops"]
    rows = []
    for column in columns:
        x = designs[column].astype(float)
        ok = np.isfinite(x)
        rows.append({"score": column.removeprefix("proxy_"),
                     "spearman_final_val_dice": _rho(x[ok], designs.loc[ok, "final_val_dice"]),
                     "spearman_test_dice": _rho(x[ok], designs.loc[ok, "test_dice_fg"]),
                     "designs": int(ok.sum()), "seconds_per_design": _proxy_seconds(designs, column)})
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class Strategy:
    """A sampler with a pruner (``none`` or ``mo_asha``), at a number of simulated workers."""

    sampler: str
    pruner: str
    workers: int

    @property
    def label(self) -> str:
        return f"{self.sampler}" + (f" + {self.pruner}" if self.pruner != "none" else "") + f", {self.workers} w"


def replay_strategy(table: BenchmarkTable, space: SearchSpace, strategy: Strategy, trials: int, seed: int,
                    components: Components = Components(), max_seconds: float = math.inf) -> ReplayResult:
    """One replay of ``strategy`` with ``seed``."""
    pruner = parse_pruner(strategy.pruner, space.objectives, table.epochs)
    return replay(table, space, strategy.sampler, pruner, trials, strategy.workers, seed, components, max_seconds)


def iqm(values: Sequence[float]) -> float:
    """Interquartile mean: the mean of the middle half (syne-tune's and rliable's summary)."""
    return float(stats.trim_mean(np.asarray(values, dtype=float), 0.25))


def iqm_interval(values: Sequence[float], resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap 95 % interval of the IQM over repetitions."""
    x = np.asarray(values, dtype=float)
    if np.all(x == x[0]) or not np.all(np.isfinite(x)):
        return (float(x[0]), float(x[0])) if np.all(x == x[0]) else (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    drawn = np.sort(x[rng.integers(0, x.size, (resamples, x.size))], axis=1)
    cut = int(0.25 * x.size)  # as scipy's trim_mean cuts
    boots = drawn[:, cut:x.size - cut].mean(axis=1)
    return float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))


def strategy_curves(results: dict[Strategy, list[ReplayCurve]], times: Sequence[float]) -> pd.DataFrame:
    """Per strategy and time: IQM of the share of the true front's hypervolume found, and its
    bootstrap 95 % interval over the repetitions."""
    rows = []
    for strategy, runs in results.items():
        for t in times:
            shares = [r.share_at(t) for r in runs]
            low, high = iqm_interval(shares)
            rows.append({"strategy": strategy.label, "sampler": strategy.sampler, "pruner": strategy.pruner,
                         "workers": strategy.workers, "seconds": t, "iqm": iqm(shares), "low": low, "high": high})
    return pd.DataFrame(rows)


def time_to_share(results: dict[Strategy, list[ReplayCurve]], share: float = 0.9) -> pd.DataFrame:
    """Per strategy: the IQM (and interval) over repetitions of the simulated time until ``share``
    of the true hypervolume was found (a repetition that never got there counts as its end time),
    and how many got there."""
    rows = []
    for strategy, runs in results.items():
        times = [r.time_to(share) if math.isfinite(r.time_to(share)) else max(r.seconds, r.budget) for r in runs]
        low, high = iqm_interval(times)
        rows.append({"strategy": strategy.label, "sampler": strategy.sampler, "pruner": strategy.pruner,
                     "workers": strategy.workers, f"hours_to_{round(share * 100)}": iqm(times) / 3600,
                     "low": low / 3600, "high": high / 3600,
                     "reached": sum(math.isfinite(r.time_to(share)) for r in runs), "repetitions": len(runs)})
    return pd.DataFrame(rows)


def _rho(x: Sequence[float], y: Sequence[float]) -> float:
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.size < 3 or np.all(x == x[0]) or np.all(y == y[0]):
        return math.nan
    return float(stats.spearmanr(x, y).statistic)


def _proxy_seconds(designs: pd.DataFrame, column: str) -> float:
    if column.startswith("proxy_") and "proxies_seconds" in designs:
        return float(designs["proxies_seconds"].mean() / sum(c.startswith("proxy_") for c in designs.columns))
    return 0.0
