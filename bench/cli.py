"""The ``bench`` command line. Bad input exits with status 2 and a one-paragraph message."""
from __future__ import annotations

import json
import math
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import click
from rich.console import Console
from rich.table import Table

from . import __version__
from .core import interrupts
from .arch.assemble import build_checked, build_model, check_budget, check_input_size, meta_params, plan_architecture
from .blocks import BLOCKS
from .arch.counting import count_params
from .arch.config import Architecture, builtin_architectures, load_yaml, resolve_architecture
from .data.source import DataSource
from .core.errors import BenchError
from .core.files import ensure_writable, plain_name
from .arch.latency import FORMS
from .arch.runtimes import BACKENDS

console = Console()


class Finite(click.ParamType):
    """A finite number above ``minimum`` (click's FloatRange lets NaN through)."""

    name = "number"

    def __init__(self, minimum: float = 0.0) -> None:
        self.minimum = minimum

    def convert(self, value: Any, param: Optional[click.Parameter], ctx: Optional[click.Context]) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number.", param, ctx)
        if not math.isfinite(number) or number <= self.minimum:
            self.fail(f"{value!r} is not a finite number above {self.minimum:g}.", param, ctx)
        return number


class Registered(click.Choice):
    """A name from a registry, read when the command runs: strategies registered by your own
    code (``register_pruner``, ``register_sampler``) are choices too."""

    def __init__(self, names: Callable[[], Sequence[str]]) -> None:
        self._names = names
        super().__init__(())

    @property
    def choices(self) -> Sequence[str]:
        return tuple(self._names())

    @choices.setter
    def choices(self, value: Sequence[str]) -> None:  # click's __init__ sets it; the registry is the source
        pass


def _pruners() -> list[str]:
    from .search.pruners import PRUNERS

    return list(PRUNERS)


def _samplers() -> list[str]:
    from .search.samplers import SAMPLERS

    return list(SAMPLERS)


SIZE = click.IntRange(8, 16384)  # pixels a side
PORT = click.IntRange(1, 65535)
COUNT = click.IntRange(1, 1_000_000)


class UserError(click.ClickException):
    """A BenchError on its way to the terminal: printed as ``Error: ...``, exit status 2."""

    exit_code = 2


class BenchGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            with interrupts.handling():  # shared with bench.console's, where the command started there
                value = super().invoke(ctx)
                interrupts.checkpoint()  # a signal whose KeyboardInterrupt was swallowed still ends with 130
                return value
        except BenchError as exc:
            raise UserError(str(exc)) from None
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM: what was stopped is recorded; no traceback
            click.echo("interrupted: what ran was recorded (a stopped sweep trial as failed, "
                       "'interrupted'); run the same command again to go on.", err=True)
            ctx.exit(130)


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


def device_option(command: Callable) -> Callable:
    return click.option("--device", default="auto", show_default=True,
                        help="auto (a CUDA GPU when there is one, else the CPU), cpu, cuda, cuda:N or mps.")(command)


def speed_options(command: Callable) -> Callable:
    """Training speed options (recorded in the recipe) shared by ``train``, ``compare`` and ``run``."""
    options = [
        click.option("--precision", type=click.Choice(["fp32", "bf16", "fp16"]), default=None,
                     help="Autocast precision of training (default: the recipe's, fp32; bf16 works on CPUs "
                     "too; fp16 uses a gradient scaler)."),
        click.option("--channels-last", is_flag=True, default=None, help="Train in channels_last memory format."),
        click.option("--compile", "compile_", is_flag=True, default=None,
                     help="Train through torch.compile (compiles first: pays off on long runs)."),
        click.option("--deterministic", is_flag=True,
                     help="PyTorch's deterministic algorithms (an operation without one warns; see the README)."),
    ]
    for option in reversed(options):
        command = option(command)
    return device_option(command)


def _speed(options: dict[str, Any]) -> dict[str, Any]:
    """Pops the speed options' recipe overrides (None: the recipe's); --deterministic stays."""
    return {"precision": options.pop("precision"), "channels_last": options.pop("channels_last") or None,
            "compile": options.pop("compile_") or None}


def _deterministic(options: dict[str, Any]) -> None:
    """Pops --deterministic and applies it to this process."""
    from .core.device import set_deterministic

    if options.pop("deterministic"):
        set_deterministic(True)


def resolve(architecture: str, classes: Optional[int], overrides: Sequence[str]) -> Architecture:
    sets = ([f"classes={classes}"] if classes is not None else []) + list(overrides)
    return resolve_architecture(architecture, sets)


