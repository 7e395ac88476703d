"""Dataset folder layouts: where the images, masks and ignore masks are, and how names pair up.

A :class:`Layout` names an image folder, a mask folder (or one per class), an optional folder of
region masks (pixels where the region mask is 0 are ignored: field-of-view masks), and name
patterns in which ``{stem}`` is the part an image shares with its masks and ``*`` matches
anything (``{stem}_*`` is DRIVE's ``21_training``). Detected from the folder, as downloaded:

- ``image_label``: ``image/`` + ``label/`` (ISBI 2012);
- ``masks_per_class``: ``images/`` + ``masks/<k>/``, one binary mask per class (UNeXt, CMUNeXt,
  TinyU-Net code; ``masks/0/`` alone is binary);
- ``images_masks``: ``images/`` + ``masks/`` (Kvasir-SEG, with JPEG masks);
- ``isic2018``: ``*_Input/ISIC_0000000.jpg`` + ``*_GroundTruth/ISIC_0000000_segmentation.png``;
- ``drive``: ``images/21_training.tif`` + ``1st_manual/21_manual1.gif``, field of view
  ``mask/21_training_mask.gif`` (the root, or its ``training/``);
- ``glas``: ``train_1.bmp`` + ``train_1_anno.bmp`` in one folder, instance ids merged to binary;
- ``busi``: ``benign (1).png`` + ``benign (1)_mask.png`` (+ ``_mask_1``, merged) in the class
  folders ``benign/``, ``malignant/``, ``normal/`` (or one of them);
- ``monuseg``: ``img/*.tif`` + ``labelcol/*.png`` (UCTransNet's MoNuSeg; the root, or its
  ``Train_Folder/``).

Any other layout: :class:`Layout` given explicitly (``--images``, ``--masks``, ``--mask-pattern``,
``--ignore``, ``--ignore-pattern``).

Official splits, where a download carries them: top folders ``train``/``training``/``Train_Folder``,
``val``/``validation``/``Val_Folder`` and ``test``/``testing``/``Test_Folder`` that each hold the same
layout (DRIVE's ``training/`` + ``test/``, MoNuSeg's ``Train_Folder``/``Val_Folder``/``Test_Folder``,
any ``train/`` + ``test/``), or ISIC 2018's ``*_Training_*``, ``*_Validation_*`` and ``*_Test_*``
input and ground-truth folders side by side. Every pair then carries its subset.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

from ..core.errors import BenchError, did_you_mean
from .images import IMAGE_SUFFIXES


@dataclass(frozen=True)
class Layout:
    """Where one dataset keeps its files, relative to its root.

    ``images``/``masks``/``ignore`` are folders (``.`` is the root; a ``*`` in a folder name
    matches, the ``Training`` one preferred). ``masks`` ending in ``/*`` means one subfolder per
    class. ``extra_masks`` is a pattern for further masks of one image, merged into its first
    (BUSI). ``groups`` means the pairs live in every subfolder of the root (BUSI's classes).
    ``instances``: mask values are instance ids, foreground is > 0.
    """

    name: str
    images: str
    masks: str
    image_pattern: str = "{stem}"
    mask_pattern: str = "{stem}"
    ignore: Optional[str] = None
    ignore_pattern: str = "{stem}"
    extra_masks: Optional[str] = None
    groups: bool = False
    instances: bool = False
    wrappers: tuple[str, ...] = ()  # subfolders of a download that hold the layout (DRIVE's training/)

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "wrappers" and v not in (None, False)}


KNOWN = (
    Layout("image_label", "image", "label"),
    Layout("masks_per_class", "images", "masks/*"),
    Layout("drive", "images", "1st_manual", "{stem}_*", "{stem}_manual1", "mask", "{stem}_*_mask",
           wrappers=("training",)),
    Layout("images_masks", "images", "masks"),
    Layout("isic2018", "*_Input", "*_GroundTruth", mask_pattern="{stem}_segmentation"),
    Layout("monuseg", "img", "labelcol", wrappers=("Train_Folder",)),
    Layout("glas", ".", ".", mask_pattern="{stem}_anno", instances=True),
    Layout("busi", ".", ".", mask_pattern="{stem}_mask", extra_masks="{stem}_mask_*", groups=True),
)
LAYOUTS = tuple(layout.name for layout in KNOWN)


@dataclass(frozen=True)
class Pair:
    """One sample: its stem, image file, mask files (one, or one per class), further masks merged
    into the first, and the region mask whose zeros are ignored (or None)."""

    stem: str
    image: Path
    masks: tuple[Path, ...]
    extra: tuple[Path, ...] = ()
    ignore: Optional[Path] = None
    subset: Optional[str] = None  # train, val or test where the download splits its files


SUBSETS = ("train", "val", "test")
# names of the folders of an official split, lower case, by subset
SUBSET_FOLDERS = {"train": ("train", "training", "train_folder"), "val": ("val", "valid", "validation", "val_folder"),
                  "test": ("test", "testing", "test_folder")}
ISIC_SUBSETS = {"train": "Training", "val": "Validation", "test": "Test"}


@dataclass(frozen=True)
class DatasetIndex:
    root: Path
    layout: Layout
    pairs: tuple[Pair, ...]
    parts: tuple[tuple[str, str], ...] = ()  # (subset, its folder or folders relative to root) of an official split

    @property
    def official(self) -> dict[str, int]:
        """Images per subset of the official split ({} when the download has none)."""
        counts = {s: sum(p.subset == s for p in self.pairs) for s in SUBSETS}
        return {s: n for s, n in counts.items() if n} if self.parts else {}


def pattern_regex(pattern: str, where: str) -> re.Pattern:
    """``{stem}`` and ``*`` as a regular expression over a file name without its extension."""
    if pattern.count("{stem}") != 1:
        raise BenchError(f"{where}: the pattern {pattern!r} must contain {{stem}} once, e.g. "
                         "'{stem}_mask' or '{stem}_*'.")
    parts = [re.escape(p).replace(r"\*", ".*?") for p in pattern.split("{stem}")]
    return re.compile(f"^{parts[0]}(?P<stem>.+?){parts[1]}$")


def _files(folder: Path) -> list[Path]:
    """The image files of ``folder``, sorted.

    Raises:
        BenchError: a symbolic link that leads nowhere (a loop, or a target gone), which would
            otherwise drop out of the data without a word.
    """
    found = []
    for p in sorted(folder.iterdir()):
        if p.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        if p.is_symlink() and not p.exists():
            raise BenchError(f"{p} is a symbolic link that leads nowhere (a loop, or its target is gone): "
                             "point it at an image, or remove it.")
        if p.is_file():
            found.append(p)
    return found


def _by_stem(files: list[Path], pattern: str, where: str) -> dict[str, list[Path]]:
    regex, found = pattern_regex(pattern, where), {}
    for path in files:
        match = regex.match(path.stem)
        if match:
            found.setdefault(match["stem"], []).append(path)
    return found


def _folder(root: Path, name: str) -> Optional[Path]:
    """``root/name``; a ``*`` in ``name`` matches, the ``Training`` folder preferred."""
    if "*" not in name:
        return root / name if (root / name).is_dir() else None
    found = sorted(p for p in root.glob(name) if p.is_dir())
    training = [p for p in found if "training" in p.name.lower()]
    return (training or found or [None])[0]


def _layout_root(root: Path, layout: Layout) -> Optional[Path]:
    """The folder under which ``layout`` holds (root itself or one of its wrappers), or None."""
    for base in (root, *(root / w for w in layout.wrappers)):
        if not base.is_dir():
            continue
        if layout.images == ".":  # images and masks in one folder: the names must show it
            if any(_pairs_in(g, layout, strict=False) for g in _groups(base, layout)):
                return base
            continue
        folders = [_folder(base, f) for f in (layout.images, layout.masks.removesuffix("/*"), layout.ignore) if f]
        if all(folders) and bool(_class_folders(folders[1])) == layout.masks.endswith("/*"):
            return base  # its folders are there: pairing problems are reported, not guessed around
    return None


def _groups(base: Path, layout: Layout) -> list[Path]:
    """The folders holding pairs: ``base``, or with ``layout.groups`` its subfolders that do."""
    if layout.groups:
        holding = [g for g in sorted(base.iterdir()) if g.is_dir() and _pairs_in(g, layout, strict=False)]
        if holding:
            return holding
    return [base]


def detect_layout(root: Path) -> tuple[Path, Layout]:
    """The known layout of ``root`` (and the folder it holds under).

    Raises:
        BenchError: no known layout, listing what was found and the explicit options.
    """
    for layout in KNOWN:
        base = _layout_root(root, layout)
        if base is not None:
            return base, layout
    found = ", ".join(sorted(p.name + "/" for p in root.iterdir() if p.is_dir())) or "no folders"
    raise BenchError(
        f"{root}: no known dataset layout (found {found}). Recognised as downloaded: "
        f"{', '.join(LAYOUTS)} (see `bench data inspect --help`). For any other layout name the "
        "folders and the mask names: --images DIR --masks DIR --mask-pattern '{stem}_mask' "
        "(and --ignore DIR for field-of-view masks)."
    )


def _class_folders(masks: Path) -> list[Path]:
    folders = [p for p in masks.iterdir() if p.is_dir()] if masks.is_dir() else []
    return sorted(folders, key=lambda p: (not p.name.isdigit(), int(p.name) if p.name.isdigit() else 0, p.name))


def named_layout(name: str) -> Layout:
    for layout in KNOWN:
        if layout.name == name:
            return layout
    raise BenchError(f"unknown layout {name!r}. {did_you_mean(name, LAYOUTS)} Layouts: {', '.join(LAYOUTS)}.")


def index_dataset(root: Path, layout: Optional[Layout] = None) -> DatasetIndex:
    """Every pair under ``root``, by ``layout`` (default: detected).

    Raises:
        BenchError: missing folder, unknown layout, no images, or images and masks that do not
            pair up (a few names of each kind are listed).
    """
    root = Path(root)
    if not root.is_dir():
        raise BenchError(f"{root}: no such dataset folder.")
    official = official_parts(root, layout)
    if official:
        return _index_parts(root, official)
    if layout is None:
        root, layout = detect_layout(root)
    else:
        root = _layout_root(root, layout) or root
    pairs = [p for group in _groups(root, layout) for p in _pairs_in(group, layout, strict=True)]
    stems = [p.stem for p in pairs]
    if len(set(stems)) != len(stems):
        twice = sorted({s for s in stems if stems.count(s) > 1})
        raise BenchError(f"{root}: {len(twice)} names occur in several folders ({_few(twice)}); "
                         "every image needs a name of its own.")
    if not pairs:
        raise BenchError(f"{root}: no images ({', '.join(IMAGE_SUFFIXES)}) matching "
                         f"{layout.image_pattern!r} in {layout.images}/.")
    return DatasetIndex(root, layout, tuple(pairs))


def official_parts(root: Path, layout: Optional[Layout] = None) -> list[tuple[str, Path, Layout]]:
    """(subset, folder, layout) of each part of an official split under ``root``, or [] when it
    has none: a train and a test part at least, each holding ``layout`` (default: detected, the
    same in every part)."""
    folders = {}
    for child in sorted(p for p in root.iterdir() if p.is_dir()):
        for subset, names in SUBSET_FOLDERS.items():
            if child.name.lower() in names:
                folders.setdefault(subset, child)
    if "train" in folders and "test" in folders:
        parts = []
        for subset in (s for s in SUBSETS if s in folders):
            try:
                base, found = (_layout_root(folders[subset], layout), layout) if layout else detect_layout(folders[subset])
            except BenchError:  # a folder named test/ that holds no dataset: no official split
                return []
            if base is None or (parts and parts[0][2].name != found.name):
                return []
            parts.append((subset, base, found))
        return parts
    return _isic_parts(root, layout)


def _isic_parts(root: Path, layout: Optional[Layout]) -> list[tuple[str, Path, Layout]]:
    """ISIC 2018's subsets as folders side by side: ``*_Training_Input`` with
    ``*_Training_GroundTruth``, and so on; a subset without ground truth (a test set whose masks
    were withheld) is no part."""
    isic = layout or named_layout("isic2018")
    if isic.name != "isic2018":
        return []
    parts = []
    for subset, word in ISIC_SUBSETS.items():
        images, masks = f"*{word}_Input", f"*{word}_GroundTruth"
        if _folder(root, images) and _folder(root, masks):
            parts.append((subset, root, replace(isic, images=images, masks=masks)))
    subsets = [p[0] for p in parts]
    return parts if "train" in subsets and "test" in subsets else []


def _index_parts(root: Path, parts: list[tuple[str, Path, Layout]]) -> DatasetIndex:
    """The pairs of every part, each tagged with its subset; stems that recur across parts
    (``train/1.png`` and ``test/1.png``) are prefixed with their subset."""
    found = []
    for subset, base, layout in parts:
        pairs = [p for group in _groups(base, layout) for p in _pairs_in(group, layout, strict=True)]
        if not pairs:
            raise BenchError(f"{base}: the official {subset} split holds no images.")
        found.append([replace(p, subset=subset) for p in pairs])
    stems = [p.stem for pairs in found for p in pairs]
    if len(set(stems)) != len(stems):
        found = [[replace(p, stem=f"{p.subset}-{p.stem}") for p in pairs] for pairs in found]
    return DatasetIndex(root, parts[0][2], tuple(p for pairs in found for p in pairs),
                        tuple((subset, str(base.relative_to(root)) if base != root else layout.images)
                              for subset, base, layout in parts))


def _pairs_in(root: Path, layout: Layout, strict: bool) -> list[Pair]:
    """The pairs of one folder; ``strict`` raises on missing folders and unpaired files instead
    of returning []."""
    def folder(name: str, what: str) -> Optional[Path]:
        found = _folder(root, name)
        if found is None and strict:
            raise BenchError(f"{root}: layout {layout.name} needs the {what} folder {name}/.")
        return found

    image_dir = folder(layout.images, "image")
    per_class = layout.masks.endswith("/*")
    mask_root = folder(layout.masks.removesuffix("/*"), "mask")
    ignore_dir = folder(layout.ignore, "ignore-mask") if layout.ignore else None
    if image_dir is None or mask_root is None or (layout.ignore and ignore_dir is None):
        return []
    mask_dirs = _class_folders(mask_root) if per_class else [mask_root]
    if not mask_dirs:
        if strict:
            raise BenchError(f"{mask_root}: layout {layout.name} needs one subfolder of masks per class "
                             "(masks/0/, masks/1/, ...).")
        return []
    where = f"layout {layout.name}"
    taken: set[Path] = set()  # files that are masks of some image, when masks and images share a folder
    masks = []
    for d in mask_dirs:
        masks.append({s: f[0] for s, f in _by_stem(_files(d), layout.mask_pattern, where).items()})
        taken.update(masks[-1].values())
    extras = {}
    if layout.extra_masks:
        extras = _by_stem(_files(mask_root), layout.extra_masks, where)
        taken.update(p for paths in extras.values() for p in paths)
    ignores = _by_stem(_files(ignore_dir), layout.ignore_pattern, where) if ignore_dir else {}
    taken.update(p for paths in ignores.values() for p in paths)
    images = {s: f[0] for s, f in _by_stem([p for p in _files(image_dir) if p not in taken],
                                           layout.image_pattern, where).items()}
    if not images:
        if strict:
            raise BenchError(f"{image_dir}: no images ({', '.join(IMAGE_SUFFIXES)}) named "
                             f"{layout.image_pattern!r} in this folder.")
        return []
    for d, found in zip(mask_dirs, masks):
        if not _pairs_up(image_dir, images, d, found, layout.mask_pattern, strict):
            return []
    if ignore_dir is not None:
        single = {s: f[0] for s, f in ignores.items()}
        if not _pairs_up(image_dir, images, ignore_dir, single, layout.ignore_pattern, strict):
            return []
    return [Pair(stem, images[stem], tuple(m[stem] for m in masks), tuple(extras.get(stem, ())),
                 ignores[stem][0] if ignore_dir else None) for stem in images]


def _pairs_up(image_dir: Path, images: dict, mask_dir: Path, masks: dict, pattern: str, strict: bool) -> bool:
    lonely_images = sorted(set(images) - set(masks))
    lonely_masks = sorted(set(masks) - set(images))
    if not lonely_images and not lonely_masks:
        return True
    if not strict:
        return False
    parts = []
    if lonely_images:
        parts.append(f"{len(lonely_images)} images in {image_dir} have no mask named {pattern!r} in "
                     f"{mask_dir} ({_few(lonely_images)})")
    if lonely_masks:
        parts.append(f"{len(lonely_masks)} masks in {mask_dir} have no image in {image_dir} "
                     f"({_few(lonely_masks)})")
    raise BenchError("; ".join(parts) + ". Images and masks pair up by the {stem} of their names: add or "
                     "remove files, or give the mask names with --mask-pattern (e.g. '{stem}_mask').")


def explicit_layout(images: str, masks: str, image_pattern: Optional[str] = None,
                    mask_pattern: Optional[str] = None, ignore: Optional[str] = None,
                    ignore_pattern: Optional[str] = None, instances: bool = False) -> Layout:
    """A layout from folders and patterns a user named (relative to the dataset root)."""
    layout = Layout("explicit", images, masks, image_pattern or "{stem}", mask_pattern or "{stem}", ignore,
                    ignore_pattern or "{stem}", instances=instances)
    for name, pattern in (("--image-pattern", layout.image_pattern), ("--mask-pattern", layout.mask_pattern),
                          ("--ignore-pattern", layout.ignore_pattern)):
        pattern_regex(pattern, name)
    return layout


def with_patterns(layout: Layout, mask_pattern: Optional[str], image_pattern: Optional[str],
                  ignore: Optional[str], ignore_pattern: Optional[str], instances: bool) -> Layout:
    """``layout`` with the patterns and folders a user gave instead of its own."""
    changes = {k: v for k, v in (("mask_pattern", mask_pattern), ("image_pattern", image_pattern),
                                 ("ignore", ignore), ("ignore_pattern", ignore_pattern)) if v}
    if instances:
        changes["instances"] = True
    return replace(layout, **changes) if changes else layout


def _few(names: list[str]) -> str:
    return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
