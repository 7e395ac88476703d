"""Training networks end to end, with their files: data and split, training over seeds
(:func:`bench.training.seeds.train_seeds`), test evaluation, cost figures, checkpoints; one run
(``bench train``) or one per seed (``bench compare --repeats``)."""
from __future__ import annotations

import json
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Optional

import torch

from ..arch.assemble import build_checked
from ..training.checkpoint import save_checkpoint
from ..arch.config import Architecture
from ..data.dataset import SegmentationData
from ..data.lineage import lineage
from ..data.source import DataSource
from ..data.split import Split, describe_splits, load_split
from ..data.transforms import DESCRIPTION as AUGMENTATION
from ..core.device import describe_device
from ..core.errors import BenchError
from ..core.files import write_text
from ..arch.latency import Candidate, measure, measure_latency
from ..arch.latency import Protocol as LatencyProtocol
from ..arch.profile import profile_model
from ..training.recipe import Recipe
from ..search.objectives import OBJECTIVES, Objective
from ..training.metrics import CONVENTIONS as METRIC_CONVENTIONS
from ..training.seeds import SeedRun, Splits, train_seeds
from ..training.trained import TrainedNetwork, cross_validated


def prepare_data(source: DataSource, channels: int, seed: int, split_file: Optional[Path] = None
                 ) -> tuple[SegmentationData, list[Split]]:
    """The dataset ``source`` names and its splits: one loaded from ``split_file`` (checked against
    the folder), or made by the source's split mode with ``seed`` (the official test set where the
    data ships one, else 60/20/20; K folds with ``folds``)."""
    dataset = source.load(channels)
    if split_file is not None:
        if source.folds is not None:
            raise BenchError(f"--split {split_file} and --folds {source.folds} exclude each other: a split file holds "
                             "one split; the folds are made from --seed.")
        return dataset, [load_split(split_file, dataset.stems, dataset.content_hash)]
    return dataset, source.splits(dataset, seed)


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


def tracking_entry(net: TrainedNetwork, recipe: Recipe, dataset: SegmentationData, split: Split | list[Split],
                   size: int, versus: Optional[Any] = None) -> dict[str, Any]:
    """What :func:`bench.results.tracking.track_networks` logs of one network trained with its
    seeds: recipe, data and seeds as parameters; cost, test metrics (mean over seeds, with
    spread), the objectives known after training, per-epoch curves; the resolved architecture;
    every seed's weights and metrics. Cross-validated (``split`` the list of folds): the pooled
    figures, and one child entry per fold."""
    figures = net.estimates()
    metrics: dict[str, Any] = {"n_params": net.cost.train.params, "flops": net.cost.train.flops,
                               "macs": net.cost.train.macs, "deploy_n_params": net.cost.deploy.params}
    named = {"best_val_dice": "val_dice_best", "best_val_dice_all": "val_dice_all_best", "train_seconds": "train_seconds"}
    shown = {named.get(key, f"test_{key}"): figure for key, figure in figures.items()}
    shown.update({o.name: net.scored(o.compute) for o in compared_objectives()})
    for name, figure in shown.items():  # test metrics as test_*, the selection figure as a sweep names it
        metrics[name] = figure.mean
        if figure.n > 1:
            metrics.update({f"{name}_std": figure.std, f"{name}_ci95_low": figure.ci_low,
                            f"{name}_ci95_high": figure.ci_high})
    if net.latency is not None:
        metrics["latency_ms"] = net.latency["median_ms"]
        if net.latency.get("ratio") is not None:
            metrics["latency_ratio"] = net.latency["ratio"]
    dice = figures["dice_mean"]
    seeds = ", ".join(map(str, net.seeds))
    splits = split if isinstance(split, list) else [split]
    params = {**{f"recipe.{k}": v for k, v in recipe.to_dict().items() if k != "seed"},
              "seeds": ",".join(map(str, net.seeds)), "data.source": dataset.source, "data.size": size,
              "data.protocol": dataset.protocol.describe(), "data.test_split": describe_splits(splits),
              "config_hash": net.arch.hash}
    entry = {"name": net.name, "params": params, "metrics": metrics, "config": net.arch.config, "tags": {},
             "dataset": lineage(dataset, splits)}
    if net.folds:  # the pooled figures here; each fold's run, weights and curves beneath
        params["folds"] = len(net.folds)
        description = (f"{net.name}, {describe_splits(splits)}, seed(s) {seeds}, on {Path(dataset.source).name} at "
                       f"{size} px: test Dice {dice.text()} over folds and seeds")
        entry.update(seeds=[], histories=[], artifacts={}, children=[
            {**tracking_entry(fold, recipe, dataset, fold_split, size), "name": f"{net.name} · fold {fold_split.fold[0] + 1}"}
            for fold, fold_split in zip(net.folds, splits)])
    else:
        params["data.split"] = splits[0].hash[:12]
        description = f"{net.name} trained with seed(s) {seeds} on {Path(dataset.source).name} at {size} px: test Dice {dice.text()}"
        entry.update(seeds=net.seeds, histories=[run.history for run in net.runs], artifacts={
            folder.name if len(net.runs) > 1 else "": [folder / "model.pt", folder / "metrics.json"]
            for folder in net.out_dirs})
    description += f", {net.cost.train.params / 1e6:.3f} M params"
    if versus is not None:
        entry["tags"]["bench.vs_reference"] = versus.text()
        description += f"; against {versus.reference}: {versus.text()}"
    entry["description"] = description + "."
    return entry


