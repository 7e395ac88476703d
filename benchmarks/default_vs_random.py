"""A space's default strategy against random sampling, live (the replay of the tabulated benchmark
chose the default; this checks the choice on real training): on the table's data at another
input size, pairs of sweeps (the default sampler, random) run side by side, one torch thread each,
with the same design budget and time budget, study seeds 100, 101, ... Latency is predicted from
this machine's block table for both (built first), so timing does not depend on which sweep ran
beside which. Each sweep's designs trained within the time budget are scored by the hypervolume
under the table's fixed normalisation (latency as the ratio to the stock TinyU-Net at this size
times the table's reference median: the table's own normalised latency).

    python -m benchmarks.default_vs_random --data ../shared/data/dsb2018_96 --size 64 --runs 3 --budget 600
    python -m benchmarks.default_vs_random --quick    # synthetic, 32 px, one pair of 2-design sweeps
"""
from __future__ import annotations

import dataclasses
import json
import statistics
import tempfile
import time
from pathlib import Path

from .common import parser, write
from .replay_vs_live import subset_folder


def live_run(space, data: str, size: int, sampler: str, seed: int, trials: int, budget: float, folder: Path,
             table: Path) -> None:
    """One sweep (in its own process); writes the designs it trained, with their end times."""
    import torch

    from bench.run.sweep import Sweep
    from bench.search.space import override_study

    torch.set_num_threads(1)
    space = override_study(space, sampler, "none")
    space = dataclasses.replace(space, study={**space.study, "seed": seed, "stock": False, "repeats": 1})
    began = time.time()
    sweep = Sweep(space, study=f"live-{sampler}-{seed}", storage=f"sqlite:///{folder}/{sampler}-{seed}.db",
                  tracking_uri=f"sqlite:///{folder}/mlflow-{sampler}-{seed}.db", data=data, size=size, trials=trials,
                  threads=1, timeout=budget, weights_dir=None, report_dir=None, latency="predicted",
                  latency_table=table)
    records = sweep.run().records
    trained = [r for r in records if r.trained and r.duplicate_of is None]
    (folder / f"{sampler}-{seed}.json").write_text(json.dumps({
        "designs": [{"values": r.values, "config": r.config, "seconds": r.finished.timestamp() - began}
                    for r in trained], "wall_seconds": time.time() - began}, default=str))


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--table", type=Path, default=Path("reports/tabular/table.parquet"))
    p.add_argument("--data", default="../shared/data/dsb2018_96")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--trials", type=int, default=16, help="design budget of each sweep")
    p.add_argument("--budget", type=float, default=600.0, help="seconds of each sweep")
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()

    from bench.arch.assemble import plan_architecture
    from bench.arch.config import Architecture, resolve_architecture
    from bench.arch.latency_table import LatencyTable
    from bench.run.workers import run_processes
    from bench.search.benchmark_table import read_table
    from bench.search.block_cover import build_latency_table
    from bench.search.space import load_space
    from bench.search.table_front import true_front

    table = read_table(args.table)
    space = load_space(table.meta.get("space", "tabular"))
    default = str(space.study["sampler"])
    designs = table.design_frame()
    _, true_hv, norm = true_front(designs, space.objectives)
    reference_ms = float(table.frame["reference_latency_ms"].median())
    if args.quick:  # checks the wiring, not the figures: block timing cut short
        args.data, args.size, args.runs, args.trials, args.budget = "synthetic", 32, 1, 2, 30.0
        from bench.arch import latency_table
        from bench.arch.latency import Protocol

        latency_table.BLOCK_PROTOCOL = Protocol(
            warmup=1, min_repeats=3, max_repeats=5, max_seconds=0.02)
        space = dataclasses.replace(space, recipe=dataclasses.replace(space.recipe, epochs=2))  # trials in seconds
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        images = (table.meta.get("data") or {}).get("images")
        data = args.data if args.quick else subset_folder(args.data, args.size, images, int(space.study["seed"]),
                                                          folder / "data")
        latency = LatencyTable()
        build_latency_table(space, args.size, latency)
        latency.save(folder / "latency.json")
        stock = resolve_architecture(space.architecture)
        latency.add([stock], args.size, [stock])  # the reference: not a design of the space, nor of its widths
        stock_ms = latency.predict(stock, args.size, plan_architecture(stock)).ms
        for k in range(args.runs):
            seed = 100 + k
            codes = run_processes(live_run, [(space, data, args.size, sampler, seed, args.trials, args.budget,
                                              folder, folder / "latency.json") for sampler in (default, "random")],
                                  "live sweep")
            if any(codes):
                raise SystemExit(f"a live sweep failed (exit codes {codes})")
            for sampler in (default, "random"):
                found = json.loads((folder / f"{sampler}-{seed}.json").read_text())
                within = [d for d in found["designs"] if d["seconds"] <= args.budget]
                points = [{**d["values"], "latency_ms": reference_ms * latency.predict(
                    Architecture(d["config"]["name"], d["config"], stock.source), args.size).ms / stock_ms}
                          for d in within]
                rows.append({"run": k + 1, "seed": seed, "sampler": sampler, "designs": len(within),
                             "hypervolume": norm.hypervolume(points), "share_of_table_front": norm.hypervolume(points) / true_hv,
                             "wall_seconds": found["wall_seconds"]})
    by = {s: [r["hypervolume"] for r in rows if r["sampler"] == s] for s in (default, "random")}
    wins = sum(a > b for a, b in zip(by[default], by["random"]))
    write("default_vs_random" + ("_quick" if args.quick else ""), rows, {
        "space": space.name, "default": default, "data": args.data, "size": args.size, "trials": args.trials,
        "budget_seconds": args.budget, "runs": args.runs, "mean_hypervolume": {s: statistics.mean(v) for s, v in by.items()},
        "default_wins": f"{wins} of {args.runs}",
        "normalisation": "the table's: its ranges of val_dice, log10 params and log10 normalised latency, reference 1.1"},
        args.out)


if __name__ == "__main__":
    main()
