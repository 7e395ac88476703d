"""Overhead per sweep trial: the wall time of one `bench run` trial (Optuna sampling and storage,
resolving and building, counting both forms, training, test evaluation, MLflow logging) against a
bare PyTorch loop doing the same computation: the same network, initial weights, batches,
augmentation, loss, optimiser, schedule, PreciseBN, validation each epoch and test scoring.

Harness trials and bare loops alternate (bare first for even configurations, harness first for
odd ones) so that drift of the machine touches both alike."""
from __future__ import annotations

import copy
import os
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch

import bench.search.design
import bench.run.sweep
import bench.training.loop
from bench.arch.assemble import build_model
from bench.arch.config import resolve_architecture
from bench.data.transforms import augment
from bench.training.losses import SegmentationLoss
from bench.search.study import optimize_one
from bench.run.sweep import CATCH, Sweep
from bench.results.tracking import MlflowTracker
from bench.training.loop import make_optimizer, make_schedule, recompute_bn_statistics, validation_dice

from .common import parser, write

SPACE = """
description: overhead benchmark
architecture: tinyunet
vary:
  encoder.block.N: {{choices: {choices}}}
objectives: {{val_dice: maximize, params: minimize}}
recipe: {{name: default, epochs: {epochs}, batch: 8}}
data: {{source: synthetic, size: {size}, count: {count}}}
study: {{sampler: random, trials: 100, seed: 0}}
"""


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


def bare_loop(model, data, recipe, classes: int, watch: Stopwatch) -> None:
    """What a user would write by hand for the same trial."""
    split, dataset = data.split, data.dataset
    train, val, test = (dataset.subset(list(s)) for s in (split.train, split.val, split.test))
    torch.manual_seed(recipe.seed)
    g = torch.Generator().manual_seed(recipe.seed)
    loss_fn = SegmentationLoss(recipe.loss, classes)
    optimizer, n = make_optimizer(model, recipe), len(train.stems)
    schedule = make_schedule(optimizer, recipe)
    best, best_state = -1.0, None
    for _ in range(recipe.epochs):
        model.train()
        order = torch.randperm(n, generator=g)
        for b in range(n // recipe.batch + (n % recipe.batch > 1)):
            rows = order[b * recipe.batch:(b + 1) * recipe.batch]
            start = time.perf_counter()
            x, y = augment(*train.batch(rows.tolist()), g)
            watch.seconds["augment"] += time.perf_counter() - start
            loss = loss_fn(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        schedule.step()
        recompute_bn_statistics(model, train, recipe.batch)
        dice, _ = validation_dice(model, val, classes)
        if dice > best:
            best, best_state = dice, copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    bench.run.sweep.evaluate(model, test, classes)


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--count", type=int, default=96, help="synthetic images (60 %% train)")
    p.add_argument("--configs", nargs="+", type=int, default=[2, 4, 8, 16], help="CMRF N of each trial")
    args = p.parse_args()
    out = args.out.resolve()
    watch = Stopwatch()
    watch.wrap(bench.search.design, "profile_model", "counting")
    watch.wrap(bench.search.design, "forward_peak_memory", "counting")
    watch.wrap(bench.run.sweep, "train_model", "training")
    watch.wrap(bench.run.sweep, "evaluate", "test evaluation")
    watch.wrap(bench.training.loop, "augment", "augment")
    watch.wrap(MlflowTracker, "trial_started", "mlflow")
    watch.wrap(MlflowTracker, "trial_ended", "mlflow")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        Path("space.yaml").write_text(SPACE.format(choices=args.configs, epochs=args.epochs, size=args.size,
                                                   count=args.count))
        sweep = Sweep("space.yaml", study="overhead", storage="sqlite:///optuna.db", tracking_uri="sqlite:///mlflow.db")
        sweep.open()
        space, data = sweep.space, bench.run.sweep.prepare_study_data(sweep.space, None, None, 3)
        warm = resolve_architecture(space.architecture, [f"encoder.block.N={args.configs[0]}"])
        bare_loop(build_model(warm, seed=0), data, space.recipe, 2, watch)  # first-use costs, untimed
        watch.take()
        for i, n in enumerate(args.configs):
            def harness() -> dict:
                sweep.study.enqueue_trial({"encoder.block.N": n})
                start = time.perf_counter()
                sweep.listeners.trial_ended(optimize_one(sweep.study, sweep.objective, CATCH))
                return {"wall": time.perf_counter() - start, **watch.take()}

            def bare() -> dict:
                start = time.perf_counter()
                arch = resolve_architecture(space.architecture, [f"encoder.block.N={n}"])
                bare_loop(build_model(arch, seed=space.recipe.seed), data, space.recipe, 2, watch)
                return {"wall": time.perf_counter() - start, **watch.take()}

            first, second = (bare, harness) if i % 2 == 0 else (harness, bare)
            a, b = first(), second()
            h, l = (b, a) if i % 2 == 0 else (a, b)
            objective_s = h["training"] + h["counting"] + h["test evaluation"]
            rows.append({
                "N": n, "harness_s": h["wall"], "bare_s": l["wall"], "ratio": h["wall"] / l["wall"],
                "training_s": h["training"], "augment_harness_s": h["augment"], "augment_bare_s": l["augment"],
                "counting_s": h["counting"], "test_eval_s": h["test evaluation"], "mlflow_s": h["mlflow"],
                "optuna_and_rest_s": h["wall"] - objective_s - h["mlflow"],
            })
        os.chdir("/")
    ratios = [r["ratio"] for r in rows]
    write("overhead", rows, {"size": args.size, "epochs": args.epochs, "train_images": len(data.split.train),
                             "median_ratio": round(statistics.median(ratios), 4),
                             "threads": torch.get_num_threads()}, out)


if __name__ == "__main__":
    main()
