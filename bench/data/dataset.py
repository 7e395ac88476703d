"""Datasets held in memory as uint8 at the working scale: a folder, or the synthetic default.

Files are decoded one at a time and kept only at the scale the protocol works at (images
(C, H, W) and labels (H, W) uint8), so memory is what the working-scale set needs: ISIC 2018's
2,594 images at 256 px take about 0.7 GB. Batches are converted to float as they are drawn.
"""
from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..core.errors import BenchError
from .images import IGNORE, MaskEncoding, mask_encoding, read_image, read_mask
from .decode_cache import DecodeCache, Decoded, decode_key
from .layouts import DatasetIndex, Layout, Pair, index_dataset
from .protocol import Protocol
from .synthetic import synthetic_sample

SYNTHETIC = "synthetic"


@dataclass
class SegmentationData:
    """Images (C, H, W) uint8 and labels (H, W) uint8 class indices (:data:`IGNORE` where left
    out), one per stem, at the working scale of ``protocol``.

    ``targets`` holds the labels at each image's own size where that differs from the working
    scale (patches with ``scale``): metrics are computed against them. ``source`` is the
    folder, or ``synthetic``; ``content_hash`` identifies the files (stems and byte sizes) or the
    generator settings; ``notes`` lists what was converted on the way. ``subsets`` maps each
    stem to its subset (train, val, test) where the download carries an official split.
    """

    source: str
    stems: list[str]
    images: list[torch.Tensor]
    labels: list[torch.Tensor]
    classes: int
    encoding: str
    content_hash: str
    protocol: Protocol = field(default_factory=Protocol)
    notes: list[str] = field(default_factory=list)
    targets: Optional[list[torch.Tensor]] = None
    layout: Optional[dict] = None
    subsets: Optional[dict[str, str]] = None

    def subset(self, stems: Sequence[str]) -> "SegmentationData":
        position = {s: i for i, s in enumerate(self.stems)}
        rows = [position[s] for s in stems]
        return replace(self, stems=list(stems), images=[self.images[i] for i in rows],
                       labels=[self.labels[i] for i in rows],
                       targets=None if self.targets is None else [self.targets[i] for i in rows])

    def scoring_labels(self) -> list[torch.Tensor]:
        """The labels metrics compare with: at each image's own size in patch mode."""
        return self.targets if self.targets is not None else self.labels

    def batch(self, rows: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Whole samples ``rows`` (of one size) as float images (B, C, H, W) in [0, 1] and int64
        labels (B, H, W)."""
        return as_float(torch.stack([self.images[i] for i in rows])), torch.stack(
            [self.labels[i] for i in rows]).long()

    def sizes(self) -> Counter:
        """(H, W) at the working scale -> count."""
        return Counter(tuple(image.shape[1:]) for image in self.images)

    @property
    def input_size(self) -> int:
        """The side of the square inputs the network trains on (the patch, or the resized image)."""
        return self.protocol.input_size or int(self.images[0].shape[-1])

    def record(self) -> dict:
        """What a run records of its data: source, files, encoding, protocol, notes."""
        return {"source": self.source, "content_hash": self.content_hash, "size": self.input_size,
                "classes": self.classes, "encoding": self.encoding, "layout": self.layout,
                "protocol": self.protocol.to_dict(), "protocol_text": self.protocol.describe(), "notes": self.notes}


def as_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 images to float in [0, 1]."""
    return images.float().div_(255)


def load_data(data: Optional[str], protocol: Protocol, channels: int = 3, layout: Optional[Layout] = None,
              synthetic_count: int = 120, seed: int = 0) -> SegmentationData:
    """``data`` (a folder, or None / "synthetic" for the built-in set) by ``protocol``.

    Raises:
        BenchError: see :func:`load_folder`.
    """
    if data in (None, SYNTHETIC):
        return load_synthetic(synthetic_count, protocol.size or protocol.patch or 64, seed=seed,
                              protocol=protocol)
    return load_folder(Path(data), protocol, channels, layout)


def load_synthetic(count: int, size: int, classes: int = 2, seed: int = 0,
                   protocol: Optional[Protocol] = None) -> SegmentationData:
    samples = [synthetic_sample(i, size, classes, seed) for i in range(count)]
    settings = f"{SYNTHETIC}:count={count},size={size},classes={classes},seed={seed}"
    return SegmentationData(
        source=SYNTHETIC,
        stems=[f"{i:05d}" for i in range(count)],
        images=[(image * 255).round().to(torch.uint8) for image, _ in samples],
        labels=[label.to(torch.uint8) for _, label in samples],
        classes=classes,
        encoding="class indices (synthetic)",
        content_hash=hashlib.sha256(settings.encode()).hexdigest(),
        protocol=protocol or Protocol(size=size),
        notes=[settings],
    )


def content_hash(index: DatasetIndex) -> str:
    """SHA-256 over every pair's stem (and official subset) and file sizes: changes when files are
    added, removed, moved between subsets or rewritten with other content length."""
    digest = hashlib.sha256()
    for pair in index.pairs:
        digest.update(pair.stem.encode() + (f"@{pair.subset}".encode() if pair.subset else b""))
        for path in (pair.image, *pair.masks, *pair.extra, *([pair.ignore] if pair.ignore else [])):
            digest.update(str(path.stat().st_size).encode())
    return digest.hexdigest()


@dataclass
class _Reading:
    """What reading a folder's files found, file by file (for checks, notes and inspect)."""

    encodings: dict[str, list[Path]] = field(default_factory=dict)  # kind -> files
    classes: int = 2
    intermediate: int = 0  # binary 0/255 masks with values in between (resized, JPEG)
    ignored: int = 0
    pixels: int = 0
    gray: int = 0

    def add(self, path: Path, encoding: MaskEncoding) -> None:
        self.encodings.setdefault(encoding.kind, []).append(path)
        self.classes = max(self.classes, encoding.classes)
        self.intermediate += encoding.interpolated

    def describe(self) -> str:
        return "; ".join(f"{MaskEncoding(kind, self.classes).describe()} ({len(files)} files)"
                         for kind, files in sorted(self.encodings.items(), key=lambda kv: -len(kv[1])))

    def check(self, root: Path) -> None:
        if "index" in self.encodings and self.classes > 2 and "binary255" in self.encodings:
            raise BenchError(
                f"{root}: masks mix encodings: {self.encodings['binary255'][0]} is binary stored 0/255, but "
                f"{self.encodings['index'][0]} holds class indices 0..{self.classes - 1}. Save every mask "
                "the same way (class indices, or 0/255 for a binary set).")


def read_label(pair: Pair, instances: bool, reading: _Reading) -> np.ndarray:
    """(H, W) uint8 class indices of ``pair`` at its stored size, IGNORE outside its region mask."""
    if len(pair.masks) == 1:
        mask = read_mask(pair.masks[0])
        encoding = mask_encoding(mask, pair.masks[0], instances)
        reading.add(pair.masks[0], encoding)
        label = encoding.to_classes(mask)
        for extra in pair.extra:  # further masks of the same image (BUSI's _mask_1): their union
            more = read_mask(extra)
            _same_size(pair, extra, more, label)
            label = np.maximum(label, mask_encoding(more, extra, instances).to_classes(more))
    else:  # one binary mask per class: later classes win where they overlap
        label = None
        for k, path in enumerate(pair.masks, start=1):
            mask = read_mask(path)
            encoding = mask_encoding(mask, path, instances)
            reading.add(path, replace(encoding, classes=2))
            label = np.zeros(mask.shape, np.uint8) if label is None else label
            _same_size(pair, path, mask, label)
            label[encoding.to_classes(mask) > 0] = k
        reading.classes = len(pair.masks) + 1
    if pair.ignore is not None:
        region = read_mask(pair.ignore)
        _same_size(pair, pair.ignore, region, label)
        label = label.copy()
        label[region == 0] = IGNORE
        reading.ignored += int((region == 0).sum())
    reading.pixels += label.size
    return label


def _same_size(pair: Pair, path: Path, mask: np.ndarray, label: np.ndarray) -> None:
    if mask.shape != label.shape:
        raise BenchError(f"{path} is {mask.shape[1]}x{mask.shape[0]} but the other masks of {pair.image} are "
                         f"{label.shape[1]}x{label.shape[0]}: every mask of an image has the image's size.")


def load_folder(root: Path, protocol: Protocol, channels: int = 3,
                layout: Optional[Layout] = None) -> SegmentationData:
    """Every pair of the folder, one file at a time, at the working scale of ``protocol``
    (images bilinear with antialiasing; binary labels bilinear then thresholded at 0.5, class
    indices and ignored regions nearest).

    Raises:
        BenchError: layout or pairing problems, unreadable files, images and masks of different
            sizes, mask files of no known encoding or of mixed encodings, images of several
            sizes in resize mode without a size.
    """
    index = index_dataset(root, layout)
    cache, key = DecodeCache(), decode_key(index, protocol, channels)
    decoded = cache.get(key)
    if decoded is None:
        decoded = decode(index, protocol, channels)
        cache.put(key, decoded)
    data = SegmentationData(str(index.root.resolve()), [p.stem for p in index.pairs], decoded.images, decoded.labels,
                            decoded.classes, decoded.encoding, content_hash(index), protocol,
                            decoded.notes, decoded.targets, index.layout.to_dict(),
                            {p.stem: p.subset for p in index.pairs} if index.official else None)
    if protocol.mode == "resize" and len(data.sizes()) > 1:
        raise BenchError(f"{root}: images come in {len(data.sizes())} sizes ({_sizes(data.sizes())}); give --size "
                         "to resize them all, or --patch to train on patches at native resolution.")
    return data


def decode(index: DatasetIndex, protocol: Protocol, channels: int) -> Decoded:
    """Every pair of ``index`` read, checked and brought to the working scale of ``protocol``.

    Raises:
        BenchError: see :func:`load_folder`.
    """
    reading, images, labels, targets = _Reading(), [], [], []
    for pair in index.pairs:
        image = read_image(pair.image)
        reading.gray += image.shape[2] == 1 and channels == 3
        label = read_label(pair, index.layout.instances, reading)
        check_same_size(pair, image, label)
        target = working_size(image.shape[:2], protocol)
        images.append(_image_at(image, target, channels))
        labels.append(_label_at(torch.from_numpy(label), target))
        if protocol.patch is not None and target != image.shape[:2]:
            targets.append(torch.from_numpy(label))
        del image, label
    reading.check(index.root)
    return Decoded(images, labels, targets or None, reading.classes, reading.describe(), _notes(reading))


def working_size(shape: tuple[int, int], protocol: Protocol) -> tuple[int, int]:
    """(H, W) an image of ``shape`` is kept at under ``protocol``."""
    if protocol.patch is not None:
        return (max(1, round(shape[0] * protocol.scale)), max(1, round(shape[1] * protocol.scale)))
    return (protocol.size, protocol.size) if protocol.size else tuple(shape)


def _image_at(image: np.ndarray, size: tuple[int, int], channels: int) -> torch.Tensor:
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)
    if x.shape[0] != channels:
        x = x.float().mean(0, keepdim=True).round().to(torch.uint8) if channels == 1 else x[:channels]
        x = x.expand(channels, -1, -1) if x.shape[0] == 1 else x
    if tuple(x.shape[1:]) != size:
        x = F.interpolate(x[None].float(), size=size, mode="bilinear", align_corners=False, antialias=True)[0]
        x = x.round().clamp(0, 255).to(torch.uint8)
    return x.contiguous()


