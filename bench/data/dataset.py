"""Datasets held in memory as tensors at the training size: a folder, or the synthetic default."""
from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import BenchError
from .images import MaskEncoding, detect_encoding, read_image, read_mask
from .layouts import DatasetIndex, index_dataset
from .synthetic import synthetic_sample

SYNTHETIC = "synthetic"


@dataclass
class SegmentationData:
    """Images (N, C, S, S) float in [0, 1] and labels (N, S, S) int64 class indices.

    ``source`` is the folder, or ``synthetic``; ``content_hash`` identifies the files (stems and
    byte sizes) or the generator settings; ``notes`` lists what was converted on the way.
    """

    source: str
    stems: list[str]
    images: torch.Tensor
    labels: torch.Tensor
    classes: int
    encoding: str
    content_hash: str
    notes: list[str] = field(default_factory=list)

    def subset(self, stems: list[str]) -> "SegmentationData":
        position = {s: i for i, s in enumerate(self.stems)}
        rows = torch.tensor([position[s] for s in stems], dtype=torch.long)
        return SegmentationData(self.source, list(stems), self.images[rows], self.labels[rows],
                                self.classes, self.encoding, self.content_hash, self.notes)


def load_data(data: Optional[str], size: Optional[int], channels: int = 3,
              layout: Optional[str] = None, synthetic_count: int = 120, seed: int = 0) -> SegmentationData:
    """``data`` (a folder, or None / "synthetic" for the built-in set) at ``size`` x ``size``.

    Raises:
        BenchError: see :func:`load_folder`.
    """
    if data in (None, SYNTHETIC):
        return load_synthetic(synthetic_count, size or 64, seed=seed)
    return load_folder(Path(data), size, channels, layout)


def load_synthetic(count: int, size: int, classes: int = 2, seed: int = 0) -> SegmentationData:
    samples = [synthetic_sample(i, size, classes, seed) for i in range(count)]
    settings = f"{SYNTHETIC}:count={count},size={size},classes={classes},seed={seed}"
    return SegmentationData(
        source=SYNTHETIC,
        stems=[f"{i:05d}" for i in range(count)],
        images=torch.stack([s[0] for s in samples]),
        labels=torch.stack([s[1] for s in samples]),
        classes=classes,
        encoding="class indices (synthetic)",
        content_hash=hashlib.sha256(settings.encode()).hexdigest(),
        notes=[settings],
    )


def content_hash(index: DatasetIndex) -> str:
    """SHA-256 over every pair's stem and file sizes: changes when files are added, removed or
    rewritten with other content length."""
    digest = hashlib.sha256()
    for pair in index.pairs:
        digest.update(pair.stem.encode())
        for path in (pair.image, *pair.masks):
            digest.update(str(path.stat().st_size).encode())
    return digest.hexdigest()


def load_folder(root: Path, size: Optional[int], channels: int = 3,
                layout: Optional[str] = None) -> SegmentationData:
    """Every pair of the folder, resized to ``size`` (images bilinear; binary masks bilinear then
    thresholded at 127 of 255, index masks nearest).

    Raises:
        BenchError: layout or pairing problems, unreadable files, image and mask of different
            sizes, mask values of no known encoding, images of several sizes without ``size``.
    """
    index, raw, encoding, values = read_checked(root, layout)
    classes = dataset_classes(index, encoding)
    sizes = Counter(image.shape[:2] for image, _ in raw)
    if size is None and len(sizes) > 1:
        raise BenchError(f"{root}: images come in {len(sizes)} sizes ({_sizes(sizes)}); give --size "
                         "to resize them all.")
    notes = []
    if channels == 3 and raw[0][0].shape[2] == 1:
        notes.append("grayscale images replicated to 3 channels")
    if encoding.kind == "binary255" and not values <= {0, 255}:
        notes.append(f"{len(values) - 2} intermediate mask values (resized masks), thresholded at > 127")
    images, labels = zip(*(_to_tensors(image, masks, encoding, size, channels) for image, masks in raw))
    return SegmentationData(str(root.resolve()), [p.stem for p in index.pairs], torch.stack(images),
                            torch.stack(labels), classes, encoding.describe(),
                            content_hash(index), notes)


