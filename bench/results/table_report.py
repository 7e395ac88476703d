"""The report of a tabulated benchmark (``bench tabulate report``): the table's size and build
time, and the five analyses of :mod:`bench.results.table_analyses`, as Markdown with PNG plots
and CSV tables in one folder."""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ..core.files import write_text  # noqa: E402
from ..core.stats import SAME  # noqa: E402
from ..search.benchmark_table import BenchmarkTable  # noqa: E402
from ..search.pruners import parse_pruner  # noqa: E402
from ..search.replay import replay  # noqa: E402
from ..search.study import STALL  # noqa: E402
from ..search.space import SearchSpace  # noqa: E402
from ..search.table_front import true_front  # noqa: E402
from .replay_cache import FOLDER as REPLAYS, ReplayCache  # noqa: E402
from .replay_jobs import ReplayJob, run_replays  # noqa: E402
from .table_analyses import (Strategy, fidelity_by_epoch, proxy_correlations, replay_strategy,  # noqa: E402
                             strategy_curves, time_to_share, variance_by_epoch, verdict_calibration)

SAMPLERS = ("random", "nsga2", "tpe", "gp")
PRUNERS = ("none", "mo_asha")
WORKERS = (1, 4)


@dataclass(frozen=True)
class ReportSettings:
    """How much the report computes: replays per strategy and their budget, verdict draws."""

    repetitions: int = 30
    budget: float = 0.5  # simulated time per replay: this share of the time to train every design once
    draws: int = 200
    samplers: Sequence[str] = SAMPLERS
    repetitions_of: dict[str, int] = field(default_factory=dict)  # fewer for samplers whose replays are slow
    command: str = ""
    commit: Optional[str] = None
    jobs: int = 1  # processes replaying what the replay cache lacks (the figures do not depend on it)


def write_table_report(table: BenchmarkTable, space: SearchSpace, out: Path,
                       settings: ReportSettings = ReportSettings()) -> list[Path]:
    """Run the analyses on ``table`` and write them under ``out``; the files written."""
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    designs = table.design_frame()
    lines = [f"# Tabulated benchmark: {table.meta.get('space', space.name)}", ""]
    if settings.command:
        lines += [f"`{settings.command}` at commit {settings.commit or 'unknown'}, "
                  f"{time.strftime('%Y-%m-%d %H:%M')}; table exported at commit {table.meta.get('commit')}.", ""]
    lines += _table_section(table, designs, dict(space.objectives))

    variance = variance_by_epoch(table)
    written.append(_csv(variance, out / "variance.csv"))
    written.append(_line_plot(variance, "design_share", "design's share of the variance",
                              "Validation Dice: variance between designs over the total", out / "variance.png"))
    lines += ["## 1. Design against seed", "",
              "Share of the validation Dice's variance between designs (one-way ANOVA over designs with 2+ seeds); "
              "the rest is the seeds'.", "", variance.pipe(_markdown), ""]

    fidelity = fidelity_by_epoch(table)
    written.append(_csv(fidelity, out / "fidelity.csv"))
    written.append(_line_plot(fidelity, "spearman", "Spearman rho", "Ranking after epoch e (seed 0) against the "
                              "final ranking (mean of seeds)", out / "fidelity.png", extra="spearman_best_so_far"))
    lines += ["## 2. Fidelity", "",
              "Spearman's rho between the ranking by seed 0's validation Dice after epoch e (and by its best so far, "
              "what a pruner sees) and the final ranking (last epoch, mean over the seeds).", "",
              fidelity.pipe(_markdown), ""]

    calibration = verdict_calibration(table, draws=settings.draws)
    written.append(_csv(calibration.pairs, out / "calibration.csv"))
    lines += ["## 3. Verdict calibration", ""]
    if len(calibration.pairs):
        n = len(calibration.pairs)
        lines += [f"{n} pairs of the {len(set(calibration.pairs['reference']) | set(calibration.pairs['candidate']))} "
                  f"calibration designs; the truth is each pair's paired verdict with all its seeds; "
                  f"{calibration.draws} verdicts per pair from {calibration.seeds_drawn} seeds drawn per design.", "",
                  f"- false verdicts (a difference the truth does not call, or the opposite one): "
                  f"{calibration.false_rate():.3f} of all drawn verdicts",
                  f"- among pairs the truth calls the same ({int((calibration.pairs['truth'] == SAME).sum())}): "
                  f"{calibration.false_rate_when_same():.3f} called better or worse (alpha 0.05)",
                  f"- among pairs with a difference: {calibration.opposite_rate():.3f} called the opposite way; "
                  f"power {calibration.power():.3f}",
                  f"- a design against itself ({len(calibration.null)} designs, disjoint draws of "
                  f"{calibration.seeds_drawn} seeds each, no difference by construction): "
                  + (f"{calibration.null_rate():.3f} called better or worse (alpha 0.05). A pair the truth calls the "
                     "same may still differ a little (its seeds lack the power to see it), so this line is the "
                     "type I error proper." if len(calibration.null) else
                     f"no design has the {2 * calibration.seeds_drawn} seeds two disjoint draws take."), "",
                  calibration.pairs.pipe(_markdown), ""]
        if len(calibration.null):
            written.append(_csv(calibration.null, out / "calibration_null.csv"))
            lines += [calibration.null.pipe(_markdown), ""]
    else:
        lines += ["No calibration designs with more seeds than a draw takes yet.", ""]

    proxies = proxy_correlations(table)
    written.append(_csv(proxies, out / "proxies.csv"))
    lines += ["## 4. Zero-cost proxies", "",
              "Spearman's rho of each score of the untrained network with the final validation Dice and the test "
              "Dice (means over the seeds). Abdelfattah et al. (2021) report 0.74 for synflow on NAS-Bench-201.", "",
              proxies.pipe(_markdown), ""]

    lines += _strategies(table, space, out, settings, written)
    lines += _replay_speed(table, space, settings.samplers)
    write_text(out / "README.md", "\n".join(lines) + "\n")
    return [out / "README.md", *written]


