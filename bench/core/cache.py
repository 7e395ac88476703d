"""The machine's cache folder, and a store of small JSON entries in it.

The folder is ``$BENCH_CACHE_DIR`` where set, else ``$XDG_CACHE_HOME/bench``, else
``~/.cache/bench``: one per machine (user), shared by every process and study, never needed for
correctness. Entries are written whole (a temporary file renamed into place, so concurrent
workers never read half an entry); an entry that cannot be read is removed and computed again,
never trusted; each kind of entry is kept under a size bound, least recently used first out.
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any, Optional

from .errors import BenchError
from .files import atomic

CACHE_ENV = "BENCH_CACHE_DIR"


def cache_dir() -> Path:
    """The cache folder of this machine (see the module docstring); not created here."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "bench"


def key_of(fields: dict[str, Any]) -> str:
    """A file-name key for ``fields`` (JSON-serialisable): the SHA-256 of their canonical text."""
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()


class JsonCache:
    """Entries of one ``kind`` (a subfolder of :func:`cache_dir`), at most ``max_bytes`` in all.

    ``get`` and ``put`` never raise for the cache's sake: an unreadable entry is a miss, and a
    folder that cannot be written is reported once (a warning) and then skipped."""

    def __init__(self, kind: str, max_bytes: int = 64 * 2**20, folder: Optional[Path] = None) -> None:
        self.folder = (folder or cache_dir()) / kind
        self.max_bytes = max_bytes
        self._warned = False

    def path(self, key: str) -> Path:
        return self.folder / f"{key}.json"

    def get(self, key: str) -> Optional[Any]:
        """The entry under ``key``, or None (absent, or damaged: then it is removed)."""
        path = self.path(key)
        try:
            value = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            path.unlink(missing_ok=True)
            return None
        try:
            os.utime(path)  # recently used: trimmed last
        except OSError:
            pass
        return value

    def put(self, key: str, value: Any) -> None:
        """Store ``value`` under ``key``, then keep the kind under its size bound."""
        try:
            with atomic(self.path(key)) as tmp:
                tmp.write_text(json.dumps(value, sort_keys=True))
            self.trim()
        except (BenchError, OSError) as exc:  # the cache is an optimisation: a sweep never fails for it
            if not self._warned:
                warnings.warn(f"bench cache {self.folder} is not writable ({exc}); going on without it. "
                              f"Set {CACHE_ENV} to a writable folder.", stacklevel=2)
                self._warned = True

    def trim(self) -> int:
        """Remove the least recently used entries until the kind holds at most ``max_bytes``;
        returns how many were removed."""
        return trim_lru(self.folder, self.max_bytes, (".json",))


def trim_lru(folder: Path, max_bytes: int, suffixes: tuple[str, ...]) -> int:
    """Remove the least recently used entries of ``folder`` (an entry: the files of one stem with
    these ``suffixes``; used: the newest modification time among them) until its entries hold at
    most ``max_bytes``; returns how many entries were removed."""
    entries: dict[str, list] = {}  # stem -> [last used, bytes, paths]
    with os.scandir(folder) as found:
        for entry in found:
            if entry.name.endswith(suffixes) and not entry.name.startswith("."):  # "." : being written
                stat = entry.stat()
                group = entries.setdefault(entry.name.split(".")[0], [0.0, 0, []])
                group[0], group[1] = max(group[0], stat.st_mtime), group[1] + stat.st_size
                group[2].append(entry.path)
    total = sum(size for _, size, _ in entries.values())
    removed = 0
    for _, size, paths in sorted(entries.values()):
        if total <= max_bytes:
            break
        for path in paths:
            Path(path).unlink(missing_ok=True)
        total -= size
        removed += 1
    return removed
