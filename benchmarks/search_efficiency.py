"""Search efficiency: hypervolume of the front found against wall time, for random sampling,
NSGA-II and TPE, each with and without MO-ASHA pruning, several sampler seeds each, on equal time
budgets.

Each run is one sweep of a space (default ``lightweight``) in a fresh SQLite study, stopped
after ``--budget`` seconds (``Sweep(timeout=...)``; the trial under way finishes and is cut off
by its end time). Runs go ``--parallel`` at a time, one torch thread each, so that every run has
one core. The hypervolume at time t is Optuna's, of the trials trained by t (COMPLETE, within
the constraints, not repeats; pruned trials have no final figures and add nothing), with each
objective min-max normalised over every trained design of every run on that data set (0 best,
1 worst) and the reference point 1.1 in each. Per data set, the target is 90 % of the best final
hypervolume of any run; the table gives each configuration's median time to reach it.

    python -m benchmarks.search_efficiency --budget 120 --dsb-budget 240 --seeds 3 --parallel 2
"""
from __future__ import annotations

import json
import multiprocessing
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from .common import named, parser, quick_mode, write

CONFIGS = [(sampler, pruner) for sampler in ("random", "nsga2", "tpe") for pruner in ("none", "mo_asha")]
REFERENCE = 1.1


def one_run(job: dict[str, Any]) -> dict[str, Any]:
    """One sweep; returns its trials (objective values, end times) and counts."""
    import dataclasses

    import torch

    from bench.search.space import load_space, override_study
    from bench.run.sweep import Sweep

    torch.set_num_threads(1)
    space = override_study(load_space(job["space"]), job["sampler"], job["pruner"])
    space = dataclasses.replace(space, study={**space.study, "seed": job["seed"], "stock": False})
    with tempfile.TemporaryDirectory() as folder:
        sweep = Sweep(space, study="efficiency", storage=f"sqlite:///{folder}/optuna.db", tracking_uri=None,
                      data=job["data"], size=job["size"], trials=100_000, threads=1, timeout=job["budget"],
                      weights_dir=None)
        began = time.time()
        records = sweep.run().records
    origin = min([began] + [r.started.timestamp() for r in records if r.started])
    trials = [{"number": r.number, "status": r.status, "values": r.values,
               "end": (r.finished.timestamp() - origin) if r.finished else None} for r in records]
    return {**job, "trials": trials, "objectives": dict(space.objectives), "wall": time.time() - began}


def curves(runs: list[dict[str, Any]], budget: float, steps: int = 60) -> list[dict[str, Any]]:
    """Hypervolume over time of every run, normalised over all runs of one data set."""
    from bench.search.pareto import hypervolume

    objectives = runs[0]["objectives"]
    trained = [t for run in runs for t in run["trials"] if t["status"] == "trained"]
    bounds = {n: (min(t["values"][n] for t in trained), max(t["values"][n] for t in trained)) for n in objectives}

    def loss(t: dict[str, Any]) -> list[float]:
        out = []
        for name, direction in objectives.items():
            low, high = bounds[name]
            v = (t["values"][name] - low) / ((high - low) or 1.0)
            out.append(1.0 - v if direction == "maximize" else v)
        return out

    grid = [budget * (i + 1) / steps for i in range(steps)]
    for run in runs:
        done = [t for t in run["trials"] if t["status"] == "trained" and t["end"] is not None]
        run["hv"] = [hypervolume([loss(t) for t in done if t["end"] <= at], [REFERENCE] * len(objectives))
                     for at in grid]
        run["grid"] = grid
    return runs


def summarise(runs: list[dict[str, Any]], dataset: str) -> list[dict[str, Any]]:
    best = max(run["hv"][-1] for run in runs)
    target = 0.9 * best
    rows = []
    for sampler, pruner in CONFIGS:
        mine = [r for r in runs if r["sampler"] == sampler and r["pruner"] == pruner]
        if not mine:
            continue
        reach = [next((at for at, hv in zip(r["grid"], r["hv"]) if hv >= target), None) for r in mine]
        reached = sorted(t for t in reach if t is not None)
        statuses = [t["status"] for r in mine for t in r["trials"]]
        finals = [r["hv"][-1] for r in mine]
        rows.append({
            "data": dataset, "sampler": sampler, "pruner": pruner, "seeds": len(mine),
            "trained per run": round(statuses.count("trained") / len(mine), 1),
            "pruned per run": round(statuses.count("pruned") / len(mine), 1),
            "not trained per run": round(statuses.count("not trained") / len(mine), 1),
            "final HV mean": round(statistics.mean(finals), 4),
            "final HV std": round(statistics.stdev(finals), 4) if len(finals) > 1 else 0.0,
            "runs reaching 90 %": f"{len(reached)}/{len(mine)}",
            "median s to 90 %": round(statistics.median(reach), 1) if len(reached) == len(mine)
            else (round(statistics.median([t if t is not None else float("inf") for t in reach]), 1)
                  if len(reached) * 2 > len(mine) else "not reached")})
    return rows