@cli.command("list")
@click.argument("what", type=click.Choice(["blocks", "architectures", "spaces", "objectives", "pruners", "samplers"]))
def list_(what: str) -> None:
    """List registered blocks, built-in architectures, built-in search spaces, the objectives a
    sweep can optimise and constrain, or the pruners and samplers a space can name."""
    if what == "pruners":
        from .search.pruners import PRUNERS

        table = Table("pruner", "settings (default)", "description", title="Pruners (study.pruner, --pruner)")
        table.columns[0].no_wrap = True
        for name, pruner in PRUNERS.items():
            settings = ", ".join(f"{k} ({default})" for k, (default, _, _) in pruner.settings.items()) or "-"
            table.add_row(name, settings, pruner.summary)
        console.print(table)
        return
    if what == "samplers":
        from .search.samplers import SAMPLERS

        table = Table("sampler", "settings", "description", title="Samplers (study.sampler, --sampler)")
        table.columns[0].no_wrap = True
        for name, sampler in SAMPLERS.items():
            table.add_row(name, ", ".join(f"study.{k}" for k in sampler.uses) or "-", sampler.summary)
        console.print(table)
        return
    if what == "objectives":
        from .search.objectives import OBJECTIVES

        table = Table("objective", "direction", "known", "unit", "description", title="Objectives")
        table.columns[0].no_wrap = True
        for objective in OBJECTIVES:
            table.add_row(objective.name, objective.direction, objective.known, objective.unit or "-",
                          objective.summary)
        console.print(table)
        console.print("Objectives known before training can be constraints, "
                      "e.g. constraints: {params: {max: 1000000}}.")
        return
    if what == "spaces":
        from .search.space import builtin_spaces, load_space

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
    check_budget(arch, plan)  # before any block is built
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
@click.option("--size", type=click.IntRange(1, 16384), default=256, show_default=True,
              help="Input height and width in pixels.")
@click.option("--batch", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--latency", is_flag=True, help="Also time the forward pass (see --form, --backend).")
@click.option("--form", "forms", multiple=True, type=click.Choice(FORMS),
              help="Form(s) to time (repeatable; default deploy). Several are timed interleaved.")
@click.option("--backend", "backends", multiple=True,
              type=click.Choice(BACKENDS),
              help="Backend(s) to time (repeatable; default eager). onnxruntime needs the onnx extra.")
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True,
              help="Intra-op threads while timing.")
@click.option("--max-seconds", type=Finite(0.0), default=10.0, show_default=True,
              help="Time cap per timed variant, if the median is not stable before.")
@click.option("--isolate", is_flag=True, help="Time each variant in a fresh process.")
@device_option
@click.option("--cudnn-benchmark", is_flag=True,
              help="Let cuDNN autotune per input shape (off: shapes that vary re-tune inside the timing).")
