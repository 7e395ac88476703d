"""Files written whole or not at all. Every file bench writes (checkpoints, metrics, splits,
tables, plots, reports) goes to a temporary name beside it and is renamed into place, so that a
full disk, a kill or an interrupt never leaves a half-written ``model.pt``; output folders are
checked writable before any training starts."""
from __future__ import annotations

import os
import re
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .errors import BenchError


@contextmanager
def atomic(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path`` to write; renamed onto ``path`` when the block ends
    without error, removed otherwise.

    Raises:
        BenchError: the file system refused (full, read-only, no such folder), naming the file.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        os.replace(tmp, path)
    except (OSError, RuntimeError) as exc:  # torch.save reports a full disk as a RuntimeError
        tmp.unlink(missing_ok=True)
        reason = getattr(exc, "strerror", None) or str(exc).splitlines()[0][:160]
        raise BenchError(f"cannot write {path}: {reason} ({_free(path.parent)} free there). Free space or "
                         "choose another folder; nothing half-written was left.") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def plain_name(name: str, what: str) -> str:
    """``name`` if it can name a folder (``runs/<study>/``, ``reports/<study>/``) without leaving
    the one it is put in: letters, digits, ``.``, ``_`` and ``-``, at most 100, not starting with a
    dot or dash.

    Raises:
        BenchError: any other name, with a plain one suggested.
    """
    if PLAIN_NAME.fullmatch(name) is None:
        suggestion = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip(".-")[:100] or "my-study"
        raise BenchError(f"{what} {name!r} is not a plain name (letters, digits, '.', '_' and '-', at most 100, "
                         f"starting with a letter or digit): it names folders under runs/ and reports/. "
                         f"Use e.g. {suggestion!r}.")
    return name


def write_text(path: Path, text: str) -> None:
    """``text`` to ``path``, atomically."""
    with atomic(path) as tmp:
        tmp.write_text(text)


def ensure_writable(folder: Path, what: str = "--out", needed: int = 0, create: bool = True) -> None:
    """Create ``folder`` if needed and check that a file can be written there, with at least
    ``needed`` bytes free. With ``create`` False nothing is left behind: a folder that does not
    exist yet is judged by its nearest existing parent.

    Raises:
        BenchError: it cannot be created or written, or has too little room, naming it.
    """
    folder = Path(folder)
    if not create:
        folder = next((p for p in (folder, *folder.parents) if p.exists()), Path("."))
    created = [p for p in (folder, *folder.parents) if not p.exists()]  # removed again on refusal
    probe = folder / f".bench-write-test.{os.getpid()}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
        if shutil.disk_usage(folder).free < needed:
            raise BenchError(f"{what} {folder} has {_free(folder)} free, and this run writes about "
                             f"{needed / 2**20:.0f} MiB there; free space or choose another folder.")
    except OSError as exc:
        _remove_empty(created)
        raise BenchError(f"{what} {folder} is not writable ({exc.strerror or exc}); choose another "
                         "folder.") from None
    except BenchError:
        _remove_empty(created)
        raise


def _remove_empty(folders: list[Path]) -> None:
    for folder in folders:  # deepest first
        try:
            folder.rmdir()
        except OSError:
            return


def _free(folder: Path) -> str:
    try:
        return f"{shutil.disk_usage(folder).free / 2**20:.1f} MiB"
    except OSError:
        return "unknown space"
