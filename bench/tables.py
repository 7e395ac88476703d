"""Comparison tables in the form of the seed papers' Table 1 (bench compare), as Markdown, CSV
and LaTeX."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd


def results_table(summaries: list[dict[str, Any]], classes: int,
                  class_names: list[str] | None = None) -> pd.DataFrame:
    """One row per network: parameters (M), paper-FLOPs (G), latency (ms), then IoU and Dice (%)
    mean and per class, from :func:`bench.experiment.run_training` summaries."""
    names = class_names or [f"class {c}" for c in range(classes)]
    rows = []
    for s in summaries:
        test = s["test"]
        row = {"Model": s["architecture"], "Params (M)": s["params"] / 1e6,
               "FLOPs (G)": s["flops"] / 1e9}
        if "latency" in s:
            row["Latency (ms)"] = s["latency"]["median_ms"]
            if s["latency"].get("ratio") is not None:
                row["Latency ratio"] = s["latency"]["ratio"]
        for metric, label in (("iou", "IoU"), ("dice", "Dice")):
            row[f"{label} mean (%)"] = 100 * test[f"{metric}_mean"]
            for c, name in enumerate(names):
                row[f"{label} {name} (%)"] = 100 * test[f"{metric}_c{c}"]
        row["HD95 fg (px)"] = test["hd95_mean_fg"]
        rows.append(row)
    return pd.DataFrame(rows)


def write_tables(table: pd.DataFrame, out_dir: Path, stem: str = "table") -> list[Path]:
    """``table`` as ``.md``, ``.csv`` and ``.tex`` in ``out_dir``; returns the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{stem}.{ext}" for ext in ("md", "csv", "tex")]
    paths[0].write_text(table.to_markdown(index=False, floatfmt=".2f") + "\n")
    table.to_csv(paths[1], index=False, float_format="%.4f")
    paths[2].write_text(table.to_latex(index=False, float_format="%.2f"))
    return paths