def _table_section(table: BenchmarkTable, designs: pd.DataFrame, objectives: dict[str, str]) -> list[str]:
    meta, frame = table.meta, table.frame
    data = meta.get("data") or {}
    seeds = designs["seeds"].value_counts().sort_index()
    return ["## The table", "",
            f"- {frame['design'].nunique()} designs of {meta.get('designs_in_space', '?')} in the space, "
            f"{len(frame)} rows (design x seed); seeds per design: "
            + ", ".join(f"{n} designs with {k}" for k, n in seeds.items()),
            f"- {table.epochs} epochs of curve; data {data.get('source')} at {data.get('size')} px, "
            f"{data.get('images')} images ({data.get('train')} train / {data.get('val')} val / {data.get('test')} "
            f"test, split {data.get('split_hash')})",
            f"- build time (sum of every job's measured steps): {meta.get('build_hours', math.nan):.2f} h on "
            f"{meta.get('cpu')}, torch {meta.get('torch')}; jobs done {meta.get('jobs_done')} of {meta.get('jobs')}",
            f"- true front: {len(true_front(designs, objectives)[0])} designs on ({', '.join(objectives)})", ""]


def _strategies(table: BenchmarkTable, space: SearchSpace, out: Path, settings: ReportSettings,
                written: list[Path]) -> list[str]:
    designs = table.frame["design"].nunique()
    horizons = replay_horizons(table, settings.budget)
    whole = horizons[1] / settings.budget  # one worker's time to train every design once
    wanted = {Strategy(sampler, pruner, workers): settings.repetitions_of.get(sampler, settings.repetitions)
              for workers in WORKERS for sampler in settings.samplers for pruner in PRUNERS}
    cache = ReplayCache(out / REPLAYS, table)
    kept = {strategy: cache.load(strategy, horizons[strategy.workers]) for strategy in wanted}
    # repetition by repetition across strategies, so a report cut short keeps every strategy alike
    missing = [ReplayJob(strategy, seed, horizons[strategy.workers]) for seed in range(max(wanted.values()))
               for strategy, reps in wanted.items() if seed < reps and seed not in kept[strategy]]
    for job, curve in run_replays(table, space, missing, designs, cache, settings.jobs, replay_strategy):
        kept[job.strategy][job.seed] = curve
    results = {strategy: [kept[strategy][seed] for seed in range(reps)] for strategy, reps in wanted.items()}
    curves = pd.concat([strategy_curves({s: r for s, r in results.items() if s.workers == w},
                                        list(np.linspace(0, horizons[w], 60))) for w in WORKERS])
    written.append(_csv(curves, out / "strategies.csv"))
    reach = time_to_share(results, 0.9)
    written.append(_csv(reach, out / "time_to_90.csv"))
    written.append(_strategy_plot(curves, out / "strategies.png"))
    lines = ["## 5. Search strategies", "",
             f"Replays of each sampler without and with MO-ASHA (eta 3, rungs at epochs 1 and 3) at 1 and 4 "
             f"simulated workers, {settings.repetitions} repetitions each"
             + "".join(f" ({n} for {name}: its replays are slow)" for name, n in settings.repetitions_of.items()
                       if name in settings.samplers)
             + f". Each replay has the same simulated time: {settings.budget:g} of the time one worker takes to train "
             f"every design once with one seed ({whole / 3600:.2f} h), divided by the workers "
             f"({', '.join(f'{w} w: {h / 3600:.2f} h' for w, h in horizons.items())}). Share of the true front's "
             "hypervolume (fixed normalisation and reference) against simulated time: interquartile mean with "
             "bootstrap 95 % intervals over the repetitions. A design counts once it has trained to the end. "
             f"Every replay's curve is kept in `{REPLAYS}/` (one file per strategy, a line per repetition): a later "
             "report with more repetitions or samplers replays only what is missing.", "",
             "![strategies](strategies.png)", "",
             "Simulated hours to 90 % of the true front's hypervolume (a repetition that never got there counts "
             "with the budget's end):", "", reach.pipe(_markdown), ""]
    for workers in WORKERS:
        at = reach[reach["workers"] == workers].set_index("strategy")
        random_hours = float(at.loc[f"random, {workers} w", "hours_to_90"])
        winners = at[(at["hours_to_90"] <= random_hours / 2) & (at["reached"] == at["repetitions"])]
        lines.append(f"- {workers} worker(s): random needs {random_hours:.3f} h (IQM); "
                     + (f"reaching 90 % in at most half that: {', '.join(winners.index)}."
                        if len(winners) else "no configuration reaches 90 % in half that time (every repetition "
                        "reaching it)."))
    return lines + [""]


