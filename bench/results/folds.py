"""A cross-validated sweep's front on every fold: each member's test Dice per fold and pooled
over folds and seeds, and its paired test against the stock network over every image once (each
scored by the fold that held it out), Holm-adjusted together. The ranked folds' runs come from
the trial records, the others from the study's ``front_folds`` (:mod:`bench.run.front_folds`)."""
from __future__ import annotations

import math

import pandas as pd
from dataclasses import dataclass, field

from ..core.stats import Estimate, adjust, compare_paired, estimate
from ..search.records import SweepResult
from ..training.runs import SeedRun, pooled_scores


@dataclass
class FoldFigures:
    """One network on every fold: ``runs`` over folds and seeds; ``folds`` K; ``artifacts`` (name in
    the run -> path) the weights of the folds trained after the sweep."""

    number: int
    runs: list[SeedRun]
    folds: int
    artifacts: dict[str, str] = field(default_factory=dict)  # weights of the folds trained at the end

    @property
    def per_fold(self) -> list[float]:
        """Mean test foreground Dice over the seeds of each fold (NaN: not trained on it yet)."""
        return [estimate([r.metrics["test_dice_fg"] for r in self.runs if r.fold == k]).mean for k in range(self.folds)]

    @property
    def complete(self) -> bool:
        return not any(math.isnan(v) for v in self.per_fold)

    def pooled(self, metric: str = "test_dice_fg") -> Estimate:
        """``metric`` over every fold and seed."""
        return estimate([r.metrics[metric] for r in self.runs])


def fold_figures(result: SweepResult, stored: dict) -> dict[int, FoldFigures]:
    """The stock network (where trained) and every front member, from its record and ``stored``."""
    folds = result.info.data.get("folds")
    if not folds:
        return {}
    numbers = ([result.stock] if result.stock is not None else []) + [n for n in result.front if n != result.stock]
    out = {}
    for number in numbers:
        by_fold = stored.get(str(number), {})
        runs = [run for run in result.record(number).seeds if run.complete] + [
            SeedRun.from_dict(run) for fold in sorted(by_fold, key=int) for run in by_fold[fold]["runs"]]
        artifacts = {name: path for fold in by_fold.values() for name, path in fold.get("artifacts", {}).items()}
        out[number] = FoldFigures(number, runs, int(folds), artifacts)
    return out


def weigh_folds(result: SweepResult, stored: dict) -> None:
    """Fill ``result.all_folds`` and, with the stock network among them, ``result.all_folds_versus_stock``
    (every complete front member against it, over every image of every fold)."""
    result.all_folds = fold_figures(result, stored)
    stock = result.all_folds.get(result.stock) if result.stock is not None else None
    if stock is None or not stock.complete:
        return
    members = [f for n, f in result.all_folds.items() if n != result.stock and n in result.front and f.complete]
    tests = [compare_paired(pooled_scores(stock.runs), pooled_scores(f.runs), candidate_name=f"trial {f.number}",
                            reference_name=f"trial {stock.number} (stock)", empty=_without_foreground(f.runs))
             for f in members]
    result.all_folds_versus_stock = {f.number: t for f, t in zip(members, adjust(tests))}


def _without_foreground(runs: list[SeedRun]) -> int:
    """Test images without foreground over every fold (each fold's first run counts its own)."""
    return sum(next(r.test_images_without_foreground for r in runs if r.fold == k) for k in {r.fold for r in runs})


def fold_rows(result: SweepResult) -> pd.DataFrame:
    """One row per network re-evaluated: trial, design, role, test Dice (fg) on each fold (mean over
    seeds), pooled over folds and seeds with std, and the verdict against the stock network."""
    rows = []
    for number, figures in result.all_folds.items():
        pooled = figures.pooled()
        test = result.all_folds_versus_stock.get(number)
        rows.append({"trial": number, "design": result.record(number).label,
                     "role": "stock" if number == result.stock else "front",
                     **{f"fold_{k + 1}": v for k, v in enumerate(figures.per_fold)},
                     "test_dice_fg": pooled.mean, "test_dice_fg_std": pooled.std, "runs": pooled.n,
                     "vs_stock": test.verdict if test else "", "vs_stock_dice_fg_diff": test.mean_difference if test else None,
                     "vs_stock_ci95_low": test.ci_low if test else None, "vs_stock_ci95_high": test.ci_high if test else None,
                     "vs_stock_p_holm": test.p if test else None})
    return pd.DataFrame(rows)
