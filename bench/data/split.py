"""A fixed, seeded train/val/test split, stored as JSON next to the runs that use it.

Modes: ``official`` keeps the test set a download ships (DRIVE's ``test/``, MoNuSeg's
``Test_Folder``, ISIC 2018's Test folders) and its validation set, or draws validation as a seeded
share of the official training set; ``random`` shuffles every image and cuts 60/20/20 (the TinyU-Net
paper's protocol); ``kfold`` cuts every image into K folds with the seed (nnU-Net reports 5-fold
cross-validation), each fold the test set of one split whose validation is a seeded quarter of the
other folds. By default a dataset with an official split is split the official way.
"""
from __future__ import annotations

import hashlib
import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

from ..core.errors import BenchError
from ..core.files import write_text

SPLIT_MODES = ("official", "random", "kfold")
ONE_SPLIT_MODES = ("official", "random")  # the modes that make one split
DEFAULT_FOLDS = 5


@dataclass(frozen=True)
class Split:
    """Stems of each subset, with what they were drawn from and how."""

    source: str
    content_hash: str
    seed: int
    fractions: tuple[float, float, float]
    train: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...]
    mode: str = "random"
    fold: Optional[tuple[int, int]] = None  # (index from 0, folds) of a k-fold split

    def describe(self) -> str:
        """How the test set was made, for tables, runs and reports: ``official test split (20 images)``."""
        if self.mode == "official":
            return f"official test split ({len(self.test)} images)"
        if self.fold is not None:
            return f"fold {self.fold[0] + 1} of {self.fold[1]}, seed {self.seed} ({len(self.test)} test images)"
        shares = "/".join(f"{round(100 * f)}" for f in self.fractions)
        return f"random {shares} split, seed {self.seed} ({len(self.test)} test images)"

    @property
    def hash(self) -> str:
        """SHA-256 of the three stem lists: equal hashes mean the same split."""
        lists = json.dumps([list(self.train), list(self.val), list(self.test)])
        return hashlib.sha256(lists.encode()).hexdigest()

    def to_record(self) -> dict:
        """The split as ``split.json`` holds it (and checkpoints and MLflow models carry it)."""
        return {**asdict(self), "hash": self.hash, "description": self.describe()}

    def save(self, path: Path) -> None:
        write_text(path, json.dumps(self.to_record(), indent=1) + "\n")


def make_split(stems: list[str], source: str, content_hash: str, seed: int = 0,
               fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)) -> Split:
    """Shuffle the sorted ``stems`` with ``seed`` and cut by ``fractions`` (train, val, test).

    Every subset gets at least one sample.
    """
    if len(stems) < 3:
        raise BenchError(f"{source}: {len(stems)} samples cannot be split into train, val and test.")
    order = sorted(stems)
    random.Random(seed).shuffle(order)
    n = len(order)
    n_val = max(1, round(fractions[1] * n))
    n_test = max(1, round(fractions[2] * n))
    n_train = n - n_val - n_test
    return Split(source, content_hash, seed, tuple(fractions), tuple(order[:n_train]),
                 tuple(order[n_train:n_train + n_val]), tuple(order[n_train + n_val:]))


def split_dataset(stems: list[str], source: str, content_hash: str, seed: int = 0, mode: Optional[str] = None,
                  subsets: Optional[dict[str, str]] = None) -> Split:
    """The split of a dataset's ``stems`` by ``mode`` (None: official where ``subsets``, the
    official subset of each stem, are given; else random).

    Raises:
        BenchError: an unknown mode, or ``official`` for a dataset that ships no split.
    """
    if mode is not None and mode not in SPLIT_MODES:
        raise BenchError(f"split mode {mode!r}: unknown; choose one of {', '.join(SPLIT_MODES)}.")
    if mode == "official" and not subsets:
        raise BenchError(f"{source}: the dataset ships no official split (no train/ and test/ folders, nor "
                         "Train_Folder/ and Test_Folder/, nor ISIC 2018's Training and Test folders); use "
                         "--split-mode random.")
    if mode == "kfold":
        raise BenchError("k-fold cross-validation makes several splits: give --folds K to `bench train`, "
                         "`bench compare` or `bench run` (data.folds in a space).")
    if mode == "random" or not subsets:
        return make_split(stems, source, content_hash, seed)
    return official_split(stems, subsets, source, content_hash, seed)


def official_split(stems: list[str], subsets: dict[str, str], source: str, content_hash: str, seed: int = 0,
                   val_share: float = 0.25) -> Split:
    """The official test set; the official validation set, or else ``val_share`` of the official
    training set drawn with ``seed`` (a quarter: 60/20/20 of train plus validation)."""
    part = {name: sorted(s for s in stems if subsets.get(s) == name) for name in ("train", "val", "test")}
    train, val = part["train"], part["val"]
    if not val:
        if len(train) < 2:
            raise BenchError(f"{source}: the official training set has {len(train)} image(s), too few to draw "
                             "validation from; use --split-mode random.")
        train, val = _draw_validation(train, random.Random(seed), val_share)
    return _split(source, content_hash, seed, train, val, part["test"], "official")