@click.option("--memory", is_flag=True,
              help="Also count peak memory of a forward pass (deploy form) and a training step.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True)
def profile(architecture: str, classes: Optional[int], overrides: Sequence[str], size: int,
            batch: int, latency: bool, forms: Sequence[str], backends: Sequence[str], threads: int,
            max_seconds: float, isolate: bool, device: str, cudnn_benchmark: bool, memory: bool, fmt: str) -> None:
    """Count parameters, MACs and paper-FLOPs (2 x MACs) of an architecture, train and deploy
    forms (the deploy form has every re-parameterisable block fused); with --latency, time it.

    Every combination of --form and --backend is timed in one session, interleaved (A B C A B C
    ...), and reported as a ratio to the first, so that drift of the machine cannot reorder them.
    """
    from .arch.profile import profile_model

    from .core.device import resolve_device

    arch = resolve(architecture, classes, overrides)
    device_name = str(resolve_device(device))
    model = build_checked(arch, size)
    in_channels = arch.config["in_channels"]
    record = profile_model(model, arch.name, arch.hash, in_channels, size, batch).to_dict()
    if latency:
        from .arch.latency import Candidate, Protocol, measure

        candidates = [Candidate(f"{form}/{backend}", model, form, backend, arch.config)
                      for form in (forms or ["deploy"]) for backend in (backends or ["eager"])]
        protocol = Protocol(threads=threads, batch=batch, max_seconds=max_seconds, device=device_name,
                            cudnn_benchmark=cudnn_benchmark)
        with console.status(f"timing {len(candidates)} variant(s) of {arch.name}") \
                if console.is_terminal and fmt == "table" else nullcontext():
            record["latency"] = [r.to_dict() for r in measure(candidates, in_channels, size, protocol, isolate)]
    if memory:
        from .arch.memory import forward_peak_memory, train_step_peak_memory

        record["memory"] = {  # a training step needs 2 samples: BatchNorm cannot train on one 1x1 map
            "forward": forward_peak_memory(model, in_channels, size, batch).to_dict(),
            "train_step": train_step_peak_memory(model, in_channels, size, max(batch, 2)).to_dict()}
    if fmt == "json":
        click.echo(json.dumps(record, indent=2))
        return
    _print_profile(record)


def _print_profile(record: dict) -> None:
    train, deployed = record, record["deploy"]
    table = Table("", "train", "deploy",
                  title=f"{record['architecture']} at {'x'.join(map(str, record['input_shape']))}")
    rows = [
        ("parameters", f"{train['params']:,}", f"{deployed['params']:,}"),
        ("MACs", f"{train['macs'] / 1e9:.3f} G", f"{deployed['macs'] / 1e9:.3f} G"),
        ("paper FLOPs (2 x MACs)", f"{train['flops'] / 1e9:.3f} G", f"{deployed['flops'] / 1e9:.3f} G"),
        *((f"  MACs: {op}", f"{n / 1e9:.4f} G", f"{deployed['macs_by_operator'].get(op, 0) / 1e9:.4f} G")
          for op, n in train["macs_by_operator"].items()),
        ("uncounted ops", _ops(train["uncounted_ops"]) or "none", _ops(deployed["uncounted_ops"]) or "none"),
        ("zero by convention", _ops(train["zero_cost_ops"]) or "none", ""),
    ]
    if "memory" in record:
        fwd, step = record["memory"]["forward"], record["memory"]["train_step"]
        rows.append(("peak activations, training step (MiB)", f"{step['peak_activation_bytes'] / 2**20:.1f}", ""))
        rows.append(("peak activations, forward (MiB)", "", f"{fwd['peak_activation_bytes'] / 2**20:.1f}"))
    for row in rows:
        table.add_row(*row)
    console.print(table)
    console.print(f"output {'x'.join(map(str, record['output_shape']))}; counter: {record['counter']}; "
                  f"torch {record['torch']}; config hash {record['config_hash'][:12]}")
    if "latency" in record:
        results = record["latency"]
        timing = Table("form/backend", "median ms", "IQR ms", "p90 ms", "n", "stopped", "ratio",
                       title="latency (timed interleaved)" if len(results) > 1 else "latency")
        for r in results:
            timing.add_row(r["label"], f"{r['median_ms']:.2f}", f"{r['iqr_ms']:.2f}", f"{r['p90_ms']:.2f}",
                           str(r["n"]), r["stopped"], f"{r['ratio']:.3f}" if r["ratio"] is not None else "")
        console.print(timing)
        p = results[0]["protocol"]
        console.print(f"protocol: {p['threads']} thread(s), batch {p['batch']}, {p['input_size']} px, "
                      f"warm-up {p['warmup']}, until the median's 95 % CI is within "
                      f"{p['target']:.0%} or {p['max_seconds']:g} s per variant"
                      f"{', each in a fresh process' if p['isolate'] else ''}; torch {p['torch']}"
                      f"{', onnxruntime ' + p['onnxruntime'] if p.get('onnxruntime') else ''}; {p['cpu']}")


def _ops(ops: dict[str, int]) -> str:
    return ", ".join(f"{op} x{n}" for op, n in ops.items())



# --------------------------------------------------------------------------- data and training


@cli.group()
def data() -> None:
    """Look at datasets."""


def folder_options(command: Callable) -> Callable:
    """Layout options shared by every command that reads a dataset folder."""
    options = [
        click.option("--layout", default=None, help="Force a known layout (image_label, masks_per_class, "
                     "images_masks, isic2018, drive, glas, busi, monuseg)."),
        click.option("--images", default=None, help="Image folder, for any other layout (relative to --data)."),
        click.option("--masks", default=None, help="Mask folder, with --images."),
        click.option("--image-pattern", default=None, help="Image names, e.g. '{stem}_training' "
                     "({stem}: the part shared with the masks; * matches anything)."),
        click.option("--mask-pattern", default=None, help="Mask names, e.g. '{stem}_mask', '{stem}_manual1', "
                     "'{stem}_segmentation', '{stem}_anno'."),
        click.option("--ignore", default=None, help="Folder of region masks (field of view): pixels where "
                     "they are 0 count in no loss and no metric."),
        click.option("--ignore-pattern", default=None, help="Region-mask names, e.g. '{stem}_mask'."),
        click.option("--instances", is_flag=True, help="Mask values are instance ids: foreground is > 0."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


FOLDER_OPTIONS = ("layout", "images", "masks", "image_pattern", "mask_pattern", "ignore", "ignore_pattern",
                  "instances")


def protocol_options(command: Callable) -> Callable:
    """How images meet the network (see :mod:`bench.data.protocol`)."""
    options = [
        click.option("--size", type=SIZE, default=None,
                     help="Resize whole images to SIZE x SIZE (default: 64 for synthetic, else the images' size)."),
        click.option("--patch", type=SIZE, default=None,
                     help="Train on random PATCH x PATCH crops at native resolution; predict whole images by "
                     "sliding windows; score at native size."),
        click.option("--scale", type=Finite(0.0), default=None, help="With --patch: scale images by this "
                     "factor first (aspect kept; metrics still at native size)."),
        click.option("--oversample", type=Finite(0.0), default=None,
                     help="With --patch: share of patches centred on foreground (default 0.33, as nnU-Net)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


PROTOCOL_OPTIONS = ("size", "patch", "scale", "oversample")


def take_source(kwargs: dict[str, Any], data: Optional[str]) -> DataSource:
    """The data source the folder and protocol options in ``kwargs`` name (removed from it)."""
    from .data.source import data_source

    chosen = {k: kwargs.pop(k) for k in (*FOLDER_OPTIONS, *PROTOCOL_OPTIONS) if k in kwargs}
    return data_source(data, **chosen)


@data.command("inspect")
@click.argument("path", type=click.Path(file_okay=False))
@folder_options
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def data_inspect(path: str, fmt: str, **options: Any) -> None:
    """Detect a dataset folder's layout and report pairs, sizes, mask encodings per file,
    region masks, classes and class balance.

    Recognised as downloaded: ISBI 2012 (image/ + label/), images/ + masks/ (Kvasir-SEG; or
    masks/<k>/ per class), ISIC 2018 task 1, DRIVE (with its field-of-view masks), GlaS, BUSI,
    MoNuSeg as UCTransNet ships it. Any other: --images, --masks and --mask-pattern.
    """
    from .data.dataset import inspect_folder

    source = take_source(options, path)
    report = inspect_folder(Path(source.folder or path), source.layout)
    if fmt == "json":
        click.echo(json.dumps(report, indent=2))
        return
    table = Table(show_header=False, title=f"dataset {path}")
    for key in ("layout", "folders", "pairs", "sizes", "channels", "mask_encoding", "classes", "class_balance",
                "region_masks", "ignored"):
        table.add_row(key.replace("_", " "), str(report[key]))
    table.add_row("problems found", "; ".join(report["notes"]) or "none")
    console.print(table)


def training_options(command: Callable) -> Callable:
    """Data and recipe options shared by ``train`` and ``compare``."""
    options = [
        click.option("--data", default=None, help="Dataset folder (default: the built-in synthetic set)."),
        click.option("--recipe", default="default", show_default=True,
                     help="default, tinyunet, alnet or lmnet (the papers' recipes)."),
        click.option("--epochs", type=click.IntRange(1, 100_000), default=None),
        click.option("--batch", type=click.IntRange(1, 100_000), default=None),
        click.option("--lr", type=float, default=None),
        click.option("--seed", type=int, default=0, show_default=True, help="Split and training seed."),
        click.option("--split", "split_file", type=click.Path(dir_okay=False), default=None,
                     help="Reuse a split.json (checked against the folder)."),
        click.option("--out", type=click.Path(file_okay=False), default=None, help="Output folder."),
        click.option("--tracking-uri", default=None, envvar="MLFLOW_TRACKING_URI",
                     help="MLflow tracking URI (default sqlite:///runs/mlflow.db; env MLFLOW_TRACKING_URI)."),
        click.option("--experiment", default=None, help="MLflow experiment (default: train: 'bench train'; "
                     "compare: one per comparison, named as its output folder)."),
        click.option("--no-tracking", is_flag=True, help="Do not log to MLflow."),
    ]
    for option in reversed(options):
        command = option(command)
    return speed_options(protocol_options(folder_options(command)))


def _tracking_uri(tracking_uri: Optional[str], no_tracking: bool) -> Optional[str]:
    """The MLflow store to log to (checked now, before any training), or None."""
    if no_tracking:
        return None
    from .core.defaults import DEFAULT_TRACKING
    from .results.tracking import check_tracking

    uri = tracking_uri or DEFAULT_TRACKING
    check_tracking(uri)
    return uri


def _recipe(recipe: str, epochs, batch, lr, seed: int, speed: Optional[dict[str, Any]] = None):
    """The recipe the options name; a bad value is an error naming its option."""
    from .training.recipe import RecipeError, get_recipe

    try:
        return get_recipe(recipe, epochs=epochs, batch=batch, lr=lr, seed=seed, **(speed or {}))
    except RecipeError as exc:
        option = f"--{exc.field}" if exc.field in ("epochs", "batch", "lr", "seed") else f"recipe {recipe}"
        raise BenchError(f"{option}: {exc.message}") from None


def _recipe_and_data(arch_channels: int, source: DataSource, recipe: str, epochs, batch, lr, seed: int,
                     split_file: Optional[str], speed: Optional[dict[str, Any]] = None):
    from .run.experiment import prepare_data

    chosen = _recipe(recipe, epochs, batch, lr, seed, speed)
    dataset, split = prepare_data(source.folder, source.protocol, arch_channels, seed,
                                  Path(split_file) if split_file else None, source.layout)
    return chosen, dataset, split, dataset.input_size


def _check_outputs(out_dir: Path, archs: Sequence[Architecture], repeats: int, size: Optional[int]) -> None:
    """Before any data is read or network trained: every network within the limits at ``size``,
    and ``out_dir`` writable with room for every run's weights (and a margin)."""
    needed = 0
    for arch in archs:
        plan = plan_architecture(arch)
        if size is not None:
            check_input_size(arch, plan, size)
        check_budget(arch, plan, size)
        needed += repeats * 4 * (meta_params(plan) or 0)
    ensure_writable(out_dir, needed=needed + 16 * 2**20, create=False)


def _run_dir(kind: str, source: DataSource) -> Path:
    return Path("runs") / f"{kind}-{source.name}-{time.strftime('%Y%m%d-%H%M%S')}"


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
          recipe: str, epochs, batch, lr, seed: int, split_file: Optional[str], out: Optional[str],
          tracking_uri: Optional[str], experiment: Optional[str], no_tracking: bool, device: str,
          **options: Any) -> None:
    """Train an architecture on a dataset (default: synthetic) and evaluate it on the test split.

    Writes split.json, model.pt (weights + resolved config) and metrics.json to --out, and logs
    the run to MLflow (curves, metrics, cost, weights).
    """
    from .core.device import resolve_device
    from .run.experiment import tracking_entry, train_network
    from .results.progress import training_progress

    where, speed = resolve_device(device), _speed(options)
    _deterministic(options)
    source = take_source(options, data)
    arch = resolve(architecture, classes, overrides)
    tracking = _tracking_uri(tracking_uri, no_tracking)
    out_dir = Path(out) if out else _run_dir(arch.name, source)
    _check_outputs(out_dir, [arch], 1, source.protocol.input_size)
    chosen, dataset, split, size = _recipe_and_data(arch.config["in_channels"], source, recipe, epochs, batch, lr,
                                                    seed, split_file, speed)
    net = train_network(arch, dataset, split, chosen, size, out_dir, seed_folders=False,
                        progress=lambda seed: training_progress(arch.name, console), device=where, latency=True)
    run = net.first
    console.print(_metrics_table(f"{arch.name}: test set ({len(split.test)} images; {dataset.protocol.describe()})",
                                 run.test, max(2, arch.config["classes"])))
    console.print(f"{net.cost.train.params:,} params, {net.cost.train.flops / 1e9:.3f} G FLOPs, latency "
                  f"{net.latency['median_ms']:.2f} ms; best epoch {run.metrics['best_epoch']}, trained in "
                  f"{run.metrics['train_seconds']:.0f} s on {where}; split {split.hash[:12]}; wrote {out_dir}/")
    if tracking:
        from .results.tracking import track_networks

        entry = tracking_entry(net, chosen, dataset, split, size)
        entry["artifacts"][""].append(out_dir / "split.json")
        url, _ = track_networks(tracking, experiment or "bench train", [entry])
        console.print(f"MLflow: {url}", highlight=False, soft_wrap=True)


@cli.command()
@click.argument("checkpoint", type=click.Path(dir_okay=False, exists=True))
@click.option("--data", default=None, help="Dataset folder (default: the checkpoint's).")
@folder_options
@protocol_options
@click.option("--split", "split_file", type=click.Path(dir_okay=False), default=None,
              help="Evaluate only the --subset of this split (default: every image).")
@click.option("--subset", type=click.Choice(["train", "val", "test"]), default="test", show_default=True)
@device_option
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def evaluate(checkpoint: str, data: Optional[str], split_file: Optional[str], subset: str, device: str, fmt: str,
             **options: Any) -> None:
    """Re-evaluate a checkpoint written by `bench train` on a dataset, by the protocol it was
    trained with (resized, or patches with sliding windows at native size) unless told otherwise."""
    from .training.checkpoint import load_checkpoint
    from .data.layouts import Layout
    from .data.protocol import Protocol
    from .data.split import load_split
    from .core.device import resolve_device
    from .run.experiment import check_classes
    from .training.loop import evaluate as evaluate_model

    where = resolve_device(device)
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
    if split_file:
        split = load_split(Path(split_file), dataset.stems, dataset.content_hash)
        dataset = dataset.subset(list(getattr(split, subset)))
    test = evaluate_model(model.to(where), dataset, arch.config["classes"]).summary()
    if fmt == "json":
        click.echo(json.dumps({"architecture": arch.name, "images": len(dataset.stems), "device": str(where),
                               "protocol": dataset.protocol.to_dict(), **test}, indent=2))
        return
    console.print(_metrics_table(f"{arch.name} on {dataset.source} ({len(dataset.stems)} images; "
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
    from .core.device import resolve_device
    from .run.compare import compare as compare_networks, distinct_architectures
    from .results.progress import training_progress
    from .core.stats import RULE
    from .results.tables import display_table

    where, speed = resolve_device(device), _speed(options)
    _deterministic(options)
    source = take_source(options, data)
    archs = distinct_architectures(architectures)
    tracking = _tracking_uri(tracking_uri, no_tracking)
    chosen = _recipe(recipe, epochs, batch, lr, seed, speed)
    out_dir = Path(out) if out else _run_dir("compare", source)
    _check_outputs(out_dir, archs, repeats, source.protocol.input_size)
    result = compare_networks(
        archs, source, recipe=chosen, recipe_name=recipe, split_file=split_file, repeats=repeats, out_dir=out_dir,
        device=where, max_seconds=max_seconds, tracking_uri=tracking, experiment=experiment,
        progress=lambda name, s: training_progress(f"{name} seed {s}", console),
        timing=lambda: console.status("timing the networks together") if console.is_terminal else nullcontext())
    dataset, split = result.dataset, result.split
    shown = display_table(result.table).set_index("Model").T  # a figure per row: fits a terminal
    seeds = ", ".join(map(str, result.seeds))
    rich_table = Table("", *shown.columns, title=f"{dataset.source} ({dataset.protocol.describe()}), recipe {recipe}, "
                       f"{chosen.epochs} epochs, seeds {seeds}, split {split.hash[:12]}")
    for figure, row in shown.iterrows():
        rich_table.add_row(figure, *row)
    console.print(rich_table)
    for test in result.versus[1:]:
        console.print(f"{test.candidate} against {test.reference}, paired over {test.n} test images and "
                      f"{repeats} seed(s) (foreground Dice): {test.text()}", highlight=False)
    if len(result.versus) > 1:
        console.print(RULE, highlight=False)
    console.print(f"latency: timed interleaved in one session, ratio to {archs[0].name}; cells are mean ± std over "
                  f"{repeats} seed(s); wrote {', '.join(map(str, result.paths))}", highlight=False)
    if "mlflow_runs_url" in result.links:
        console.print(f"MLflow: {result.links['mlflow_runs_url']}", highlight=False, soft_wrap=True)


# --------------------------------------------------------------------------------------- sweeps


@cli.command()
@click.option("--space", "space_ref", required=True, help="Search space: built-in name or YAML path.")
@click.option("--study", "study_name", default=None, help="Study name (default: the space's); "
              "an existing study is resumed, and workers given the same name share it.")
@click.option("--trials", type=COUNT, default=None,
              help="Distinct networks to evaluate (default: the space's); repeats of a known network and designs "
              "breaking a constraint are recorded but not counted.")
@click.option("--data", default=None, help="Dataset folder (default: the space's, usually synthetic).")
@click.option("--size", type=SIZE, default=None, help="Resize whole images to SIZE x SIZE (default: the space's).")
@click.option("--patch", type=SIZE, default=None, help="Train on PATCH x PATCH crops at native resolution, "
              "score whole images by sliding windows (default: the space's).")
@click.option("--storage", default=None, envvar="BENCH_STORAGE",
              help="Optuna storage: sqlite:///FILE (default sqlite:///runs/optuna.db), "
              "postgresql://USER:PASSWORD@HOST/DB, mysql+pymysql://..., or journal:FILE. Env: BENCH_STORAGE.")
@click.option("--tracking-uri", default=None, envvar="MLFLOW_TRACKING_URI",
              help="MLflow tracking URI: sqlite:///FILE (default sqlite:///runs/mlflow.db) or a server, "
              "http://HOST:5000. Env: MLFLOW_TRACKING_URI.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Worker processes to start on this machine, all on the same study.")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="Torch threads per worker (default: the cores divided among the workers).")
@click.option("--timeout", type=Finite(0.0), default=None, help="Stop starting trials after this many seconds.")
@click.option("--heartbeat", type=click.IntRange(min=1), default=10, show_default=True,
              help="Seconds between trial heartbeats; a trial silent for 3x this is failed and retried.")
@click.option("--max-retry", type=click.IntRange(min=0), default=2, show_default=True,
              help="How often a trial whose worker died is retried.")
@click.option("--repeats", type=click.IntRange(min=1), default=None,
              help="Train each design this many times, seeds seed, seed+1, ... (default: the space's).")
@click.option("--sampler", type=Registered(_samplers), default=None,
              help="Sampler instead of the space's (bench list samplers).")
@click.option("--pruner", type=Registered(_pruners), default=None,
              help="Pruner instead of the space's, with its default settings (bench list pruners; Optuna's "
              "own work on one objective only).")
@speed_options
@click.option("--quiet", is_flag=True, help="Only the final front.")
def run(space_ref: str, study_name: Optional[str], trials: Optional[int], data: Optional[str],
        size: Optional[int], patch: Optional[int], storage: Optional[str], tracking_uri: Optional[str], workers: int,
        threads: Optional[int], timeout: Optional[float], heartbeat: int, max_retry: int, repeats: Optional[int],
        sampler: Optional[str], pruner: Optional[str], device: str, quiet: bool, **options: Any) -> None:
    """Sweep a search space with Optuna, track every trial in MLflow, print the Pareto front,
    and write the study's report to reports/<study>/.

    Start the same command on as many machines as you like, pointed at one --storage and one
    --tracking-uri: the workers share the study (Optuna's RDB storage coordinates them).
    With G GPUs here, worker i trains on cuda:(i mod G) (--device auto or cuda).
    """
    from .core.defaults import DEFAULT_TRACKING
    from .results.progress import SweepProgress
    from .search.space import load_space, override_recipe, override_study
    from .run.sweep import Sweep

    deterministic = options.pop("deterministic")  # set by the sweep in each worker process
    space = override_recipe(override_study(load_space(space_ref), sampler, pruner), **_speed(options))
    Sweep(space, study=study_name, storage=storage, tracking_uri=tracking_uri or DEFAULT_TRACKING, data=data,
          size=size, patch=patch, trials=trials, workers=workers, threads=threads, timeout=timeout, heartbeat=heartbeat,
          max_retry=max_retry, repeats=repeats, listeners=[SweepProgress(console, quiet)],
          report_dir=Path("reports") / (study_name or space.name), device=device, deterministic=deterministic).run()


@cli.command()
@click.option("--study", "study_name", required=True)
@click.option("--storage", default=None, envvar="BENCH_STORAGE")
@click.option("--out", type=click.Path(file_okay=False), default=None, help="Default: reports/<study>/.")
def report(study_name: str, storage: Optional[str], out: Optional[str]) -> None:
    """Write a study's tables and Pareto plots: results.csv, pareto.csv, report.md, table.tex,
    pareto.png, pareto.html. Read from the study's storage alone."""
    from .core.defaults import DEFAULT_STORAGE
    from .results.report import write_report
    from .search.study import load_study
    from .results.loading import load_result

    result = load_result(load_study(plain_name(study_name, "--study"), storage or DEFAULT_STORAGE))
    paths = write_report(result, Path(out) if out else Path("reports") / study_name)
    console.print(f"wrote {', '.join(str(p) for p in paths)}")


@cli.command()
@click.option("--tracking-uri", default=None, envvar="MLFLOW_TRACKING_URI",
              help="Backend store (default: sqlite:///runs/mlflow.db).")
@click.option("--port", type=PORT, default=5000, show_default=True)
@click.option("--experiment", default=None, help="Print only this study's (experiment's) address.")
def ui(tracking_uri: Optional[str], port: int, experiment: Optional[str]) -> None:
    """Start the MLflow UI on 127.0.0.1 over the local store (one worker, no background job
    execution), and print the address that opens each study's runs table. For a server that many
    workers log to, see `bench server`."""
    from .core.defaults import DEFAULT_ARTIFACTS, DEFAULT_TRACKING
    from .results.tracking import experiment_urls

    store = tracking_uri or DEFAULT_TRACKING
    urls = experiment_urls(store, f"http://127.0.0.1:{port}", experiment)
    if experiment and not urls:
        raise BenchError(f"no experiment {experiment!r} in {store}; `bench ui` without --experiment lists them all.")
    for name, url in urls:
        console.print(f"runs of {name}: {url}", highlight=False, soft_wrap=True)
    _exec_mlflow_server(store, DEFAULT_ARTIFACTS, "127.0.0.1", port, 1, "MLflow UI", serve_artifacts=False)


@cli.command()
@click.option("--backend-store", required=True, metavar="URL",
              help="Database for runs and metrics: postgresql://USER:PASSWORD@HOST/DB, sqlite:///FILE, ...")
@click.option("--artifacts", required=True, metavar="PATH_OR_URI",
              help="Where the server keeps artifacts it receives (a folder, or s3://... etc.).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; 0.0.0.0 to accept other machines.")
@click.option("--port", type=PORT, default=5000, show_default=True)
@click.option("--workers", "server_workers", type=click.IntRange(1, 64), default=2, show_default=True,
              help="Server worker processes.")
@click.option("--allowed-host", "allowed_hosts", multiple=True, metavar="NAME",
              help="A host name clients use to reach the server (repeatable; with --host other than "
              "127.0.0.1). This machine's own names and local addresses are allowed anyway.")
def server(backend_store: str, artifacts: str, host: str, port: int, server_workers: int,
           allowed_hosts: Sequence[str]) -> None:
    """Start an MLflow tracking server for sweeps on many machines: a database backend store,
    artifacts served through the server (workers need no shared disk), no background jobs.

    Point workers at it with --tracking-uri http://HOST:PORT (or MLFLOW_TRACKING_URI).
    """
    from .search.storage import check_storage

    if "://" not in artifacts:  # before the store: a refusal here leaves no database behind
        ensure_writable(Path(artifacts), "--artifacts", create=False)
    check_storage(backend_store, "--backend-store")  # a clear error now, not a traceback from the server
    if "://" not in artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
    _exec_mlflow_server(backend_store, artifacts, host, port, server_workers, "MLflow tracking server",
                        allowed_hosts=allowed_hosts)


def _exec_mlflow_server(store: str, artifacts: str, host: str, port: int, workers: int, what: str,
                        serve_artifacts: bool = True, allowed_hosts: Sequence[str] = ()) -> None:
    """Replace this process with ``mlflow server`` (which then receives Ctrl-C and SIGTERM)."""
    import os
    import sys

    from .search.storage import redact

    command, env, names = mlflow_server_command(store, artifacts, host, port, workers, serve_artifacts, allowed_hosts)
    console.print(f"{what} for {redact(store)}, artifacts in {_artifact_uri(artifacts)}: http://{host}:{port}  "
                  "(Ctrl-C stops it)", highlight=False)
    if names:
        console.print(f"accepting requests addressed to {', '.join(names)} and to local and private addresses "
                      "(add names with --allowed-host)", highlight=False)
    sys.stdout.flush()
    os.execve(sys.executable, command, env)


def _artifact_uri(artifacts: str) -> str:
    return artifacts if "://" in artifacts else Path(artifacts).resolve().as_uri()


def mlflow_server_command(store: str, artifacts: str, host: str, port: int, workers: int,
                          serve_artifacts: bool = True,
                          allowed_hosts: Sequence[str] = ()) -> tuple[list[str], dict[str, str], list[str]]:
    """The ``mlflow server`` command line, its environment and the host names it accepts.

    Served artifacts go through the server; otherwise clients write ``artifacts`` directly. The
    store URL (it may hold a password) reaches MLflow through its environment variable, not the
    command line that ``ps`` shows. On an address other than loopback, MLflow's protection
    against DNS rebinding stays on: it accepts the Host names given (``allowed_hosts``), this
    machine's own names and its local and private addresses, never any name ("*")."""
    import os
    import socket
    import sys

    destination = _artifact_uri(artifacts)
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_BACKEND_STORE_URI": store}
    command = [sys.executable, "-m", "mlflow", "server",
               *(["--artifacts-destination", destination, "--serve-artifacts"] if serve_artifacts
                 else ["--default-artifact-root", destination, "--no-serve-artifacts"]),
               "--host", host, "--port", str(port), "--workers", str(workers)]
    names: list[str] = []
    if host not in ("127.0.0.1", "localhost"):  # MLflow 3 refuses other Host headers by default
        from mlflow.server.security_utils import get_default_allowed_hosts  # loopback and private addresses

        names = sorted({n for n in (*allowed_hosts, socket.gethostname(), socket.getfqdn(),
                                     *([host] if host != "0.0.0.0" else [])) if n and n != "*"})
        patterns = [p for name in names for p in (name, f"{name}:*")]
        command += ["--allowed-hosts", ",".join([*get_default_allowed_hosts(), *patterns])]
    return command, env, names


def main() -> None:
    cli(prog_name="bench")


if __name__ == "__main__":
    main()