def _label_at(label: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``label`` (H, W) uint8 at ``size``: a binary foreground bilinear then > 0.5 (smooth edges),
    more classes and the ignored region nearest."""
    if tuple(label.shape) == size:
        return label
    ignored = label == IGNORE
    kept = label[~ignored]
    if not kept.numel() or int(kept.max()) <= 1:
        fg = F.interpolate((label == 1).float()[None, None], size=size, mode="bilinear", align_corners=False)
        out = (fg[0, 0] > 0.5).to(torch.uint8)
    else:
        out = F.interpolate(label.float()[None, None], size=size, mode="nearest")[0, 0].to(torch.uint8)
    if ignored.any():
        out[F.interpolate(ignored.float()[None, None], size=size, mode="nearest")[0, 0] > 0] = IGNORE
    return out


def _notes(reading: _Reading) -> list[str]:
    notes = []
    if reading.gray:
        notes.append(f"{reading.gray} grayscale images replicated to the network's 3 channels")
    if reading.intermediate:
        notes.append(f"{reading.intermediate} binary masks hold values between 0 and 255 (resized or JPEG): "
                     "thresholded at > 127")
    if reading.ignored:
        notes.append(f"{reading.ignored / reading.pixels:.1%} of pixels outside the region masks: left out of "
                     "loss and metrics")
    return notes


def check_same_size(pair, image: np.ndarray, label: np.ndarray) -> None:
    """Refuse a mask whose size differs from its image's (H, W).

    Raises:
        BenchError: naming both files and both sizes.
    """
    if label.shape != image.shape[:2]:
        raise BenchError(
            f"{pair.image} is {image.shape[1]}x{image.shape[0]} but its mask {pair.masks[0]} is "
            f"{label.shape[1]}x{label.shape[0]}: an image and its mask must have the same size.")


def inspect_folder(root: Path, layout: Optional[Layout] = None) -> dict:
    """What ``bench data inspect`` reports: layout and folders, pairs, sizes, channels, mask
    encodings per file, classes, ignored share, class balance (share of the pixels not ignored,
    at the stored size) and notes.

    Raises:
        BenchError: the same problems :func:`load_folder` refuses.
    """
    index = index_dataset(root, layout)
    reading, counts, sizes, channels = _Reading(), Counter(), Counter(), Counter()
    for pair in index.pairs:
        image = read_image(pair.image)
        label = read_label(pair, index.layout.instances, reading)
        check_same_size(pair, image, label)
        sizes[f"{image.shape[1]}x{image.shape[0]}"] += 1
        channels[image.shape[2]] += 1
        values, found = np.unique(label[label != IGNORE], return_counts=True)
        counts.update(dict(zip(values.tolist(), found.tolist())))
    reading.check(root)
    total = sum(counts.values()) or 1
    notes = _notes(reading)
    if len(sizes) > 1:
        notes.append(f"images come in {len(sizes)} sizes: train with --size (resized) or --patch (native)")
    return {
        "root": str(index.root), "layout": index.layout.name, "folders": index.layout.to_dict(),
        "pairs": len(index.pairs), "splits": index.official, "split_folders": dict(index.parts),
        "sizes": dict(sizes), "channels": dict(channels),
        "mask_encoding": reading.describe(),
        "mask_files": {kind: len(files) for kind, files in reading.encodings.items()},
        "classes": reading.classes,
        "class_balance": [round(counts.get(c, 0) / total, 4) for c in range(reading.classes)],
        "ignored": round(reading.ignored / max(reading.pixels, 1), 4),
        "region_masks": sum(p.ignore is not None for p in index.pairs),
        "content_hash": content_hash(index), "notes": notes,
    }


def _sizes(sizes: Counter) -> str:
    return ", ".join(f"{w}x{h} ({n})" for (h, w), n in sizes.most_common(4))
