"""The ``bench`` command line. Bad input exits with status 2 and a one-paragraph message."""
from __future__ import annotations

import json
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import click
from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from . import __version__
from .assemble import build_model, check_input_size, plan_architecture
from .blocks import BLOCKS
from .counting import count_params
from .config import Architecture, builtin_architectures, load_yaml, resolve_architecture
from .errors import BenchError

console = Console()


class UserError(click.ClickException):
    """A BenchError on its way to the terminal: printed as ``Error: ...``, exit status 2."""

    exit_code = 2


class BenchGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BenchError as exc:
            raise UserError(str(exc)) from None


@click.group(cls=BenchGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="bench")
def cli() -> None:
    """Benchmark lightweight medical image segmentation networks built from pluggable blocks."""


def architecture_options(command: Callable) -> Callable:
    """``ARCH``, ``--classes`` and ``--set``: the options of every command taking an architecture."""
    command = click.option(
        "--set", "overrides", multiple=True, metavar="PATH=VALUE",
        help="Override one config value, e.g. --set encoder.block.N=4 (repeatable). Setting a "
        "block's type replaces that block whole.",
    )(command)
    command = click.option(
        "--classes", type=click.IntRange(min=1), default=None,
        help="Number of output classes (same as --set classes=N).",
    )(command)
    return click.argument("architecture", metavar="ARCH")(command)


def resolve(architecture: str, classes: Optional[int], overrides: Sequence[str]) -> Architecture:
    sets = ([f"classes={classes}"] if classes is not None else []) + list(overrides)
    return resolve_architecture(architecture, sets)


@cli.command("list")
@click.argument("what", type=click.Choice(["blocks", "architectures", "spaces"]))
def list_(what: str) -> None:
    """List registered blocks, built-in architectures or built-in search spaces."""
    if what == "spaces":
        from .space import builtin_spaces, load_space

        table = Table("space", "architecture", "varies", "objectives", "description", title="Search spaces")
        for name in builtin_spaces():
            space = load_space(name)
            table.add_row(name, space.architecture, ", ".join(space.vary),
                          ", ".join(f"{k} ({v[:3]})" for k, v in space.objectives.items()), space.description)
        console.print(table)
        return
    if what == "blocks":
        table = Table("block", "slot kind", "parameters", "description", title="Blocks")
        for entry in BLOCKS:
            params = ", ".join(p.describe() for p in entry.params.values()) or "-"
            kind = entry.kind + (" (keeps channels)" if entry.same_channels else "")
            table.add_row(entry.name, kind, params, entry.summary)
    else:
        table = Table("architecture", "description", "file", title="Architectures")
        for name, path in builtin_architectures().items():
            data, _ = load_yaml(path)
            table.add_row(name, str(data.get("description", "")), str(path))
    console.print(table)


@cli.command()
@architecture_options
@click.option("--print-config", is_flag=True, help="Print the resolved config as YAML.")
def validate(architecture: str, classes: Optional[int], overrides: Sequence[str],
             print_config: bool) -> None:
    """Check an architecture (name or YAML file) and show how its blocks are wired.

    Resolves inheritance and overrides, checks every block's parameters and channel arithmetic,
    and builds the network.
    """
    arch = resolve(architecture, classes, overrides)
    plan = plan_architecture(arch)
    table = Table("where", "config path", "block", "channels", "params",
                  title=f"{arch.name} ({arch.source})")
    for placement in plan.placements():
        table.add_row(placement.where, placement.path, placement.entry.name,
                      f"{placement.in_channels} -> {placement.out_channels}",
                      f"{count_params(placement.build()):,}")
    for level, gather in enumerate(plan.build_gathers() or []):
        table.add_row(f"skip level {level + 1}", "skips.gather", plan.skip_gather,
                      f"levels {', '.join(str(i + 1) for i in gather.sources)} -> "
                      f"{plan.skip_widths[level]}", f"{count_params(gather):,}")
    console.print(table)
    total = count_params(build_model(arch))
    console.print(f"[green]valid[/green]: {total:,} parameters, total stride {plan.stride}, "
                  f"config hash {arch.hash[:12]}")
    if print_config:
        click.echo(arch.to_yaml())


@cli.command()
@architecture_options
@click.option("--size", type=click.IntRange(min=1), default=256, show_default=True,
              help="Input height and width in pixels.")
