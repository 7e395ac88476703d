"""Dataset folder layouts: which image goes with which mask.

Detected from the folder (or named explicitly):

- ``image_label``: ``image/`` + ``label/`` with matching stems (ISBI 2012 as distributed);
- ``masks_per_class``: ``images/`` + ``masks/<k>/`` with matching stems, one binary mask per
  class k = 0, 1, ... (the UNeXt / CMUNeXt / TinyU-Net layout; ``masks/0/`` alone is binary);
- ``images_masks``: ``images/`` + ``masks/`` with matching stems; masks binary or class indices
  (palette PNGs give their palette indices).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..errors import BenchError, did_you_mean
from .images import IMAGE_SUFFIXES

LAYOUTS = ("image_label", "masks_per_class", "images_masks")


@dataclass(frozen=True)
class Pair:
    """One sample: its stem, image file and mask files (one, or one per class)."""

    stem: str
    image: Path
    masks: tuple[Path, ...]


@dataclass(frozen=True)
class DatasetIndex:
    root: Path
    layout: str
    pairs: tuple[Pair, ...]


def _files(folder: Path) -> dict[str, Path]:
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}


def detect_layout(root: Path) -> str:
    if (root / "image").is_dir() and (root / "label").is_dir():
        return "image_label"
    if (root / "images").is_dir() and (root / "masks").is_dir():
        subdirs = [p for p in (root / "masks").iterdir() if p.is_dir()]
        return "masks_per_class" if subdirs else "images_masks"
    found = ", ".join(sorted(p.name + "/" for p in root.iterdir() if p.is_dir())) or "no folders"
    raise BenchError(
        f"{root}: no known dataset layout (found {found}). Expected images/ + masks/, "
        "image/ + label/, or images/ + masks/<k>/ with matching file names."
    )


def index_dataset(root: Path, layout: Optional[str] = None) -> DatasetIndex:
    """Every (image, masks) pair under ``root``.

    Raises:
        BenchError: missing folder, unknown layout, no images, or images and masks that do not
            pair up (a few names of each kind are listed).
    """
    root = Path(root)
    if not root.is_dir():
        raise BenchError(f"{root}: no such dataset folder.")
    if layout is None:
        layout = detect_layout(root)
    elif layout not in LAYOUTS:
        raise BenchError(f"unknown layout {layout!r}. {did_you_mean(layout, LAYOUTS)} Layouts: "
                         f"{', '.join(LAYOUTS)}.")
    image_dir = root / ("image" if layout == "image_label" else "images")
    if layout == "masks_per_class":
        mask_dirs = sorted((p for p in (root / "masks").iterdir() if p.is_dir()),
                           key=lambda p: (not p.name.isdigit(), int(p.name) if p.name.isdigit() else 0, p.name))
    else:
        mask_dirs = [root / ("label" if layout == "image_label" else "masks")]
    for folder in (image_dir, *mask_dirs):
        if not folder.is_dir():
            raise BenchError(f"{root}: layout {layout} needs the folder {folder.name}/.")
    images = _files(image_dir)
    if not images:
        raise BenchError(f"{image_dir}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder.")
    masks = [_files(d) for d in mask_dirs]
    for folder, found in zip(mask_dirs, masks):
        _check_pairing(image_dir, images, folder, found)
    pairs = tuple(Pair(stem, images[stem], tuple(m[stem] for m in masks)) for stem in images)
    return DatasetIndex(root, layout, pairs)


def _check_pairing(image_dir: Path, images: dict, mask_dir: Path, masks: dict) -> None:
    lonely_images = sorted(set(images) - set(masks))
    lonely_masks = sorted(set(masks) - set(images))
    if not lonely_images and not lonely_masks:
        return
    parts = []
    if lonely_images:
        parts.append(f"{len(lonely_images)} images in {image_dir} have no mask in {mask_dir} "
                     f"({_few(lonely_images)})")
    if lonely_masks:
        parts.append(f"{len(lonely_masks)} masks in {mask_dir} have no image in {image_dir} "
                     f"({_few(lonely_masks)})")
    raise BenchError("; ".join(parts) + ". Images and masks pair up by file name without the "
                     "extension: add or remove files so that every image has its mask.")


def _few(names: list[str]) -> str:
    return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
