"""A fixed, seeded train/val/test split, stored as JSON next to the runs that use it."""
from __future__ import annotations

import hashlib
import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path

from ..core.errors import BenchError
from ..core.files import write_text


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

    @property
    def hash(self) -> str:
        """SHA-256 of the three stem lists: equal hashes mean the same split."""
        lists = json.dumps([list(self.train), list(self.val), list(self.test)])
        return hashlib.sha256(lists.encode()).hexdigest()

    def save(self, path: Path) -> None:
        record = {**asdict(self), "hash": self.hash}
        write_text(path, json.dumps(record, indent=1) + "\n")


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


def load_split(path: Path, stems: list[str], content_hash: str) -> Split:
    """The split saved at ``path``, checked against the dataset's current ``stems``.

    Raises:
        BenchError: unreadable file, or samples in the split that the folder no longer has, or
            new samples the split does not cover.
    """
    try:
        record = json.loads(Path(path).read_text())
        split = Split(record["source"], record["content_hash"], record["seed"],
                      tuple(record["fractions"]), tuple(record["train"]), tuple(record["val"]),
                      tuple(record["test"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BenchError(f"{path}: not a readable split file ({exc}).") from None
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
