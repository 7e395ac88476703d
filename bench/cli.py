"""The ``bench`` command line. Bad input exits with status 2 and a one-paragraph message."""
from __future__ import annotations

import json
from typing import Any, Callable, Optional, Sequence

import click
from rich.console import Console
from rich.table import Table

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
@click.argument("what", type=click.Choice(["blocks", "architectures"]))
def list_(what: str) -> None:
    """List registered blocks or built-in architectures."""
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
    check_input_size(arch, plan_architecture(arch), size)
    model = build_model(arch)
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


def main() -> None:
    cli(prog_name="bench")


if __name__ == "__main__":
    main()