@click.option("--batch", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True)
def profile(architecture: str, classes: Optional[int], overrides: Sequence[str], size: int,
            batch: int, fmt: str) -> None:
    """Count parameters, MACs and paper-FLOPs (2 x MACs) of an architecture, train and deploy
    forms (the deploy form has every re-parameterisable block fused)."""
    from .profile import profile_model

    arch = resolve(architecture, classes, overrides)
    plan = plan_architecture(arch)
    check_input_size(arch, plan, size)
    model = build_model(arch, plan=plan)
    record = profile_model(model, arch.name, arch.hash, arch.config["in_channels"], size, batch)
    if fmt == "json":
        click.echo(json.dumps(record.to_dict(), indent=2))
        return
    train, deployed = record.train, record.deploy
    table = Table("", "train", "deploy",
                  title=f"{arch.name} at {'x'.join(map(str, record.input_shape))}")
    rows = [
        ("parameters", f"{train.params:,}", f"{deployed.params:,}"),
        ("MACs", f"{train.macs / 1e9:.3f} G", f"{deployed.macs / 1e9:.3f} G"),
        ("paper FLOPs (2 x MACs)", f"{train.flops / 1e9:.3f} G", f"{deployed.flops / 1e9:.3f} G"),
        *((f"  MACs: {op}", f"{n / 1e9:.4f} G", f"{deployed.macs_by_operator.get(op, 0) / 1e9:.4f} G")
          for op, n in train.macs_by_operator.items()),
        ("uncounted ops", _ops(train.uncounted_ops) or "none", _ops(deployed.uncounted_ops) or "none"),
        ("zero by convention", _ops(train.zero_cost_ops) or "none", ""),
    ]
    for row in rows:
        table.add_row(*row)
    console.print(table)
    console.print(f"output {'x'.join(map(str, record.output_shape))}; counter: {record.counter}; "
                  f"torch {record.torch}; config hash {record.config_hash[:12]}")


def _ops(ops: dict[str, int]) -> str:
    return ", ".join(f"{op} x{n}" for op, n in ops.items())



# --------------------------------------------------------------------------- data and training


@cli.group()
def data() -> None:
    """Look at datasets."""


