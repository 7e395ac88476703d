"""Decoded datasets kept once per machine: the working-scale uint8 arrays of a folder, memory-mapped
by every process that loads it again (the workers of a sweep, the next run).

An entry is keyed by the folder's files (names, byte sizes, modification times), their layout and
official subsets, the channels and the working scale of the protocol: a changed, added or removed
file gives another key, and so does another ``--size`` or ``--scale``. An entry is two files in
the cache folder's ``decoded/`` (:func:`bench.core.cache.cache_dir`): ``<key>.bin``, every array's
bytes one after another, and ``<key>.json``, their shapes and offsets, what decoding found
(classes, encoding, notes) and a BLAKE2 digest of the bytes. An entry whose bytes are short or
do not match the digest is removed and decoded again, never trusted. Entries are kept under a size
bound (``$BENCH_DECODE_CACHE_GB``, default 8), least recently used first out.
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ..core.cache import CACHE_ENV, cache_dir, key_of, trim_lru
from ..core.errors import BenchError
from ..core.files import atomic
from .layouts import DatasetIndex
from .protocol import Protocol

SIZE_ENV = "BENCH_DECODE_CACHE_GB"
FORMAT = 1


@dataclass
class Decoded:
    """What decoding a folder produced: arrays per stem (images (C, H, W), labels (H, W), and the
    native-size labels in patch mode where they differ) and what was found on the way."""

    images: list[torch.Tensor]
    labels: list[torch.Tensor]
    targets: Optional[list[torch.Tensor]]
    classes: int
    encoding: str
    notes: list[str]


def decode_key(index: DatasetIndex, protocol: Protocol, channels: int) -> str:
    """The entry of ``index``'s files at ``protocol``'s working scale with ``channels``."""
    files = []
    for pair in index.pairs:
        for path in (pair.image, *pair.masks, *pair.extra, *([pair.ignore] if pair.ignore else [])):
            stat = path.stat()
            files.append((pair.stem, pair.subset, str(path), stat.st_size, stat.st_mtime_ns))
    scale = {"size": protocol.size, "patch": protocol.patch is not None,
             "scale": protocol.scale if protocol.patch is not None else None}
    return key_of({"format": FORMAT, "root": str(index.root.resolve()), "layout": index.layout.to_dict(),
                   "channels": channels, "scale": scale, "files": files})


class DecodeCache:
    """Decoded datasets in ``folder`` (default: the machine's cache folder's ``decoded/``), at most
    ``max_bytes`` in all. Never fails a load for its own sake: a damaged entry is a miss, a
    folder that cannot be written is reported once and skipped."""

    def __init__(self, folder: Optional[Path] = None, max_bytes: Optional[int] = None) -> None:
        self.folder = folder or cache_dir() / "decoded"
        self.max_bytes = max_bytes if max_bytes is not None else int(float(os.environ.get(SIZE_ENV, 8)) * 2**30)
        self._warned = False

    def get(self, key: str) -> Optional[Decoded]:
        """The entry under ``key``, memory-mapped, or None (absent or damaged: then removed)."""
        index_path, data_path = self.folder / f"{key}.json", self.folder / f"{key}.bin"
        if not index_path.exists():
            return None
        try:
            record = json.loads(index_path.read_text())
            if data_path.stat().st_size != record["bytes"] or _digest(data_path) != record["digest"]:
                raise ValueError("its bytes do not match its digest")
            mapped = np.memmap(data_path, dtype=np.uint8, mode="c") if record["bytes"] else np.zeros(0, np.uint8)
            arrays = [torch.from_numpy(mapped[offset:offset + int(np.prod(shape))].reshape(shape))
                      for offset, shape in record["arrays"]]
            n = record["count"]
            for path in (index_path, data_path):
                os.utime(path)  # recently used: trimmed last
        except (OSError, ValueError, KeyError, TypeError):
            self.remove(key)
            return None
        return Decoded(arrays[:n], arrays[n:2 * n], arrays[2 * n:] or None, record["classes"], record["encoding"],
                       record["notes"])

    def put(self, key: str, decoded: Decoded) -> None:
        """Store ``decoded`` under ``key`` (written whole, then renamed into place), then keep the
        folder under its size bound."""
        arrays = [*decoded.images, *decoded.labels, *(decoded.targets or [])]
        data_path = self.folder / f"{key}.bin"
        try:
            arrays_meta, offset = [], 0
            with atomic(data_path) as tmp, open(tmp, "wb") as out:
                for array in arrays:
                    raw = np.ascontiguousarray(array.numpy())
                    out.write(raw.tobytes())
                    arrays_meta.append((offset, list(raw.shape)))
                    offset += raw.nbytes
            record = {"format": FORMAT, "count": len(decoded.images), "arrays": arrays_meta, "bytes": offset,
                      "digest": _digest(data_path), "classes": decoded.classes, "encoding": decoded.encoding,
                      "notes": decoded.notes}
            with atomic(self.folder / f"{key}.json") as tmp:
                tmp.write_text(json.dumps(record))
            trim_lru(self.folder, self.max_bytes, (".json", ".bin"))
        except (BenchError, OSError) as exc:
            if not self._warned:
                warnings.warn(f"decode cache {self.folder} is not writable ({exc}); going on without it. Set "
                              f"{CACHE_ENV} to a writable folder.", stacklevel=2)
                self._warned = True

    def remove(self, key: str) -> None:
        for suffix in (".json", ".bin"):
            (self.folder / f"{key}{suffix}").unlink(missing_ok=True)


def _digest(path: Path) -> str:
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 24), b""):
            digest.update(block)
    return digest.hexdigest()

