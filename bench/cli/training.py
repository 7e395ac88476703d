"""``bench train``, ``bench evaluate`` and ``bench compare``: training networks and comparing them
(argument parsing over :mod:`bench.run.experiment` and :func:`bench.compare`)."""
from __future__ import annotations

import json
import math
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Optional, Sequence

import click
from rich.table import Table

from ..arch.assemble import check_input_size, plan_architecture
from ..data.source import DataSource
from ..core.errors import BenchError

from ..data.split import describe_splits
from .common import (Finite, architecture_options, apply_deterministic, check_outputs, cli, console, device_option,
                     folder_options, metrics_table, protocol_options, recipe_and_data,
                     recipe_from_options, resolve, run_dir, speed_overrides, take_source,
                     tracking_store, training_options)


@cli.command()
@architecture_options
@training_options
def train(architecture: str, classes: Optional[int], overrides: Sequence[str], data: Optional[str],
          recipe: str, epochs, batch, lr, seed: int, split_file: Optional[str], out: Optional[str],
          tracking_uri: Optional[str], experiment: Optional[str], no_tracking: bool, device: str,
          **options: Any) -> None:
    """Train an architecture on a dataset (default: synthetic) and evaluate it on the test split.

    Writes split.json, model.pt (weights + resolved config) and metrics.json to --out, and logs
    the run to MLflow (curves, metrics, cost, weights). With --folds K: once per fold (under
    --out/fold_<k>), each scored on the fold it did not see, figures per fold and pooled.
    """
    from ..core.device import resolve_device
    from ..run.experiment import tracking_entry, train_network, train_splits
    from ..results.progress import training_progress

    where, speed = resolve_device(device), speed_overrides(options)
    apply_deterministic(options)
    source = take_source(options, data)
    arch = resolve(architecture, classes, overrides)
    tracking = tracking_store(tracking_uri, no_tracking)
    out_dir = Path(out) if out else run_dir(arch.name, source)
    check_outputs(out_dir, [arch], 1, source.protocol.input_size)
    chosen, dataset, splits, size = recipe_and_data(arch.config["in_channels"], source, recipe, epochs, batch, lr,
                                                     seed, split_file, speed)
    if len(splits) > 1:
        net = train_splits(arch, dataset, splits, chosen, size, out_dir, seed_folders=False, device=where,
                           progress=lambda seed: training_progress(arch.name, console), latency=True)
        for fold, fold_split in zip(net.folds, splits):
            console.print(f"{fold_split.describe()}: test foreground Dice {fold.first.test['dice_mean_fg']:.4f}",
                          highlight=False)
        dice = net.estimates()["dice_mean_fg"]
        pooled = sum(net.per_image()) / len(net.per_image())
        console.print(f"{arch.name}, {describe_splits(splits)}: test foreground Dice {dice.text()} over the folds; "
                      f"{pooled:.4f} over every image once; wrote {out_dir}/", highlight=False)
        if tracking:
            from ..results.tracking import track_networks

            url, _ = track_networks(tracking, experiment or "bench train",
                                    [tracking_entry(net, chosen, dataset, splits, size)])
            console.print(f"MLflow: {url}", highlight=False, soft_wrap=True)
        return
    split = splits[0]
    net = train_network(arch, dataset, split, chosen, size, out_dir, seed_folders=False,
                        progress=lambda seed: training_progress(arch.name, console), device=where, latency=True)
    run = net.first
    console.print(metrics_table(f"{arch.name}: {split.describe()}; {dataset.protocol.describe()}",
                                 run.test, max(2, arch.config["classes"])))
    console.print(f"{net.cost.train.params:,} params, {net.cost.train.flops / 1e9:.3f} G FLOPs, latency "
                  f"{net.latency['median_ms']:.2f} ms; best epoch {run.metrics['best_epoch']}, trained in "
                  f"{run.metrics['train_seconds']:.0f} s on {where}; split {split.hash[:12]}; wrote {out_dir}/")
    if tracking:
        from ..results.tracking import track_networks

        entry = tracking_entry(net, chosen, dataset, split, size)
        entry["artifacts"][""].append(out_dir / "split.json")
        url, ids = track_networks(tracking, experiment or "bench train", [entry])
        console.print(f"MLflow: {url}", highlight=False, soft_wrap=True)
        console.print(f"weights: the MLflow model runs:/{ids[0]}/model (kept once, in MLflow; `bench evaluate "
                      f"runs:/{ids[0]}/model --split recorded` scores it again; --no-tracking keeps model.pt here)",
                      highlight=False, soft_wrap=True)


