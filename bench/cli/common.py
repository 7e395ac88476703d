"""What every command shares: the group, option decorators, parameter types, the data,
recipe and tracking options of ``train`` and ``compare``, and their checks."""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import click
from rich.console import Console
from rich.table import Table

from .. import __version__
from ..core import interrupts
from ..arch.assemble import check_budget, check_input_size, meta_params, plan_architecture
from ..arch.config import Architecture, resolve_architecture
from ..data.source import FOLDER_KEYS, PROTOCOL_KEYS, DataSource
from ..data.split import SPLIT_MODES
from ..core.errors import BenchError
from ..core.files import ensure_writable

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


def pruner_names() -> list[str]:
    from ..search.pruners import PRUNERS

    return list(PRUNERS)


def sampler_names() -> list[str]:
    from ..search.samplers import SAMPLERS

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


def speed_overrides(options: dict[str, Any]) -> dict[str, Any]:
    """Pops the recipe overrides of the speed options and --iterations (None: the recipe's);
    --deterministic stays."""
    return {"precision": options.pop("precision"), "channels_last": options.pop("channels_last") or None,
            "compile": options.pop("compile_") or None, "iterations": options.pop("iterations", None)}


def apply_deterministic(options: dict[str, Any]) -> None:
    """Pops --deterministic and applies it to this process."""
    from ..core.device import set_deterministic

    if options.pop("deterministic"):
        set_deterministic(True)


def resolve(architecture: str, classes: Optional[int], overrides: Sequence[str]) -> Architecture:
    sets = ([f"classes={classes}"] if classes is not None else []) + list(overrides)
    return resolve_architecture(architecture, sets)


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


def take_source(kwargs: dict[str, Any], data: Optional[str]) -> DataSource:
    """The data source the folder and protocol options in ``kwargs`` name (removed from it)."""
    from ..data.source import data_source

    chosen = {k: kwargs.pop(k) for k in (*FOLDER_KEYS, *PROTOCOL_KEYS, "split_mode", "folds") if k in kwargs}
    return data_source(data, **chosen)


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
        click.option("--iterations", type=click.IntRange(1, 10**7), default=None,
                     help="Optimisation steps per epoch (nnU-Net's epoch). Default: one pass over the training "
                     "images; with --patch, enough steps for the patches to cover their area once."),
        click.option("--split", "split_file", type=click.Path(dir_okay=False), default=None,
                     help="Reuse a split.json (checked against the folder)."),
        click.option("--split-mode", type=click.Choice(SPLIT_MODES), default=None,
                     help="official: the test set the data ships (DRIVE's test/, MoNuSeg's Test_Folder, ISIC "
                     "2018's Test folders); random: 60/20/20 of every image by --seed; kfold: 5 folds (or "
                     "--folds). Default: official where the data ships a split, else random."),
        click.option("--folds", type=click.IntRange(2, 100), default=None,
                     help="K-fold cross-validation by --seed: each fold the test set once, validation a quarter "
                     "of the rest; figures per fold and pooled, paired tests over every image once."),
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


def tracking_store(tracking_uri: Optional[str], no_tracking: bool) -> Optional[str]:
    """The MLflow store to log to (checked now, before any training), or None."""
    if no_tracking:
        return None
    from ..core.defaults import DEFAULT_TRACKING
    from ..results.mlflow_store import check_tracking

    uri = tracking_uri or DEFAULT_TRACKING
    check_tracking(uri)
    return uri


def recipe_from_options(recipe: str, epochs, batch, lr, seed: int, speed: Optional[dict[str, Any]] = None):
    """The recipe the options name; a bad value is an error naming its option."""
    from ..training.recipe import RecipeError, get_recipe

    try:
        return get_recipe(recipe, epochs=epochs, batch=batch, lr=lr, seed=seed, **(speed or {}))
    except RecipeError as exc:
        option = f"--{exc.field}" if exc.field in ("epochs", "batch", "lr", "seed") else f"recipe {recipe}"
        raise BenchError(f"{option}: {exc.message}") from None


def recipe_and_data(arch_channels: int, source: DataSource, recipe: str, epochs, batch, lr, seed: int,
                     split_file: Optional[str], speed: Optional[dict[str, Any]] = None):
    from ..run.experiment import prepare_data

    chosen = recipe_from_options(recipe, epochs, batch, lr, seed, speed)
    dataset, splits = prepare_data(source, arch_channels, seed, Path(split_file) if split_file else None)
    return chosen, dataset, splits, dataset.input_size


def check_outputs(out_dir: Path, archs: Sequence[Architecture], repeats: int, size: Optional[int]) -> None:
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


def run_dir(kind: str, source: DataSource) -> Path:
    return Path("runs") / f"{kind}-{source.name}-{time.strftime('%Y%m%d-%H%M%S')}"


def metrics_table(title: str, test: dict, classes: int) -> Table:
    table = Table("metric", *(f"class {c}" for c in range(classes)), "mean", "mean fg", title=title)
    for name in ("dice", "iou", "precision", "recall", "hd95"):
        table.add_row(name, *(f"{test[f'{name}_c{c}']:.4f}" for c in range(classes)),
                      f"{test[f'{name}_mean']:.4f}", f"{test[f'{name}_mean_fg']:.4f}")
    table.add_row("accuracy", *([""] * classes), f"{test['accuracy']:.4f}", "")
    return table
