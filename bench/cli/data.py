"""``bench data inspect``: a dataset folder's layout, pairs, sizes and classes."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.table import Table


from .common import cli, console, folder_options, take_source


@cli.group()
def data() -> None:
    """Look at datasets."""


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
    from ..data.dataset import inspect_folder

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