def kfold_splits(stems: list[str], source: str, content_hash: str, folds: int = DEFAULT_FOLDS, seed: int = 0,
                 val_share: float = 0.25) -> list[Split]:
    """``folds`` splits of the sorted ``stems`` shuffled with ``seed``: fold k (sizes differ by one
    at most) is split k's test set, and a quarter of the other folds, drawn with ``seed`` and k,
    its validation set. Every image is tested exactly once.

    Raises:
        BenchError: fewer than 2 folds, or too few images for ``folds`` test sets and a validation set.
    """
    if folds < 2:
        raise BenchError(f"--folds {folds}: cross-validation needs at least 2 folds.")
    if len(stems) < 2 * folds:
        raise BenchError(f"{source}: {len(stems)} images are too few for {folds} folds (each fold needs a test "
                         f"image, and training a validation image); use --folds {max(2, len(stems) // 2)} or fewer.")
    order = sorted(stems)
    random.Random(seed).shuffle(order)
    bounds = [round(k * len(order) / folds) for k in range(folds + 1)]
    parts = [order[bounds[k]:bounds[k + 1]] for k in range(folds)]
    splits = []
    for k, test in enumerate(parts):
        rest = [s for j, part in enumerate(parts) if j != k for s in part]
        train, val = _draw_validation(rest, random.Random(f"{seed}/{k}"), val_share)
        splits.append(_split(source, content_hash, seed, train, val, test, "kfold", (k, folds)))
    return splits


def _draw_validation(pool: list[str], rng: random.Random, share: float) -> tuple[list[str], list[str]]:
    """(train, validation) of ``pool``: ``share`` of it (at least one) drawn by ``rng``, each sorted."""
    order = sorted(pool)
    rng.shuffle(order)
    n_val = max(1, round(share * len(order)))
    return sorted(order[n_val:]), sorted(order[:n_val])


def _split(source: str, content_hash: str, seed: int, train: list[str], val: list[str], test: list[str], mode: str,
           fold: Optional[tuple[int, int]] = None) -> Split:
    """A split of these stems, its fractions the shares they hold."""
    n = len(train) + len(val) + len(test)
    shares = tuple(round(len(p) / n, 3) for p in (train, val, test))
    return Split(source, content_hash, seed, shares, tuple(train), tuple(val), tuple(sorted(test)), mode, fold)


def describe_splits(splits: list[Split]) -> str:
    """One split as :meth:`Split.describe` says it; k folds as ``5-fold cross-validation, seed 0 (30
    images, each tested once)``."""
    if len(splits) == 1:
        return splits[0].describe()
    images = sum(len(s.test) for s in splits)
    return f"{len(splits)}-fold cross-validation, seed {splits[0].seed} ({images} images, each tested once)"


def load_split(path: Path, stems: list[str], content_hash: str) -> Split:
    """The split saved at ``path``, checked against the dataset's current ``stems``.

    Raises:
        BenchError: unreadable file, or samples in the split that the folder no longer has, or
            new samples the split does not cover.
    """
    try:
        split = split_from_record(json.loads(Path(path).read_text()))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BenchError(f"{path}: not a readable split file ({exc}).") from None
    return check_split(split, path, stems)


def split_from_record(record: dict) -> Split:
    """A split from :meth:`Split.to_record` (KeyError, TypeError or ValueError when it is not one)."""
    return Split(record["source"], record["content_hash"], record["seed"], tuple(record["fractions"]),
                 tuple(record["train"]), tuple(record["val"]), tuple(record["test"]), record.get("mode", "random"),
                 tuple(record["fold"]) if record.get("fold") else None)


def check_split(split: Split, path: Path | str, stems: list[str]) -> Split:
    """``split`` (read from ``path``) if it covers exactly the dataset's ``stems``.

    Raises:
        BenchError: samples in the split that the folder no longer has, or new samples it does not cover.
    """
    listed = set(split.train) | set(split.val) | set(split.test)
    missing, new = sorted(listed - set(stems)), sorted(set(stems) - listed)
    if missing or new:
        parts = []
        if missing:
            parts.append(f"{len(missing)} samples of the split are no longer in {split.source} "
                         f"({', '.join(missing[:5])})")
        if new:
            parts.append(f"{len(new)} samples of the folder are not in the split ({', '.join(new[:5])})")
        raise BenchError(f"{path}: the split no longer matches the dataset: {'; '.join(parts)}. "
                         "Restore the files, or make a new split by leaving out --split.")
    return split