def replay_horizons(table: BenchmarkTable, budget: float) -> dict[int, float]:
    """Simulated seconds of every replay, by simulated workers: ``budget`` of the time one worker
    takes to train every design once with one seed, divided by the workers."""
    whole = float(table.frame.apply(_job_seconds, axis=1).groupby(table.frame["design"]).mean().sum())
    return {workers: budget * whole / workers for workers in WORKERS}


def _job_seconds(row: pd.Series) -> float:
    """A row's recorded time with every step: what one job costs a sweep."""
    return (row["build_seconds"] + row["count_seconds"] + row["latency_seconds"] + sum(row["train_seconds"])
            + sum(row["val_seconds"]) + row["test_seconds"])


EARLY = 50  # designs: about what the faster strategies train before 90 % of the true front, at one worker


def _replay_speed(table: BenchmarkTable, space: SearchSpace, samplers: Sequence[str]) -> list[str]:
    load = os.getloadavg()[0]
    job = float(table.frame.apply(_job_seconds, axis=1).mean())
    lines = ["## Replay speed", "", f"Wall time of one replay of 200 designs (or until {STALL} draws add none), "
             f"1 worker, no pruner, on this machine (load average {load:.1f} on {os.cpu_count()} cores "
             "when measured). It includes the sampler's own compute, which the simulated time leaves out and a "
             "live sweep adds to every trial, against the "
             f"{job:.1f} s a job of the table takes on average.", ""]
    for sampler in samplers:
        started = time.perf_counter()
        done = replay(table, space, sampler, parse_pruner("none", space.objectives, table.epochs), 200, 1, 0)
        wall, first = time.perf_counter() - started, done.wall_seconds[:EARLY]
        lines.append(f"- {sampler}: {wall:.2f} s for {len(done.wall_seconds)} designs: "
                     f"{first[-1] / len(first) if first else math.nan:.2f} s a design over the first {len(first)}, "
                     f"{wall / max(len(done.wall_seconds), 1):.2f} s a design over all")
    return lines + [""]


def _markdown(frame: pd.DataFrame) -> str:
    """A Markdown table: whole numbers as such, other numbers to 3 decimals."""
    shown = frame.copy()
    for column in shown.columns:
        if pd.api.types.is_integer_dtype(shown[column]):
            shown[column] = shown[column].astype(str)
    return shown.to_markdown(index=False, floatfmt=".3f")


def _csv(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path


def _line_plot(frame: pd.DataFrame, column: str, ylabel: str, title: str, path: Path,
               extra: Optional[str] = None) -> Path:
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.set_title(title, fontsize=9)
    ax.plot(frame["epoch"], frame[column], marker="o", label=column.replace("_", " "))
    if extra:
        ax.plot(frame["epoch"], frame[extra], marker="s", label=extra.replace("_", " "))
        ax.legend(loc="lower right")
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_ylim(min(0.0, float(np.nanmin(frame[column]))), 1.0)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _strategy_plot(curves: pd.DataFrame, path: Path) -> Path:
    fig, axes = plt.subplots(1, len(WORKERS), figsize=(11, 4), sharey=True)
    for ax, workers in zip(axes, WORKERS):
        for label, group in curves[curves["workers"] == workers].groupby("strategy", sort=False):
            hours = group["seconds"] / 3600
            line, = ax.plot(hours, group["iqm"], label=label.rsplit(",", 1)[0],
                            linestyle="--" if "mo_asha" in label else "-")
            ax.fill_between(hours, group["low"], group["high"], color=line.get_color(), alpha=0.12)
        ax.axhline(0.9, color="grey", linewidth=0.8)
        ax.set_title(f"{workers} simulated worker{'s' if workers > 1 else ''}")
        ax.set_xlabel("simulated hours")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("share of the true front's hypervolume (IQM)")
    axes[-1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