def compared_objectives() -> list[Objective]:
    """Objectives known after training that ask to be shown where networks are compared
    (``Objective.column``): columns of ``bench compare``'s table and metrics of its runs."""
    return [o for o in OBJECTIVES if not o.before_training and o.column]


def train_network(arch: Architecture, dataset: SegmentationData, split: Split, recipe: Recipe, size: int,
                  out_dir: Path, repeats: int = 1, seed_folders: bool = True,
                  progress: Callable[[int], Any] = lambda seed: nullcontext(),
                  device: torch.device = torch.device("cpu"), latency: bool = False) -> TrainedNetwork:
    """Train ``arch`` on the split's train set ``repeats`` times (:func:`bench.training.seeds.train_seeds`:
    seeds recipe.seed, recipe.seed + 1, ...; model selection on val), score each run on test, and
    write ``split.json``, ``model.pt`` and ``metrics.json`` for each to ``out_dir/seed_<seed>``
    (``out_dir`` itself without ``seed_folders``). ``progress(seed)`` gives a context manager
    yielding the run's progress callback (or None). ``latency``: time the first run's deploy form
    on ``device`` (``compare`` times its networks together instead, :func:`time_together`)."""
    check_classes(arch, dataset)
    first = build_checked(arch, size, seed=recipe.seed)
    cost = profile_model(first, arch.name, arch.hash, arch.config["in_channels"], size)
    parts = Splits(*(dataset.subset(list(s)) for s in (split.train, split.val, split.test)))
    runs = train_seeds(arch, parts, recipe, repeats, device, lambda k, seed: progress(seed), first_model=first)
    net = TrainedNetwork(arch.name, arch, cost, runs,
                         [out_dir / f"seed_{run.seed}" if seed_folders else out_dir for run in runs])
    if latency:
        net.latency = measure_latency(first, arch.config["in_channels"], size,
                                      protocol=LatencyProtocol(device=str(device))).to_dict()
    for run, folder in zip(net.runs, net.out_dirs):
        record = {**seed_summary(net, run), "recipe": replace(recipe, seed=run.seed).to_dict(),
                  "device": {**describe_device(device), "deterministic": torch.are_deterministic_algorithms_enabled()},
                  "augmentation": AUGMENTATION if recipe.augment else "none",
                  "data": dataset.record(),
                  "split": {**split.to_record(), "file": "split.json",
                            "sizes": [len(split.train), len(split.val), len(split.test)]},
                  "metric_conventions": METRIC_CONVENTIONS}
        folder.mkdir(parents=True, exist_ok=True)
        split.save(folder / "split.json")
        save_checkpoint(folder / "model.pt", run.model, arch, record)
        write_text(folder / "metrics.json", json.dumps(record, indent=1, default=str) + "\n")
    return net


def train_splits(arch: Architecture, dataset: SegmentationData, splits: list[Split], recipe: Recipe, size: int,
                 out_dir: Path, repeats: int = 1, seed_folders: bool = True,
                 progress: Callable[[int], Any] = lambda seed: nullcontext(),
                 device: torch.device = torch.device("cpu"), latency: bool = False) -> TrainedNetwork:
    """:func:`train_network` on one split, or on each of k folds (under ``out_dir/fold_<k>``,
    :func:`bench.training.trained.cross_validated`)."""
    if len(splits) == 1:
        return train_network(arch, dataset, splits[0], recipe, size, out_dir, repeats, seed_folders, progress, device,
                             latency)
    return cross_validated([train_network(arch, dataset, split, recipe, size, out_dir / f"fold_{split.fold[0] + 1}",
                                          repeats, seed_folders, progress, device, latency and k == 0)
                            for k, split in enumerate(splits)])


def seed_summary(net: TrainedNetwork, run: SeedRun) -> dict[str, Any]:
    """One run of ``net`` as ``metrics.json`` and ``model.pt`` record it: cost, seed, test
    metrics, per-image foreground Dice, the best epoch and validation Dice, time and history."""
    summary = {"architecture": net.name, "config_hash": net.arch.hash, "params": net.cost.train.params,
               "flops": net.cost.train.flops, "cost": net.cost.to_dict(), "seed": run.seed, "test": run.test,
               "test_dice_fg_per_image": run.test_dice_fg_per_image,
               "test_images_without_foreground": run.test_images_without_foreground,
               "best_epoch": run.metrics["best_epoch"], "best_val_dice": run.metrics["val_dice"],
               "best_val_dice_all": run.metrics["val_dice_all"], "train_seconds": run.metrics["train_seconds"],
               "history": run.history}
    if net.latency is not None:
        summary["latency"] = net.latency
    return summary


def time_together(networks: list[TrainedNetwork], in_channels: int, size: int, max_seconds: float = 10.0,
                  device: torch.device = torch.device("cpu")) -> None:
    """Time the networks of one comparison (their first runs' models) interleaved in one session
    on ``device``, the first as the reference (at most ``max_seconds`` per network), and add each
    figure (with its ratio) to the network and its runs' ``metrics.json``."""
    results = measure([Candidate(n.name, n.first.model) for n in networks], in_channels, size,
                      LatencyProtocol(max_seconds=max_seconds, device=str(device)))
    for net, result in zip(networks, results):
        net.latency = result.to_dict()
        path = net.out_dirs[0] / "metrics.json"
        record = json.loads(path.read_text())
        record["latency"] = result.to_dict()
        write_text(path, json.dumps(record, indent=1, default=str) + "\n")
