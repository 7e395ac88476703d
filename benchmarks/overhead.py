"""Overhead per sweep trial: the wall time of one `bench run` trial (Optuna sampling and storage,
resolving, planning and building, counting both forms, latency, training, test evaluation,
MLflow logging) against a bare PyTorch loop doing the same computation: the same network,
initial weights, batches, augmentation, loss, optimiser, schedule, PreciseBN, validation each
epoch and test scoring.

A trial runs in three modes: ``measured`` (latency timed per design, costs counted: the harness
before cheap trials), ``predicted`` (latency from the machine's block table, costs counted: a
design the machine has not seen) and ``predicted+cached`` (costs from the machine's cost cache
too: a design seen before). The bare loop and the three modes alternate per design, in an order
that rotates, so that drift of the machine touches all alike; every design runs ``--rounds`` times
(3) in each mode, each time in a study of its own (in one study it would be a repeat, not
trained). The per-trial fixed cost is a trial's wall time less its training (training, validation
and test scoring). The study trains no
stock network first (it would take the first enqueued slot and shift every design by one); a trial
that did not train the design asked for stops the benchmark. Designs never trained (over a budget,
should a space set one) stay out of the medians and are listed apart.

Worker start: a fresh process importing the sweep code, timed apart (paid once per worker: a
worker takes trials until the study is done).

    python -m benchmarks.overhead                  # 64 px, 1 and 3 epochs, CMRF N in 2 4 8 16, 3 rounds
    python -m benchmarks.overhead --quick          # 32 px, 1 epoch, one design
"""
from __future__ import annotations

import copy
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch

import bench.arch.cost_cache
import bench.run.trial
import bench.search.design
from bench.arch.assemble import build_model
from bench.arch.config import resolve_architecture
from bench.arch.latency_table import LatencyTable
from bench.core.cache import CACHE_ENV
from bench.data.transforms import augment
from bench.results.tracking import MlflowTracker
from bench.run.sweep import CATCH, Sweep
from bench.search.block_cover import build_latency_table
from bench.search.space import load_space
from bench.search.study import optimize_one
from bench.training.loop import (evaluate, make_optimizer, make_schedule, metric_classes, recompute_bn_statistics,
                                 training_batch, validation_dice)
from bench.training.losses import SegmentationLoss

from .common import parser, write

SPACE = """
description: overhead benchmark
architecture: tinyunet
vary:
  encoder.block.N: {{choices: {choices}}}
objectives: {{val_dice: maximize, params: minimize, latency_ms: minimize}}
recipe: {{name: default, epochs: {epochs}, batch: 8}}
data: {{source: synthetic, size: {size}, count: {count}}}
study: {{sampler: random, trials: 100, seed: 0, stock: false}}
"""
MODES = ("measured", "predicted", "predicted+cached")