@cli.command()
@click.argument("checkpoint")
@click.option("--data", default=None, help="Dataset folder (default: the checkpoint's).")
@click.option("--tracking-uri", default=None, envvar="MLFLOW_TRACKING_URI",
              help="Where a runs:/ or models:/ CHECKPOINT was logged (default sqlite:///runs/mlflow.db; env "
              "MLFLOW_TRACKING_URI).")
@folder_options
@protocol_options
@click.option("--split", "split_file", default=None,
              help="Evaluate only the --subset of this split.json, or of the split the network was trained on "
              "('recorded', stored with it). Default: every image.")
@click.option("--subset", type=click.Choice(["train", "val", "test"]), default="test", show_default=True)
@device_option
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def evaluate(checkpoint: str, data: Optional[str], tracking_uri: Optional[str], split_file: Optional[str], subset: str,
             device: str, fmt: str, **options: Any) -> None:
    """Re-evaluate a trained network on a dataset, by the protocol it was trained with (resized, or
    patches with sliding windows at native size) unless told otherwise. CHECKPOINT: a model.pt
    written by `bench train`, `bench compare` or a sweep, or the MLflow model of a tracked run
    (runs:/<run id>/model, models:/<name>/<version>)."""
    from ..training.checkpoint import load_checkpoint
    from ..results.logged_models import is_model_uri, load_logged
    from ..data.layouts import Layout
    from ..data.protocol import Protocol
    from ..data.split import check_split, load_split, split_from_record
    from ..core.device import resolve_device
    from ..run.experiment import check_classes
    from ..training.loop import evaluate as evaluate_model

    where = resolve_device(device)
    if is_model_uri(checkpoint):
        from ..core.defaults import DEFAULT_TRACKING

        model, arch, record = load_logged(checkpoint, tracking_uri or DEFAULT_TRACKING)
    elif not Path(checkpoint).is_file():
        raise BenchError(f"{checkpoint}: no such file. Give a model.pt, or a runs:/<run id>/model URI of a tracked run.")
    else:
        model, arch, record = load_checkpoint(Path(checkpoint))
    stored = record.get("data") if isinstance(record.get("data"), dict) else {}
    source = take_source(options, data or stored.get("source"))
    if source.folder is None and not stored.get("source"):
        raise BenchError(f"{checkpoint} does not say what data it was trained on; give --data.")
    if not source.protocol_given:
        trained = stored.get("protocol") or {"size": stored.get("size")}
        source = source.with_protocol(Protocol.from_dict(trained))
    if data is None and source.layout is None and isinstance(stored.get("layout"), dict):
        try:  # the folders and patterns it was trained with
            source = DataSource(source.folder, Layout(**stored["layout"]), source.protocol, True)
        except TypeError:
            pass  # an older or edited record: detect the layout again
    size = source.protocol.input_size
    if size is not None:  # before any image is read
        check_input_size(arch, plan_architecture(arch), int(size))
    dataset = source.load(arch.config["in_channels"])
    check_classes(arch, dataset)
    if split_file == "recorded":
        try:
            split = check_split(split_from_record(record["split"]), checkpoint, dataset.stems)
        except (KeyError, TypeError, ValueError):
            raise BenchError(f"{checkpoint} does not carry the split it was trained on (written before bench stored "
                             "it); give --split with its split.json.") from None
        dataset = dataset.subset(list(getattr(split, subset)))
    elif split_file:
        split = load_split(Path(split_file), dataset.stems, dataset.content_hash)
        dataset = dataset.subset(list(getattr(split, subset)))
    test = evaluate_model(model.to(where), dataset, arch.config["classes"]).summary()
    if fmt == "json":
        click.echo(json.dumps({"architecture": arch.name, "images": len(dataset.stems), "device": str(where),
                               "protocol": dataset.protocol.to_dict(), **test}, indent=2))
        return
    console.print(metrics_table(f"{arch.name} on {dataset.source} ({len(dataset.stems)} images; "
                                 f"{dataset.protocol.describe()})", test, max(2, arch.config["classes"])))


@cli.command()
@click.argument("architectures", nargs=-1, required=True, metavar="ARCH...")
@training_options
@click.option("--repeats", type=click.IntRange(min=1), default=1, show_default=True,
              help="Train each network this many times, seeds SEED, SEED+1, ... (the split stays).")
