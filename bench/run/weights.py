"""Which trained networks of a sweep keep their weights, and where they are kept: once.

Policies (``--keep-weights``, ``study.keep_weights``): ``front`` (default) keeps the networks on the
Pareto front and the stock network; a network that leaves the front as the sweep goes on loses its
weights then, and one never on it as soon as it is trained. ``all`` keeps every trained network;
``none`` writes no weights (training still keeps its resume state until the network finishes).

During the sweep the weights lie in the sweep's weights folder. At the end, with MLflow tracking,
each kept network moves into its trial's run, as an MLflow model (its first seed, and the deploy
form where it differs: :mod:`bench.results.logged_models`) and plain checkpoints (its other seeds
and folds), and the local files are deleted; without tracking they stay in the folder. Every
decision is stored in the study (``weights:<trial>``: kept or not, why, bytes, where) for the
report and the runs.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable, Optional, Sequence

from ..core.errors import BenchError
from ..search.pareto import front_records
from ..search.records import TrialRecord
from ..search.study import decide_weights, weights_decision


def kept(records: Sequence[TrialRecord], objectives: dict[str, str], reference_hash: str,
         policy: str) -> dict[int, str]:
    """The trained networks ``policy`` keeps now, each with why: the stock network's and the front's
    (``front``), every one (``all``), or none."""
    trained = {r.number for r in records if r.trained and r.duplicate_of is None}
    if policy == "none":
        return {}
    stock = {r.number for r in records if r.config_hash == reference_hash and r.number in trained}
    front = set(front_records(records, objectives)) & trained
    chosen = trained if policy == "all" else front | stock
    return {n: "the stock network" if n in stock else "on the front" if n in front else "--keep-weights all"
            for n in sorted(chosen)}


def local_files(record: TrialRecord, extra: Optional[dict[str, str]] = None) -> dict[str, Path]:
    """The weight files of a trial that still lie on this machine: name in the run -> path."""
    named = {**record.artifacts, **(extra or {})}
    return {name: Path(p) for name, p in named.items() if Path(p).is_file()}


def release(study, records: Sequence[TrialRecord], objectives: dict[str, str], reference_hash: str, policy: str,
            ended: Optional[TrialRecord] = None) -> list[int]:
    """Delete the local weights of every trained network ``policy`` no longer keeps and record why;
    ``ended``: the trial that just ended (a network it pushed off the front "left the front when
    trial N was trained"). Returns the trial numbers released."""
    keep = kept(records, objectives, reference_hash, policy)
    released = []
    for record in records:
        if not record.trained or record.duplicate_of is not None or record.number in keep:
            continue
        files = local_files(record)
        if not files or (weights_decision(study, record.number) or {}).get("kept") is False:
            continue
        size = _delete(list(files.values()))
        if ended is not None and record.number != ended.number:
            why = f"left the front when trial {ended.number} ({ended.label}) was trained"
        else:
            why = "not on the front when it was trained"
        decide_weights(study, record.number, False, why, size)
        released.append(record.number)
    return released


def store_kept(study, records: Sequence[TrialRecord], keep: dict[int, str], extra: dict[int, dict[str, str]],
               move: Optional[Callable[[TrialRecord, dict[str, Path]], Optional[list[str]]]]) -> None:
    """At the end of the sweep: record each kept network's weights (``keep``: trial -> why), moved
    by ``move`` (into MLflow; returns where they went, or None when it could not) and then deleted
    here, or left in the weights folder. ``extra``: more weight files of a trial, name -> path (the
    folds trained at the end)."""
    for record in records:
        if record.number not in keep:
            continue
        files = local_files(record, extra.get(record.number))
        if not files:
            continue
        try:
            size = sum(f.stat().st_size for f in files.values())
            where = move(record, files) if move is not None else None
        except (FileNotFoundError, BenchError):  # another process of the study moved them meanwhile
            continue
        if where is None:
            decide_weights(study, record.number, True, keep[record.number], size, [str(f) for f in files.values()])
            continue
        _delete(list(files.values()))
        decide_weights(study, record.number, True, keep[record.number], size, where)


def _delete(files: Sequence[Path]) -> int:
    """Delete ``files`` (and folders they leave empty); returns the bytes this call freed."""
    size = 0
    for path in files:
        try:
            size += path.stat().st_size
            path.unlink()
        except FileNotFoundError:  # another process of the study released it first
            continue
        for folder in (path.parent, path.parent.parent):
            if folder.is_dir() and not any(folder.iterdir()):
                shutil.rmtree(folder, ignore_errors=True)
    return size