class Stopwatch:
    """Cumulative seconds per label, by wrapping functions where the harness looks them up."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    def wrap(self, owner, name: str, label: str) -> None:
        original = getattr(owner, name)

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[label] += time.perf_counter() - start

        setattr(owner, name, timed)

    def take(self) -> dict[str, float]:
        taken, self.seconds = dict(self.seconds), defaultdict(float)
        return taken


def bare_loop(model, data, recipe, classes: int) -> None:
    """What a user would write by hand for the same trial."""
    dataset, split = data.dataset, data.split
    train, val, test = (dataset.subset(list(s)) for s in (split.train, split.val, split.test))
    torch.manual_seed(recipe.seed)
    g = torch.Generator().manual_seed(recipe.seed)
    loss_fn = SegmentationLoss(recipe.loss, metric_classes(classes))
    optimizer, n = make_optimizer(model, recipe), len(train.stems)
    schedule = make_schedule(optimizer, recipe)
    batches = -(-n // recipe.batch) - (n % recipe.batch == 1 and n > recipe.batch)
    best, best_state = -1.0, None
    for _ in range(recipe.epochs):
        model.train()
        order = torch.randperm(n, generator=g)
        for b in range(batches):
            x, y = training_batch(train, order[b * recipe.batch:(b + 1) * recipe.batch].tolist(), g)
            x, y = augment(x, y, g)
            loss = loss_fn(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss.item()
        schedule.step()
        recompute_bn_statistics(model, train, recipe.batch)
        dice, _ = validation_dice(model, val, metric_classes(classes))
        if dice > best:
            best, best_state = dice, copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    evaluate(model, test, classes)
    evaluate(model, val, classes)


def worker_start_seconds(repeats: int = 3) -> float:
    """Median wall time of a fresh process importing what a sweep worker imports."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import bench.run.sweep, bench.results.tracking"], check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(epochs: int, args, watch: Stopwatch, tmp: Path) -> list[dict]:
    space_file = tmp / f"space-{epochs}.yaml"
    space_file.write_text(SPACE.format(choices=args.configs, epochs=epochs, size=args.size, count=args.count))
    table_path = tmp / "latency.json"
    if not table_path.exists():
        table = LatencyTable()
        build_latency_table(load_space(str(space_file)), args.size, table)
        table.save(table_path)
    # a study per mode and round: a design trained before in a study would be a repeat, not trained
    sweeps = {(mode, r): Sweep(str(space_file), study=f"overhead-{epochs}-{mode.replace('+', '-')}-{r}",
                               storage=f"sqlite:///{tmp}/optuna.db", tracking_uri=f"sqlite:///{tmp}/mlflow.db",
                               weights_dir=None, latency="measured" if mode == "measured" else "predicted",
                               latency_table=table_path)
              for mode in MODES for r in range(args.rounds)}
    for sweep in sweeps.values():
        sweep.open()
    first = sweeps[MODES[0], 0]
    data, recipe, space = first.trial.data, first.space.recipe, first.space
    classes = resolve_architecture(space.architecture).config["classes"]
    warm = resolve_architecture(space.architecture, [f"encoder.block.N={args.configs[0]}"])
    bare_loop(build_model(warm, seed=0), data, recipe, classes)  # first-use costs, untimed
    watch.take()
    rows = []
    for i, (r, n) in enumerate((r, n) for r in range(args.rounds) for n in args.configs):
        def bare() -> dict:
            start = time.perf_counter()
            arch = resolve_architecture(space.architecture, [f"encoder.block.N={n}"])
            bare_loop(build_model(arch, seed=recipe.seed), data, recipe, classes)
            return {"wall": time.perf_counter() - start, **watch.take()}

        def harness(mode: str) -> dict:
            sweep = sweeps[mode, r]
            cache = tmp / ("cache-warm" if mode == "predicted+cached" else f"cache-cold-{epochs}-{n}-{mode}-{r}")
            os.environ[CACHE_ENV] = str(cache)
            if mode == "predicted+cached":  # this design was counted before on this machine
                arch = resolve_architecture(space.architecture, [f"encoder.block.N={n}"])
                design = bench.search.design.Design.build(arch, data.size)
                design.cost, design.memory
                watch.take()
            sweep.study.enqueue_trial({"encoder.block.N": n})
            start = time.perf_counter()
            record = optimize_one(sweep.study, sweep.objective, CATCH)
            sweep.listeners.trial_ended(record)
            if not record.trained or record.duplicate_of is not None or record.sample.get("encoder.block.N") != n:
                raise RuntimeError(f"trial {record.number} ({mode}) did not train N = {n} anew: {record.status}, "
                                   f"sample {record.sample}, repeat of {record.duplicate_of}")
            return {"wall": time.perf_counter() - start, **watch.take()}

        runs = [("bare", bare)] + [(mode, lambda mode=mode: harness(mode)) for mode in MODES]
        shift = i % len(runs)
        done = {label: run() for label, run in runs[shift:] + runs[:shift]}
        bare_s = done["bare"]["wall"]
        for mode in MODES:
            h = done[mode]
            training = h.get("training", 0.0)
            rows.append({"epochs": epochs, "round": r, "N": n, "mode": mode, "harness_s": h["wall"], "bare_s": bare_s,
                         "ratio": h["wall"] / bare_s, "training_s": training, "fixed_s": h["wall"] - training,
                         "counting_s": h.get("counting", 0.0), "latency_s": h.get("latency", 0.0),
                         "mlflow_s": h.get("mlflow", 0.0)})
    return rows


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--epochs", type=int, nargs="+", default=[1, 3])
    p.add_argument("--count", type=int, default=96, help="synthetic images (60 %% train)")
    p.add_argument("--configs", nargs="+", type=int, default=[2, 4, 8, 16], help="CMRF N of each trial")
    p.add_argument("--rounds", type=int, default=3, help="times each design runs in each mode (and bare)")
    p.add_argument("--quick", action="store_true", help="32 px, 1 epoch, 24 images, N = 2, one round")
    args = p.parse_args()
    if args.quick:
        args.size, args.epochs, args.count, args.configs, args.rounds = 32, [1], 24, [2], 1
    out = args.out.resolve()
    watch = Stopwatch()
    watch.wrap(bench.arch.cost_cache, "profile_model", "counting")
    watch.wrap(bench.arch.cost_cache, "forward_peak_memory", "counting")
    watch.wrap(bench.search.design, "measure_latency", "latency")
    watch.wrap(bench.run.trial, "train_seeds", "training")
    watch.wrap(MlflowTracker, "trial_started", "mlflow")
    watch.wrap(MlflowTracker, "trial_ended", "mlflow")
    previous, rows = os.environ.get(CACHE_ENV), []
    with tempfile.TemporaryDirectory() as tmp:
        here = os.getcwd()
        os.chdir(tmp)
        try:
            for epochs in args.epochs:
                rows += measure(epochs, args, watch, Path(tmp))
        finally:
            os.chdir(here)
            if previous is None:
                os.environ.pop(CACHE_ENV, None)
            else:
                os.environ[CACHE_ENV] = previous
    summary = {}
    for epochs in args.epochs:
        for mode in MODES:
            mine = [r for r in rows if r["epochs"] == epochs and r["mode"] == mode]
            trained = [r for r in mine if r["training_s"] > 0]  # a design over the budget trains nothing
            summary[f"{epochs} epochs, {mode}"] = {
                "median_ratio": round(statistics.median(r["ratio"] for r in trained), 4) if trained else None,
                "total_ratio": (round(sum(r["harness_s"] for r in trained) / sum(r["bare_s"] for r in trained), 4)
                                if trained else None),
                "median_fixed_s": round(statistics.median(r["fixed_s"] for r in trained), 3) if trained else None,
                "trials_trained": len(trained),
                "not_trained_s": [round(r["harness_s"], 3) for r in mine if r["training_s"] == 0]}
    write("overhead" + ("_quick" if args.quick else ""), rows,
          {"size": args.size, "images": args.count, "rounds": args.rounds, "threads": torch.get_num_threads(),
           "worker_start_s": round(worker_start_seconds(1 if args.quick else 3), 2), "summary": summary,
           "targets": "ratio <= 1.02 at 3 epochs, <= 1.10 at 1 epoch"}, out)


if __name__ == "__main__":
    main()