@click.option("--max-seconds", type=Finite(0.0), default=10.0, show_default=True,
              help="Latency: time cap per network, if its median is not stable before.")
def compare(architectures: Sequence[str], data: Optional[str], recipe: str, epochs, batch, lr, seed: int,
            split_file: Optional[str], out: Optional[str], tracking_uri: Optional[str], experiment: Optional[str],
            no_tracking: bool, repeats: int, max_seconds: float, device: str, **options: Any) -> None:
    """Train several architectures on the same split, recipe and seeds; print and write a table
    (Markdown, CSV, LaTeX) of params, FLOPs, latency, IoU, Dice and HD95 (mean ± std over the
    seeds), and test each network against the first image by image and seed by seed (paired: the
    difference of per-image foreground Dice, its hierarchical bootstrap 95 % interval, P(better),
    and a verdict on a bootstrap and a Wilcoxon signed-rank test that must agree, Holm-adjusted).
    """
    from ..core.device import resolve_device
    from ..run.compare import compare as compare_networks, distinct_architectures
    from ..results.progress import fitting_view, training_progress
    from ..core.stats import RULE, too_few_images
    from ..results.tables import display_table

    where, speed = resolve_device(device), speed_overrides(options)
    apply_deterministic(options)
    source = take_source(options, data)
    archs = distinct_architectures(architectures)
    tracking = tracking_store(tracking_uri, no_tracking)
    chosen = recipe_from_options(recipe, epochs, batch, lr, seed, speed)
    out_dir = Path(out) if out else run_dir("compare", source)
    check_outputs(out_dir, archs, repeats, source.protocol.input_size)
    result = compare_networks(
        archs, source, recipe=chosen, recipe_name=recipe, split_file=split_file, repeats=repeats, out_dir=out_dir,
        device=where, max_seconds=max_seconds, tracking_uri=tracking, experiment=experiment,
        progress=lambda name, s: training_progress(f"{name} seed {s}", console),
        timing=lambda: console.status("timing the networks together") if console.is_terminal else nullcontext())
    dataset = result.dataset
    shown = display_table(result.table).set_index("Model").T  # a figure per row: fits a terminal
    seeds = ", ".join(map(str, result.seeds))
    title = (f"{dataset.source} ({dataset.protocol.describe()}), recipe {recipe}, {chosen.epochs} epochs, seeds "
             f"{seeds}, {describe_splits(result.splits)}")
    rich_table = Table("", *shown.columns, title=title)
    for figure, row in shown.iterrows():
        rich_table.add_row(figure, *row)
    entries = [(name, {str(figure): " ".join(str(value).split()) for figure, value in shown[name].items()})
               for name in shown.columns]
    console.print(fitting_view(rich_table, title, entries, console, "Verdict"))
    if result.folds is not None:
        folds = Table("fold", "network", "images", "test Dice (fg)", "verdict", title="per fold, and pooled")
        for row in result.folds.itertuples():
            spread = "" if math.isnan(row.test_dice_fg_std) else f" ± {row.test_dice_fg_std:.4f}"
            folds.add_row(str(row.fold), row.network, str(row.test_images), f"{row.test_dice_fg:.4f}{spread}",
                          row.verdict)
        console.print(folds)
    for test in result.versus[1:]:
        over = f"{len(result.splits)} folds, every image once" if len(result.splits) > 1 else "one split"
        console.print(f"{test.candidate} against {test.reference}, paired over {test.n} test images ({over}) and "
                      f"{repeats} seed(s) (foreground Dice): {test.text()}", highlight=False)
    if len(result.versus) > 1:
        console.print(RULE, highlight=False)
        warning = too_few_images(result.versus[1:])
        if warning:
            console.print(f"[yellow]{warning}[/]", highlight=False)
    over = f"{len(result.splits)} folds x {repeats} seed(s)" if len(result.splits) > 1 else f"{repeats} seed(s)"
    console.print(f"latency: timed interleaved in one session, ratio to {archs[0].name}; cells are mean ± std over "
                  f"{over}; wrote {', '.join(map(str, result.paths))}", highlight=False)
    if "mlflow_runs_url" in result.links:
        console.print(f"MLflow: {result.links['mlflow_runs_url']}", highlight=False, soft_wrap=True)


# --------------------------------------------------------------------------------------- sweeps