def read_checked(root: Path, layout: Optional[str] = None):
    """Index ``root`` and read every pair, checking sizes and mask values.

    Returns (index, [(image (H, W, C), [mask (H, W)])], mask encoding, stored mask values).
    """
    index = index_dataset(root, layout)
    raw, values = [], set()
    for pair in index.pairs:
        image = read_image(pair.image)
        masks = [read_mask(m) for m in pair.masks]
        for path, mask in zip(pair.masks, masks):
            if mask.shape != image.shape[:2]:
                raise BenchError(
                    f"{pair.image} is {image.shape[1]}x{image.shape[0]} but its mask {path} is "
                    f"{mask.shape[1]}x{mask.shape[0]}: an image and its mask must have the same size."
                )
            values.update(np.unique(mask).tolist())
        raw.append((image, masks))
    return index, raw, detect_encoding(values, f"{root} ({index.layout} masks)"), values


def dataset_classes(index: DatasetIndex, encoding: MaskEncoding) -> int:
    """Classes, background included: from the mask values, or one per mask folder plus background."""
    per_pair = len(index.pairs[0].masks)
    return encoding.classes if per_pair == 1 else per_pair + 1


def inspect_folder(root: Path, layout: Optional[str] = None) -> dict:
    """What ``bench data inspect`` reports: layout, pairs, sizes, channels, mask encoding, classes,
    class balance (fraction of pixels per class at the stored size) and notes.

    Raises:
        BenchError: the same problems :func:`load_folder` refuses.
    """
    index, raw, encoding, values = read_checked(root, layout)
    classes = dataset_classes(index, encoding)
    counts = np.zeros(classes)
    for _, masks in raw:
        if len(masks) == 1:
            counts += np.bincount(encoding.to_classes(masks[0]).ravel(), minlength=classes)[:classes]
        else:
            label = np.zeros(masks[0].shape, dtype=np.int64)
            for k, mask in enumerate(masks, start=1):
                label[encoding.to_classes(mask) > 0] = k
            counts += np.bincount(label.ravel(), minlength=classes)
    sizes = Counter(f"{image.shape[1]}x{image.shape[0]}" for image, _ in raw)
    channels = Counter(image.shape[2] for image, _ in raw)
    notes = []
    if len(sizes) > 1:
        notes.append(f"images come in {len(sizes)} sizes: training needs --size")
    if encoding.kind == "binary255" and not values <= {0, 255}:
        notes.append(f"{len(values) - 2} intermediate mask values (masks resized with "
                     "interpolation): thresholded at > 127")
    return {
        "root": str(root), "layout": index.layout, "pairs": len(index.pairs),
        "sizes": dict(sizes), "channels": dict(channels), "mask_encoding": encoding.describe(),
        "classes": classes, "class_balance": (counts / counts.sum()).round(4).tolist(),
        "content_hash": content_hash(index), "notes": notes,
    }


def _to_tensors(image: np.ndarray, masks: list[np.ndarray], encoding: MaskEncoding,
                size: Optional[int], channels: int) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float() / 255
    if x.shape[0] != channels:
        x = x.mean(0, keepdim=True).expand(channels, -1, -1) if x.shape[0] in (1, 3) else x[:channels]
    if len(masks) == 1:
        label = torch.from_numpy(encoding.to_classes(masks[0]))
        if size is not None and tuple(label.shape) != (size, size):
            if encoding.kind == "binary255":
                resized = F.interpolate(torch.from_numpy(masks[0].astype(np.float32))[None, None],
                                        size=(size, size), mode="bilinear", align_corners=False)
                label = (resized[0, 0] > 127).long()
            else:
                label = F.interpolate(label[None, None].float(), size=(size, size), mode="nearest")[0, 0].long()
    else:  # one binary mask per class: later classes win where they overlap
        label = torch.zeros(masks[0].shape, dtype=torch.int64)
        for k, mask in enumerate(masks, start=1):
            label[torch.from_numpy(encoding.to_classes(mask)) > 0] = k
        if size is not None and tuple(label.shape) != (size, size):
            label = F.interpolate(label[None, None].float(), size=(size, size), mode="nearest")[0, 0].long()
    if size is not None and tuple(x.shape[1:]) != (size, size):
        x = F.interpolate(x[None], size=(size, size), mode="bilinear", align_corners=False, antialias=True)[0]
    return x.contiguous(), label


def _sizes(sizes: Counter) -> str:
    return ", ".join(f"{w}x{h} ({n})" for (h, w), n in sizes.most_common(4))