def plot(by_dataset: dict[str, list[dict[str, Any]]], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(by_dataset), figsize=(6.5 * len(by_dataset), 4.6), squeeze=False)
    colours = {"random": "tab:gray", "nsga2": "tab:blue", "tpe": "tab:orange"}
    for ax, (dataset, runs) in zip(axes[0], by_dataset.items()):
        best = max(run["hv"][-1] for run in runs)
        for sampler, pruner in CONFIGS:
            mine = [r for r in runs if r["sampler"] == sampler and r["pruner"] == pruner]
            if not mine:
                continue
            grid = mine[0]["grid"]
            mean = [statistics.mean(r["hv"][i] for r in mine) for i in range(len(grid))]
            low = [min(r["hv"][i] for r in mine) for i in range(len(grid))]
            high = [max(r["hv"][i] for r in mine) for i in range(len(grid))]
            style = "-" if pruner == "mo_asha" else "--"
            ax.plot(grid, mean, style, color=colours[sampler], label=f"{sampler}, pruner {pruner}")
            ax.fill_between(grid, low, high, color=colours[sampler], alpha=0.08)
        ax.axhline(0.9 * best, color="black", lw=0.8, ls=":", label="90 % of the best hypervolume")
        ax.set(title=dataset, xlabel="wall time (s)", ylabel="hypervolume (normalised objectives, ref 1.1)")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8, loc="upper left")
    fig.suptitle("Hypervolume of the front found against wall time\n(mean over sampler seeds; band: min to max; "
                 "dashed: no pruning, solid: MO-ASHA)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=130)


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--space", default="lightweight")
    p.add_argument("--budget", type=float, default=150.0, help="seconds per run")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--parallel", type=int, default=2)
    p.add_argument("--dsb", default="../shared/data/dsb2018_96", help="DSB 2018 folder ('' to skip)")
    p.add_argument("--dsb-size", type=int, default=64)
    p.add_argument("--dsb-budget", type=float, default=None, help="seconds per run on DSB (default: --budget)")
    p.add_argument("--no-synthetic", action="store_true", help="DSB 2018 only")
    quick_mode(p, "the quick space, 6 s per run, one seed, random and NSGA-II, synthetic data")
    args = p.parse_args()
    configs = CONFIGS
    if args.quick:
        args.space, args.budget, args.seeds, args.parallel, args.dsb = "quick", 6.0, 1, 1, ""
        configs = [("random", "none"), ("nsga2", "none")]  # the quick space trains one epoch: nothing to prune
    datasets = {} if args.no_synthetic and args.dsb else {"synthetic": (None, None, args.budget)}
    if args.dsb:
        datasets["dsb2018_96"] = (args.dsb, args.dsb_size, args.dsb_budget or args.budget)
    jobs = [{"space": args.space, "dataset": name, "data": data, "size": size, "sampler": sampler, "pruner": pruner,
             "seed": seed, "budget": budget}
            for name, (data, size, budget) in datasets.items() for seed in range(args.seeds)
            for sampler, pruner in configs]
    args.out.mkdir(parents=True, exist_ok=True)
    partial = args.out / f"{named('search_efficiency', args)}_runs.jsonl"
    runs = []
    with multiprocessing.get_context("spawn").Pool(args.parallel) as pool:
        for run in pool.imap_unordered(one_run, jobs):
            runs.append(run)
            with partial.open("a") as f:
                f.write(json.dumps(run, default=str) + "\n")
            print(f"{run['dataset']} {run['sampler']}/{run['pruner']} seed {run['seed']}: "
                  f"{sum(t['status'] == 'trained' for t in run['trials'])} trained", flush=True)
    by_dataset = {name: curves([r for r in runs if r["dataset"] == name], budget)
                  for name, (_, _, budget) in datasets.items()}
    rows = [row for name, found in by_dataset.items() for row in summarise(found, name)]
    plot(by_dataset, args.out / f"{named('search_efficiency', args)}.png")
    write(named("search_efficiency", args), rows, {
        "space": args.space, "budget_s": {name: budget for name, (_, _, budget) in datasets.items()},
        "seeds": args.seeds, "parallel": args.parallel,
        "hypervolume": f"Optuna's, objectives min-max normalised over all trained designs of the data set, "
                       f"reference point {REFERENCE} in each",
        "target": "90 % of the best final hypervolume of any run on the data set",
        "curves": str(args.out / f"{named('search_efficiency', args)}.png")}, args.out)


if __name__ == "__main__":
    main()
