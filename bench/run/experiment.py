"""Training runs end to end, with their files: data and split, training, test evaluation, cost
figures, checkpoint; one run (``bench train``) or one per seed (``bench compare --repeats``)."""
from __future__ import annotations

import json
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Optional

import torch
from torch import nn

from ..arch.assemble import build_checked
from ..training.checkpoint import save_checkpoint
from ..arch.config import Architecture
from ..data.dataset import SegmentationData, load_data
from ..data.layouts import Layout
from ..data.protocol import Protocol
from ..data.split import Split, load_split, make_split
from ..data.transforms import DESCRIPTION as AUGMENTATION
from ..core.device import describe_device
from ..core.errors import BenchError
from ..core.files import write_text
from ..arch.latency import Candidate, measure, measure_latency
from ..arch.latency import Protocol as LatencyProtocol
from ..arch.profile import profile_model
from ..training.recipe import Recipe
from ..core.stats import Estimate, estimate, mean_over_runs
from ..training.loop import Progress, evaluate, train_model


def prepare_data(data: Optional[str], protocol: Protocol, channels: int, seed: int,
                 split_file: Optional[Path] = None, layout: Optional[Layout] = None
                 ) -> tuple[SegmentationData, Split]:
    """The dataset by ``protocol`` and its split: loaded from ``split_file`` (checked against the
    folder), or made with ``seed`` (60/20/20)."""
    dataset = load_data(data, protocol, channels, layout)
    if split_file is not None:
        return dataset, load_split(split_file, dataset.stems, dataset.content_hash)
    return dataset, make_split(dataset.stems, dataset.source, dataset.content_hash, seed)


def check_classes(arch: Architecture, data: SegmentationData) -> None:
    """Raises BenchError unless the network's outputs fit the masks' classes."""
    outputs = arch.config["classes"]
    if outputs == data.classes or (outputs == 1 and data.classes == 2):
        return
    sigmoid = " (or 1, for a single sigmoid output)" if data.classes == 2 else ""
    raise BenchError(
        f"{arch.name} has classes: {outputs}, but the masks of {data.source} have {data.classes} "
        f"classes ({data.encoding}). Use --classes {data.classes}{sigmoid}."
    )


@dataclass
class RunOutcome:
    name: str
    summary: dict[str, Any]  # test metrics, cost, timing, per-image test foreground Dice: plain values
    out_dir: Path
    model: nn.Module  # trained, best validation weights


@dataclass
class RepeatedRuns:
    """One network trained once per seed on one split; figures over the seeds."""

    name: str
    runs: list[RunOutcome]

    @property
    def seeds(self) -> list[int]:
        return [run.summary["seed"] for run in self.runs]

    @property
    def first(self) -> RunOutcome:
        return self.runs[0]

    def estimates(self) -> dict[str, Estimate]:
        """Every test metric, the best validation Dice and the training time over the seeds."""
        flat = [{**run.summary["test"], "best_val_dice": run.summary["best_val_dice"],
                 "best_val_dice_all": run.summary["best_val_dice_all"],
                 "train_seconds": run.summary["train_seconds"]} for run in self.runs]
        return {name: estimate([f[name] for f in flat]) for name in flat[0]}

    def per_image(self) -> list[float]:
        """Per-image test foreground Dice, averaged over the seeds (split order)."""
        return mean_over_runs(self.seed_scores())

    def seed_scores(self) -> list[list[float]]:
        """(runs, images) per-image test foreground Dice of each seed, for paired comparisons."""
        return [run.summary["test_dice_fg_per_image"] for run in self.runs]


def tracking_entry(net: RepeatedRuns, recipe: Recipe, dataset: SegmentationData, split: Split, size: int,
                   config: dict[str, Any], versus: Optional[Any] = None) -> dict[str, Any]:
    """What :func:`bench.results.tracking.track_networks` logs of one network trained with its seeds:
    recipe, data and seeds as parameters; cost, test metrics (mean over seeds, with spread),
    per-epoch curves; the resolved architecture; every seed's weights and metrics."""
    first = net.first.summary
    figures = net.estimates()
    metrics: dict[str, Any] = {"n_params": first["params"], "flops": first["flops"], "macs": first["cost"]["macs"],
                               "deploy_n_params": first["cost"]["deploy"]["params"]}
    for key, figure in figures.items():  # test metrics as test_*, the selection figure as a sweep names it
        name = {"best_val_dice": "val_dice_best", "best_val_dice_all": "val_dice_all_best",
                "train_seconds": "train_seconds"}.get(key, f"test_{key}")
        metrics[name] = figure.mean
        if figure.n > 1:
            metrics.update({f"{name}_std": figure.std, f"{name}_ci95_low": figure.ci_low,
                            f"{name}_ci95_high": figure.ci_high})
    if "latency" in first:
        metrics["latency_ms"] = first["latency"]["median_ms"]
        if first["latency"].get("ratio") is not None:
            metrics["latency_ratio"] = first["latency"]["ratio"]
    dice = figures["dice_mean"]
    seeds = ", ".join(map(str, net.seeds))
    description = (f"{net.name} trained with seed(s) {seeds} on {Path(dataset.source).name} at {size} px: test Dice "
                   f"{dice.text()}, {first['params'] / 1e6:.3f} M params")
    tags = {}
    if versus is not None:
        tags["bench.vs_reference"] = versus.text()
        description += f"; against {versus.reference}: {versus.text()}"
    return {
        "name": net.name, "seeds": net.seeds, "histories": [run.summary["history"] for run in net.runs],
        "params": {**{f"recipe.{k}": v for k, v in recipe.to_dict().items() if k != "seed"},
                   "seeds": ",".join(map(str, net.seeds)), "data.source": dataset.source, "data.size": size,
                   "data.protocol": dataset.protocol.describe(),
                   "data.split": split.hash[:12], "config_hash": first["config_hash"]},
        "metrics": metrics, "config": config, "description": description + ".", "tags": tags,
        "artifacts": {run.out_dir.name if len(net.runs) > 1 else "": [run.out_dir / "model.pt",
                                                                       run.out_dir / "metrics.json"]
                      for run in net.runs},
    }