@data.command("inspect")
@click.argument("path", type=click.Path(file_okay=False))
@click.option("--layout", default=None, help="Force a layout: image_label, masks_per_class, images_masks.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def data_inspect(path: str, layout: Optional[str], fmt: str) -> None:
    """Detect a dataset folder's layout and report pairs, sizes, classes and class balance."""
    from .data.dataset import inspect_folder

    report = inspect_folder(Path(path), layout)
    if fmt == "json":
        click.echo(json.dumps(report, indent=2))
        return
    table = Table(show_header=False, title=f"dataset {path}")
    for key in ("layout", "pairs", "sizes", "channels", "mask_encoding", "classes", "class_balance"):
        table.add_row(key.replace("_", " "), str(report[key]))
    table.add_row("problems found", "; ".join(report["notes"]) or "none")
    console.print(table)


def training_options(command: Callable) -> Callable:
    """Data and recipe options shared by ``train`` and ``compare``."""
    options = [
        click.option("--data", default=None, help="Dataset folder (default: the built-in synthetic set)."),
        click.option("--layout", default=None, help="Force the dataset layout."),
        click.option("--size", type=click.IntRange(min=8), default=None,
                     help="Train and evaluate at SIZE x SIZE (default: 64 for synthetic, else the images' size)."),
        click.option("--recipe", default="default", show_default=True,
                     help="default, tinyunet, alnet or lmnet (the papers' recipes)."),
        click.option("--epochs", type=click.IntRange(min=1), default=None),
        click.option("--batch", type=click.IntRange(min=1), default=None),
        click.option("--lr", type=float, default=None),
        click.option("--seed", type=int, default=0, show_default=True, help="Split and training seed."),
        click.option("--split", "split_file", type=click.Path(dir_okay=False), default=None,
                     help="Reuse a split.json (checked against the folder)."),
        click.option("--out", type=click.Path(file_okay=False), default=None, help="Output folder."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _recipe_and_data(arch_channels: int, data: Optional[str], layout: Optional[str], size: Optional[int],
                     recipe: str, epochs, batch, lr, seed: int, split_file: Optional[str]):
    from .experiment import prepare_data
    from .recipe import get_recipe

    chosen = get_recipe(recipe, epochs=epochs, batch=batch, lr=lr, seed=seed)
    dataset, split = prepare_data(data, size, arch_channels, seed,
                                  Path(split_file) if split_file else None, layout)
    return chosen, dataset, split, int(dataset.images.shape[-1])


def _run_dir(kind: str, data: Optional[str]) -> Path:
    name = Path(data).name if data else "synthetic"
    return Path("runs") / f"{kind}-{name}-{time.strftime('%Y%m%d-%H%M%S')}"


@contextmanager
def training_progress(label: str):
    """A rich progress callback for :func:`bench.train.train_model`, or None off a terminal."""
    if not console.is_terminal:
        yield None
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True) as progress:
        epochs = progress.add_task(f"{label}: epoch", total=None)
        batches = progress.add_task("batch", total=None)

        def report(event: str, done: int, total: int, values: dict) -> None:
            if event == "batch":
                progress.update(batches, completed=done, total=total,
                                description=f"batch (loss {values['loss']:.3f})")
            else:
                progress.update(epochs, completed=done, total=total,
                                description=f"{label}: epoch (val Dice {values['val_dice_mean']:.3f})")

        yield report


def _metrics_table(title: str, test: dict, classes: int) -> Table:
    table = Table("metric", *(f"class {c}" for c in range(classes)), "mean", "mean fg", title=title)
    for name in ("dice", "iou", "precision", "recall", "hd95"):
        table.add_row(name, *(f"{test[f'{name}_c{c}']:.4f}" for c in range(classes)),
                      f"{test[f'{name}_mean']:.4f}", f"{test[f'{name}_mean_fg']:.4f}")
    table.add_row("accuracy", *([""] * classes), f"{test['accuracy']:.4f}", "")
    return table


@cli.command()
@architecture_options
@training_options
def train(architecture: str, classes: Optional[int], overrides: Sequence[str], data: Optional[str],
          layout: Optional[str], size: Optional[int], recipe: str, epochs, batch, lr, seed: int,
          split_file: Optional[str], out: Optional[str]) -> None:
    """Train an architecture on a dataset (default: synthetic) and evaluate it on the test split.

    Writes split.json, model.pt (weights + resolved config) and metrics.json to --out.
    """
    from .experiment import run_training

    arch = resolve(architecture, classes, overrides)
    chosen, dataset, split, size = _recipe_and_data(arch.config["in_channels"], data, layout, size,
                                                    recipe, epochs, batch, lr, seed, split_file)
    out_dir = Path(out) if out else _run_dir(arch.name, data)
    with training_progress(arch.name) as progress:
        outcome = run_training(arch, dataset, split, chosen, size, out_dir, progress)
    s = outcome.summary
    console.print(_metrics_table(f"{arch.name}: test set ({len(split.test)} images, {size} px)",
                                 s["test"], max(2, arch.config["classes"])))
    console.print(f"{s['params']:,} params, {s['flops'] / 1e9:.3f} G FLOPs, latency "
                  f"{s['latency']['median_ms']:.2f} ms; best epoch {s['best_epoch']}, trained in "
                  f"{s['train_seconds']:.0f} s; split {split.hash[:12]}; wrote {out_dir}/")


@cli.command()
@click.argument("checkpoint", type=click.Path(dir_okay=False, exists=True))
@click.option("--data", default=None, help="Dataset folder (default: the checkpoint's).")
@click.option("--layout", default=None)
@click.option("--size", type=click.IntRange(min=8), default=None, help="Default: the training size.")
@click.option("--split", "split_file", type=click.Path(dir_okay=False), default=None,
              help="Evaluate only the --subset of this split (default: every image).")
@click.option("--subset", type=click.Choice(["train", "val", "test"]), default="test", show_default=True)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def evaluate(checkpoint: str, data: Optional[str], layout: Optional[str], size: Optional[int],
             split_file: Optional[str], subset: str, fmt: str) -> None:
    """Re-evaluate a checkpoint written by `bench train` on a dataset."""
    from .checkpoint import load_checkpoint
    from .data.dataset import load_data
    from .data.split import load_split
    from .experiment import check_classes
    from .train import evaluate as evaluate_model

    model, arch, record = load_checkpoint(Path(checkpoint))
    source = data or record["data"]["source"]
    dataset = load_data(source, size or record["data"]["size"], arch.config["in_channels"], layout)
    check_classes(arch, dataset)
    if split_file:
        split = load_split(Path(split_file), dataset.stems, dataset.content_hash)
        dataset = dataset.subset(list(getattr(split, subset)))
    test = evaluate_model(model, dataset, arch.config["classes"]).summary()
    if fmt == "json":
        click.echo(json.dumps({"architecture": arch.name, "images": len(dataset.stems), **test}, indent=2))
        return
    console.print(_metrics_table(f"{arch.name} on {source} ({len(dataset.stems)} images)", test,
                                 max(2, arch.config["classes"])))


@cli.command()
@click.argument("architectures", nargs=-1, required=True, metavar="ARCH...")
@training_options
def compare(architectures: Sequence[str], data: Optional[str], layout: Optional[str], size: Optional[int],
            recipe: str, epochs, batch, lr, seed: int, split_file: Optional[str], out: Optional[str]) -> None:
    """Train several architectures on the same split, recipe and seed; print and write a table
    (Markdown, CSV, LaTeX) of params, FLOPs, latency, IoU and Dice per class and mean."""
    from .experiment import check_classes, run_training
    from .tables import results_table, write_tables

    archs = [resolve(name, None, ()) for name in architectures]
    chosen, dataset, split, size = _recipe_and_data(archs[0].config["in_channels"], data, layout, size,
                                                    recipe, epochs, batch, lr, seed, split_file)
    for arch in archs:  # refuse a mismatch before any training starts
        check_classes(arch, dataset)
    out_dir = Path(out) if out else _run_dir("compare", data)
    summaries = []
    for arch in archs:
        with training_progress(arch.name) as progress:
            summaries.append(run_training(arch, dataset, split, chosen, size, out_dir / arch.name, progress).summary)
    table = results_table(summaries, dataset.classes)
    paths = write_tables(table, out_dir)
    rich_table = Table(*table.columns, title=f"{dataset.source} at {size} px, recipe {recipe}, "
                       f"{chosen.epochs} epochs, seed {seed}, split {split.hash[:12]}")
    for row in table.itertuples(index=False):
        rich_table.add_row(*(f"{v:.2f}" if isinstance(v, float) else str(v) for v in row))
    console.print(rich_table)
    console.print(f"wrote {', '.join(map(str, paths))}")


# --------------------------------------------------------------------------------------- sweeps


@cli.command()
@click.option("--space", "space_ref", required=True, help="Search space: built-in name or YAML path.")
@click.option("--study", "study_name", default=None, help="Study name (default: the space's); "
              "an existing study is resumed.")
@click.option("--trials", type=click.IntRange(min=1), default=None,
              help="Completed trials to reach (default: the space's).")
@click.option("--data", default=None, help="Dataset folder (default: the space's, usually synthetic).")
@click.option("--size", type=click.IntRange(min=8), default=None)
@click.option("--storage", default=None, envvar="BENCH_STORAGE",
              help="Optuna storage URL (default: sqlite:///runs/optuna.db).")
@click.option("--timeout", type=float, default=None, help="Stop starting trials after this many seconds.")
@click.option("--heartbeat", type=click.IntRange(min=1), default=10, show_default=True,
              help="Seconds between trial heartbeats; a trial silent for 3x this is failed.")
@click.option("--tracking-uri", default=None, envvar="MLFLOW_TRACKING_URI",
              help="MLflow tracking URI (default: sqlite:///runs/mlflow.db).")
@click.option("--quiet", is_flag=True, help="Only the final front.")
def run(space_ref: str, study_name: Optional[str], trials: Optional[int], data: Optional[str],
        size: Optional[int], storage: Optional[str], timeout: Optional[float], heartbeat: int,
        tracking_uri: Optional[str], quiet: bool) -> None:
    """Sweep a search space with Optuna, track every trial in MLflow, print the Pareto front,
    and write the study's report to reports/<study>/."""
    from .report import write_report
    from .search import (DEFAULT_STORAGE, bind_study_data, completed, front, make_objective, open_study,
                         prepare_study_data, run_study)
    from .space import load_space
    from .tracking import DEFAULT_TRACKING, SweepTracker

    space = load_space(space_ref)
    name = study_name or space.name
    target = trials or int(space.study["trials"])
    study_data = prepare_study_data(space, data, size)
    study = open_study(space, name, storage or DEFAULT_STORAGE, heartbeat, 3 * heartbeat)
    bind_study_data(study, space, study_data)

    tracker = SweepTracker(tracking_uri or DEFAULT_TRACKING, study, space.source, {
        "source": study_data.dataset.source, "size": study_data.size, "split_hash": study_data.split.hash,
        "objectives": space.objectives, "architecture": space.architecture})

    def describe(trial) -> str:
        blocks = ", ".join(f"{k}={v}" for k, v in trial.params.items())
        if trial.state.name != "COMPLETE":
            return f"trial {trial.number} {trial.state.name.lower()}: {blocks}: {trial.user_attrs.get('fail_reason', '')}"
        values = ", ".join(f"{k} {_fmt(v)}" for k, v in zip(space.objectives, trial.values))
        note = (" (not trained: violates a constraint)" if not trial.user_attrs.get("trained", True)
                else f" (same network as trial {trial.user_attrs['duplicate_of']})"
                if "duplicate_of" in trial.user_attrs else "")
        return f"trial {trial.number}: {blocks} -> {values}{note}"

    live = Live(console=console, refresh_per_second=4, transient=True) \
        if console.is_terminal and not quiet else None
    current = {"line": ""}

    def render() -> Group:
        return Group(Text(f"{completed(study)}/{target} trials complete"), Text(current["line"]),
                     _front_table(study, space, "best so far"))

    def on_epoch(trial, event: str, values: dict) -> None:
        if event == "epoch":
            blocks = ", ".join(f"{k}={v}" for k, v in trial.params.items())
            current["line"] = (f"trial {trial.number}: {blocks}: epoch {values['done']}/{values['total']}, "
                               f"val Dice {values['val_dice_mean']:.3f}")
            live.update(render())

    def on_trial(trial) -> None:
        tracker.log_trial(trial)
        if live is not None:
            live.console.print(describe(trial))
            live.update(render())
        elif not quiet:
            console.print(describe(trial))

    console.print(f"study {name!r}: {len(study.trials)} trials so far, running until {target} complete "
                  f"({space.study['sampler']}, data {study_data.dataset.source} at {study_data.size} px, "
                  f"split {study_data.split.hash[:12]})")
    started = time.perf_counter()
    objective = make_objective(space, study_data, study, on_epoch if live is not None else None)
    with live if live is not None else nullcontext():
        run_study(study, objective, target, timeout, on_trial)
    best = front(study, space.objectives)
    table = _front_table(study, space, f"Pareto front of {name!r} ({len(best)} of "
                         f"{completed(study)} complete trials)")
    console.print(table)
    reference = resolve_architecture(space.architecture).hash
    out_dir = Path("reports") / name
    write_report(study, space.objectives, out_dir, reference)
    tracker.finish(study, {t.number for t in best}, out_dir)
    console.print(f"{time.perf_counter() - started:.0f} s; storage {storage or DEFAULT_STORAGE}; "
                  f"MLflow {tracking_uri or DEFAULT_TRACKING} (experiment {name!r}); report {out_dir}/")


@cli.command()
@click.option("--study", "study_name", required=True)
@click.option("--space", "space_ref", default=None, help="The study's space (default: recorded in the study).")
@click.option("--storage", default=None, envvar="BENCH_STORAGE")
@click.option("--out", type=click.Path(file_okay=False), default=None, help="Default: reports/<study>/.")
def report(study_name: str, space_ref: Optional[str], storage: Optional[str], out: Optional[str]) -> None:
    """Write a study's tables and Pareto plots: results.csv, pareto.csv, report.md, table.tex,
    pareto.png, pareto.html."""
    from .report import write_report
    from .search import DEFAULT_STORAGE, load_study
    from .space import load_space

    study = load_study(study_name, storage or DEFAULT_STORAGE)
    space = load_space(space_ref or study.user_attrs.get("space", ""))
    out_dir = Path(out) if out else Path("reports") / study_name
    paths = write_report(study, space.objectives, out_dir, resolve_architecture(space.architecture).hash)
    console.print(f"wrote {', '.join(str(p) for p in paths)}")


@cli.command()
@click.option("--tracking-uri", default=None, envvar="MLFLOW_TRACKING_URI",
              help="Backend store (default: sqlite:///runs/mlflow.db).")
@click.option("--port", type=int, default=5000, show_default=True)
def ui(tracking_uri: Optional[str], port: int) -> None:
    """Start the MLflow UI on 127.0.0.1 (one worker, no background job execution)."""
    import os
    import sys

    from .tracking import DEFAULT_ARTIFACTS, DEFAULT_TRACKING

    store = tracking_uri or DEFAULT_TRACKING
    console.print(f"MLflow UI for {store}: http://127.0.0.1:{port}  (Ctrl-C stops it)")
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", store,
               "--default-artifact-root", Path(DEFAULT_ARTIFACTS).resolve().as_uri(),
               "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    sys.stdout.flush()
    os.execve(sys.executable, command, env)  # the server itself receives Ctrl-C and SIGTERM


def _front_table(study, space, title: str) -> Table:
    from .search import front

    best = front(study, space.objectives)
    params = list(dict.fromkeys(k for trial in best for k in trial.params))
    table = Table("trial", *params, *space.objectives, "test Dice", title=title)
    for trial in sorted(best, key=lambda t: t.values[0]):
        table.add_row(str(trial.number), *(str(trial.params.get(k, "")) for k in params),
                      *(_fmt(v) for v in trial.values),
                      _fmt(trial.user_attrs["metrics"].get("test_dice", float("nan"))))
    return table


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4f}"


def main() -> None:
    cli(prog_name="bench")


if __name__ == "__main__":
    main()
