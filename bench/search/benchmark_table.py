"""A tabulated benchmark as one file: a Parquet table with one row per (design, seed), and the
build's settings in the file's metadata. ``bench tabulate export`` writes it, the replay and the
analyses read it.

Columns: the README's section on the tabulated benchmark lists them (lists are per epoch or per
test image). Design columns (params ... proxies_seconds) are measured with a design's first seed
and copied onto its other rows.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..core.errors import BenchError
from ..core.files import atomic

DESIGN_COLUMNS = ("params", "macs", "flops", "deploy_params", "deploy_macs", "deploy_flops", "count_seconds",
                  "latency_ms", "latency_ratio", "reference_latency_ms", "latency_seconds", "proxies_seconds")
REQUIRED = ("design", "seed", "sample", "val_dice", "train_seconds", "val_seconds", "best_val_dice",
            "test_dice_fg_per_image", "test_seconds", "build_seconds", "params", "latency_norm_ms",
            "count_seconds", "latency_seconds")
META_KEY = b"bench"


@dataclass
class BenchmarkTable:
    """The rows of a tabulated benchmark and what built them (``meta``: space, data, recipe,
    table settings, machine, versions, commit, build time)."""

    frame: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def designs(self) -> list[int]:
        return sorted(self.frame["design"].unique().tolist())

    @property
    def epochs(self) -> int:
        return int(self.frame["val_dice"].map(len).max())

    def rows_of(self, design: int) -> pd.DataFrame:
        return self.frame[self.frame["design"] == design]

    def design_frame(self) -> pd.DataFrame:
        """One row per design: its design columns, the sample, and the mean over seeds of the
        final validation Dice, best validation Dice and test Dice, with the seed count."""
        by = self.frame.groupby("design")
        first = by.first()
        out = first[[c for c in ("config_hash", "sample", "calibration", *DESIGN_COLUMNS, "latency_norm_ms")
                     if c in first.columns] + [c for c in first.columns if c.startswith("proxy_")]].copy()
        out["final_val_dice"] = by["val_dice"].apply(lambda s: float(np.mean([v[-1] for v in s])))
        out["best_val_dice"] = by["best_val_dice"].mean()
        out["test_dice_fg"] = by["test_dice_fg"].mean()
        out["seeds"] = by.size()
        return out


def table_frame(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """The table of ``rows`` (as :class:`bench.run.tabulate.Tabulator` makes them): design
    columns copied from each design's first seed onto its other rows; designs whose first seed
    has not been built yet are left out; ``latency_norm_ms`` added."""
    if not rows:
        raise BenchError("no finished jobs to tabulate yet.")
    measured = {r["design"]: {k: r[k] for k in r if k in DESIGN_COLUMNS or k.startswith("proxy_")}
                for r in rows if r["seed"] == 0}
    kept = [{**r, **measured[r["design"]], "sample": json.dumps(r["sample"], sort_keys=True)}
            for r in rows if r["design"] in measured]
    frame = pd.DataFrame(kept).sort_values(["design", "seed"], kind="stable").reset_index(drop=True)
    reference = float(np.median([m["reference_latency_ms"] for m in measured.values()]))
    frame["latency_norm_ms"] = frame["latency_ratio"] * reference
    return frame


def write_table(table: BenchmarkTable, path: Path) -> Path:
    """Write ``table`` as Parquet (zstd), the metadata as JSON in the file's schema."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrow = pa.Table.from_pandas(table.frame, preserve_index=False)
    arrow = arrow.replace_schema_metadata({**(arrow.schema.metadata or {}),
                                           META_KEY: json.dumps(table.meta, sort_keys=True).encode()})
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic(path) as tmp:
        pq.write_table(arrow, tmp, compression="zstd")
    return path


def read_table(path: str | Path) -> BenchmarkTable:
    """A table written by :func:`write_table`.

    Raises:
        BenchError: no such file, not Parquet, or a column a replay needs is missing.
    """
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.is_file():
        raise BenchError(f"{path}: no such table file. Build one with `bench tabulate build` and write it with "
                         "`bench tabulate export`.")
    try:
        arrow = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several kinds for a file that is not Parquet
        raise BenchError(f"{path}: not a readable Parquet table ({exc}).") from None
    frame = arrow.to_pandas()
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise BenchError(f"{path}: not a bench table; columns {', '.join(missing)} are missing.")
    for column in frame.columns:
        if frame[column].dtype == object and len(frame) and isinstance(frame[column].iloc[0], np.ndarray):
            frame[column] = frame[column].map(list)
    meta = json.loads((arrow.schema.metadata or {}).get(META_KEY, b"{}"))
    return BenchmarkTable(frame, meta)