def run_repeats(arch: Architecture, dataset: SegmentationData, split: Split, recipe: Recipe, size: int,
                out_dir: Path, repeats: int,
                progress: Callable[[int], Any] = lambda seed: nullcontext(),
                device: torch.device = torch.device("cpu")) -> RepeatedRuns:
    """``repeats`` runs of :func:`run_training` with seeds recipe.seed, recipe.seed + 1, ...
    (initial weights, batch order and augmentation change; the split does not), each in
    ``out_dir/seed_<seed>``. ``progress(seed)`` gives a context manager yielding the run's
    progress callback (or None)."""
    runs = []
    for k in range(repeats):
        seed = recipe.seed + k
        with progress(seed) as report:
            runs.append(run_training(arch, dataset, split, replace(recipe, seed=seed), size,
                                     out_dir / f"seed_{seed}", report, latency=False, device=device))
    return RepeatedRuns(arch.name, runs)


def run_training(arch: Architecture, dataset: SegmentationData, split: Split, recipe: Recipe,
                 size: int, out_dir: Path, progress: Optional[Progress] = None,
                 latency: bool = True, device: torch.device = torch.device("cpu")) -> RunOutcome:
    """Train ``arch`` on the split's train set (model selection on val) on ``device``, evaluate on
    test, time the deploy form there, and write ``split.json``, ``model.pt`` and ``metrics.json``
    to ``out_dir``."""
    check_classes(arch, dataset)
    model = build_checked(arch, size, seed=recipe.seed)
    cost = profile_model(model, arch.name, arch.hash, arch.config["in_channels"], size)
    train, val, test = (dataset.subset(list(s)) for s in (split.train, split.val, split.test))
    result = train_model(model, train, val, recipe, arch.config["classes"], progress, device=device)
    metrics = evaluate(model, test, arch.config["classes"])
    summary = {
        "architecture": arch.name,
        "config_hash": arch.hash,
        "params": cost.train.params,
        "flops": cost.train.flops,
        "cost": cost.to_dict(),
        "seed": recipe.seed,
        "test": metrics.summary(),
        "test_dice_fg_per_image": [float(v) for v in metrics.per_image_mean_fg_paired("dice")],
        "test_images_without_foreground": metrics.images_without_foreground(),
        "best_epoch": result.best_epoch,
        "best_val_dice": result.best_val_dice,
        "best_val_dice_all": result.best_val_dice_all,
        "train_seconds": result.seconds,
        "history": result.history,
    }
    if latency:  # compare times its networks together instead (time_together)
        summary["latency"] = measure_latency(model, arch.config["in_channels"], size,
                                             protocol=LatencyProtocol(device=str(device))).to_dict()
    record = {
        **summary,
        "recipe": recipe.to_dict(),
        "device": {**describe_device(device), "deterministic": torch.are_deterministic_algorithms_enabled()},
        "augmentation": AUGMENTATION if recipe.augment else "none",
        "data": dataset.record(),
        "split": {"hash": split.hash, "file": "split.json",
                  "sizes": [len(split.train), len(split.val), len(split.test)]},
        "metric_conventions": metrics.conventions,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    split.save(out_dir / "split.json")
    save_checkpoint(out_dir / "model.pt", model, arch, record)
    write_text(out_dir / "metrics.json", json.dumps(record, indent=1, default=str) + "\n")
    return RunOutcome(arch.name, summary, out_dir, model)


def time_together(outcomes: list[RunOutcome], in_channels: int, size: int, max_seconds: float = 10.0,
                  device: torch.device = torch.device("cpu")) -> None:
    """Time the networks of one comparison interleaved in one session on ``device``, the first
    as the reference (at most ``max_seconds`` per network), and add each figure (with its ratio)
    to the summary and ``metrics.json``."""
    results = measure([Candidate(o.name, o.model) for o in outcomes], in_channels, size,
                      LatencyProtocol(max_seconds=max_seconds, device=str(device)))
    for outcome, result in zip(outcomes, results):
        outcome.summary["latency"] = result.to_dict()
        path = outcome.out_dir / "metrics.json"
        record = json.loads(path.read_text())
        record["latency"] = result.to_dict()
        write_text(path, json.dumps(record, indent=1, default=str) + "\n")
