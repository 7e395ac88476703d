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
    for name, text in inspect_rows(report):
        table.add_row(name, text)
    console.print(table)


def inspect_rows(report: dict[str, Any]) -> list[tuple[str, str]]:
    """``bench data inspect``'s report as (row name, plain words)."""
    folders = report["folders"]
    where = [f"images {folders['images']}/ ({folders.get('image_pattern', '{stem}')})",
             f"masks {folders['masks']}/ ({folders.get('mask_pattern', '{stem}')})"]
    if folders.get("ignore"):
        where.append(f"region masks {folders['ignore']}/ ({folders.get('ignore_pattern', '{stem}')})")
    if report["splits"]:
        splits = ", ".join(f"{subset} {n} ({report['split_folders'][subset]}/)" for subset, n in report["splits"].items())
        splits = f"official: {splits}; validation {'official' if 'val' in report['splits'] else 'drawn from train'}"
    else:
        splits = "none shipped: a seeded random 60/20/20 split is drawn"
    pixels = 1 - report["ignored"]
    balance = ", ".join(f"{'background' if k == 0 else f'class {k}'} {share:.1%}"
                        for k, share in enumerate(report["class_balance"]))
    region = (f"{report['region_masks']} (field of view): {report['ignored']:.1%} of pixels outside, left out of loss "
              f"and metrics" if report["region_masks"] else "none")
    return [("layout", report["layout"]), ("folders", "; ".join(where)), ("pairs", str(report["pairs"])),
            ("splits", splits),
            ("sizes", ", ".join(f"{size} ({n})" for size, n in report["sizes"].items())),
            ("channels", ", ".join(f"{c} ({n})" for c, n in report["channels"].items())),
            ("mask encoding", report["mask_encoding"]), ("classes", str(report["classes"])),
            ("class balance", f"{balance} (of the {pixels:.0%} of pixels inside the region masks)"
             if report["region_masks"] else balance),
            ("region masks", region), ("notes", "; ".join(report["notes"]) or "none")]
