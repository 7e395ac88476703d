"""Replay against life: live sweeps of one strategy on the table's own data, recipe and design
budget, each compared with the interval of many replays of that strategy on the table.

For each live sweep (study seed k, so each draws its own designs; one torch thread, as the table
was built): the share of the table's true-front hypervolume found by the designs it trained
(their table means, the replay's measure) and its wall time, from the sweep's start to its last
trial's end. For the replays (``--repetitions``, 1 simulated worker, the same number of designs):
the same two figures; the live run lands inside when both lie in the replays' 2.5-97.5 %
percentile interval. The sweep's own start (imports, data loading, MLflow) is reported apart:
the replay does not simulate it.

    python -m benchmarks.replay_vs_live --table reports/tabular/table.parquet \\
        --data ../shared/data/dsb2018_96 --runs 3 --trials 12
    python -m benchmarks.replay_vs_live --quick   # tabulates a 6-design space on synthetic data first
"""
from __future__ import annotations

import dataclasses
import json
import random
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np

from .common import parser, write

QUICK_SPACE = """
architecture: tinyunet
vary:
  encoder.block:
    cmrf: {N: {choices: [2, 4]}}
    double_conv: {}
  width_multiplier: {choices: [0.125, 0.25]}
objectives: {val_dice: maximize, params: minimize, latency_ms: minimize}
recipe: {name: default, epochs: 2, batch: 8}
data: {source: synthetic, size: 32, count: 24}
study: {sampler: random, trials: 3, seed: 0, repeats: 1, stock: false}
table: {seeds: 1}
"""


def subset_folder(data: str, size: int, images: Optional[int], seed: int, folder: Path) -> str:
    """``data`` cut to the table's image subset (the same seeded draw as ``bench tabulate``), as
    a folder of links in the images/ + masks/0/ layout; ``data`` itself when no subset is asked."""
    if images is None:
        return data
    from bench.data.source import data_source

    stems = sorted(data_source(data, size=size).load(3).stems)
    chosen = random.Random(seed).sample(stems, images) if images < len(stems) else stems
    root = Path(data)
    for sub in ("images", "masks/0"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
        for stem in chosen:
            source = next((root / sub).glob(f"{stem}.*"))
            (folder / sub / source.name).symlink_to(source.resolve())
    return str(folder)


def live_sweep(space, data: str, trials: int, seed: int, folder: Path) -> dict[str, Any]:
    """One live sweep with study seed ``seed``: the designs it trained with their end times."""
    import torch

    from bench.run.sweep import Sweep

    torch.set_num_threads(1)
    space = dataclasses.replace(space, study={**space.study, "seed": seed, "stock": False, "repeats": 1})
    sweep = Sweep(space, study=f"live-{seed}", storage=f"sqlite:///{folder}/optuna-{seed}.db",
                  tracking_uri=f"sqlite:///{folder}/mlflow-{seed}.db", data=data, trials=trials, threads=1,
                  weights_dir=None, report_dir=None)
    began = time.time()
    records = sweep.run().records
    ended = time.time()
    trained = sorted((r for r in records if r.trained and r.duplicate_of is None), key=lambda r: r.finished)
    first = min((r.started.timestamp() for r in records if r.started), default=began)
    return {"seed": seed, "samples": [r.sample for r in trained],
            "ends": [r.finished.timestamp() - first for r in trained], "setup_seconds": first - began,
            "wall_seconds": ended - began}


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--table", type=Path, default=Path("reports/tabular/table.parquet"))
    p.add_argument("--data", default="../shared/data/dsb2018_96")
    p.add_argument("--sampler", default="random")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--trials", type=int, default=12)
    p.add_argument("--repetitions", type=int, default=30)
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()

    from bench.results.table_analyses import iqm
    from bench.search.benchmark_table import BenchmarkTable, read_table, table_frame
    from bench.search.enumeration import sample_key
    from bench.search.pruners import parse_pruner
    from bench.search.replay import replay
    from bench.search.space import load_space, override_study
    from bench.search.table_front import design_values, true_front

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if args.quick:
            from bench.arch.latency import Protocol
            from bench.data.source import source_from_space
            from bench.run import tabulate
            from bench.run.tabulate import tabulate_worker
            from bench.search.table_study import TableStudy

            tabulate.TABLE_LATENCY = Protocol(max_seconds=0.1)  # checks the wiring, not the figures

            (folder / "quick_table.yaml").write_text(textwrap.dedent(QUICK_SPACE))
            space = load_space(str(folder / "quick_table.yaml"))
            storage = f"sqlite:///{folder}/table.db"
            tabulate_worker(space, source_from_space(space.data), "quick", storage, 1, None, "cpu")
            table = BenchmarkTable(table_frame(TableStudy(space, "quick", storage).rows()), {"space": "quick"})
            data, runs, trials, repetitions = "synthetic", 2, 3, 10
        else:
            table = read_table(args.table)
            space = load_space(table.meta.get("space", "tabular"))
            images = (table.meta.get("data") or {}).get("images")
            data = subset_folder(args.data, space.data["size"], images, int(space.study["seed"]), folder / "data")
            runs, trials, repetitions = args.runs, args.trials, args.repetitions
        space = override_study(space, args.sampler, "none")
        designs = table.design_frame()
        _, true_hv, norm = true_front(designs, space.objectives)
        truth = design_values(designs, space.objectives)
        index = {sample_key(json.loads(s)): int(d) for s, d in zip(table.frame["sample"], table.frame["design"])}

        replays = [replay(table, space, args.sampler, parse_pruner("none", space.objectives, table.epochs), trials, 1,
                          seed) for seed in range(repetitions)]
        shares = [r.curve[-1][1] if r.curve else 0.0 for r in replays]
        seconds = [r.seconds for r in replays]
        share_band = [float(np.percentile(shares, q)) for q in (2.5, 97.5)]
        time_band = [float(np.percentile(seconds, q)) for q in (2.5, 97.5)]

        rows = []
        for k in range(runs):
            live = live_sweep(space, data, trials, 1000 + k, folder)
            found = [truth[index[sample_key(s)]] for s in live["samples"]]
            share = _share(norm, found) / true_hv
            took = live["ends"][-1] if live["ends"] else 0.0
            rows.append({"run": k + 1, "study_seed": live["seed"], "designs": len(found), "share": share,
                         "seconds": took, "setup_seconds": live["setup_seconds"],
                         "share_inside": share_band[0] <= share <= share_band[1],
                         "time_inside": time_band[0] <= took <= time_band[1]})
    meta = {"sampler": args.sampler, "designs_per_run": trials, "replays": repetitions,
            "replay_share_interval": share_band, "replay_share_iqm": iqm(shares), "replay_seconds_iqm": iqm(seconds),
            "replay_seconds_interval": time_band, "table": str(args.table) if not args.quick else "quick (built here)",
            "what": "share: of the table's true-front hypervolume, by the designs trained (their table means); "
                    "seconds: from the first trial's start to the last one's end (live) or simulated (replay); "
                    "setup_seconds: the live sweep's start before its first trial (not simulated)"}
    write("replay_vs_live", rows, meta, args.out)


def _share(norm, found: list[dict[str, float]]) -> float:
    return norm.hypervolume(found) if found else 0.0


if __name__ == "__main__":
    main()
