"""Comparison tables in the form of the seed papers' Table 1 (``bench compare``), as Markdown,
CSV and LaTeX.

The table is numeric: a figure over repeated seeds is its mean, with a companion column
``<name> std`` when there are several seeds. CSV keeps that form at full precision; Markdown and
LaTeX show ``mean ± std`` cells (:func:`display_table`).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Optional, Sequence

import pandas as pd

from .experiment import RepeatedRuns
from .stats import Estimate, PairedComparison

STD = " std"


def results_table(networks: Sequence[RepeatedRuns], classes: int, class_names: Optional[list[str]] = None,
                  versus: Optional[Sequence[Optional[PairedComparison]]] = None) -> pd.DataFrame:
    """One row per network: parameters (M), paper-FLOPs (G), latency (ms) and its ratio, IoU and
    Dice (%) mean and per class, HD95 of the foreground (px), each over the seeds; and, with
    ``versus``, the paired per-image comparison with the first network (difference of foreground
    Dice, its 95 % bootstrap interval, Wilcoxon p, verdict)."""
    names = class_names or [f"class {c}" for c in range(classes)]
    rows = []
    for i, net in enumerate(networks):
        first, figures = net.first.summary, net.estimates()
        row: dict[str, object] = {"Model": net.name, "Seeds": len(net.runs), "Params (M)": first["params"] / 1e6,
                                  "FLOPs (G)": first["flops"] / 1e9}
        if "latency" in first:
            row["Latency (ms)"] = first["latency"]["median_ms"]
            if first["latency"].get("ratio") is not None:
                row["Latency ratio"] = first["latency"]["ratio"]
        for metric, label in (("iou", "IoU"), ("dice", "Dice")):
            _put(row, f"{label} mean (%)", figures[f"{metric}_mean"], 100)
            for c, name in enumerate(names):
                _put(row, f"{label} {name} (%)", figures[f"{metric}_c{c}"], 100)
        _put(row, "HD95 fg (px)", figures["hd95_mean_fg"], 1)
        if versus is not None:
            test = versus[i]
            nan = math.nan
            row.update({"Δ Dice fg": test.mean_difference if test else nan, "Δ CI low": test.ci_low if test else nan,
                        "Δ CI high": test.ci_high if test else nan, "p (Wilcoxon)": test.p_value if test else nan,
                        "Verdict": test.verdict if test else "reference"})
        rows.append(row)
    return pd.DataFrame(rows)


def _put(row: dict, column: str, figure: Estimate, scale: float) -> None:
    row[column] = figure.mean * scale
    if figure.n > 1:
        row[column + STD] = figure.std * scale


def display_table(table: pd.DataFrame) -> pd.DataFrame:
    """Strings for people: ``mean ± std`` cells, units' own precision, the paired difference
    with its interval in one cell."""
    shown = pd.DataFrame(index=table.index)
    for column in table.columns:
        if column.endswith(STD) or column in ("Δ CI low", "Δ CI high"):
            continue
        values = table[column]
        if column == "Δ Dice fg":
            bounds = zip(values, table["Δ CI low"], table["Δ CI high"])
            shown[column] = [_difference(d, lo, hi) for d, lo, hi in bounds]
        elif column == "p (Wilcoxon)":
            shown[column] = ["" if math.isnan(p) else f"{p:.3g}" for p in values]
        elif pd.api.types.is_numeric_dtype(values) and column != "Seeds":
            digits = 3 if column in ("Params (M)", "FLOPs (G)") else 2
            stds = table[column + STD] if column + STD in table else [None] * len(values)
            shown[column] = [_mean_std(v, s, digits) for v, s in zip(values, stds)]
        else:
            shown[column] = values.astype(str)
    return shown


def _mean_std(value: float, std: Optional[float], digits: int) -> str:
    if value is None or math.isnan(value):
        return "-"
    if std is None or math.isnan(std):
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} ± {std:.{digits}f}"


def _difference(d: float, low: float, high: float) -> str:
    if math.isnan(d):
        return ""
    return f"{d:+.4f} [{low:+.4f}, {high:+.4f}]" if not math.isnan(low) else f"{d:+.4f}"


def write_tables(table: pd.DataFrame, out_dir: Path, stem: str = "table") -> list[Path]:
    """``table`` as ``.md`` and ``.tex`` (for people) and ``.csv`` (every figure at full
    precision) in ``out_dir``; returns the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{stem}.{ext}" for ext in ("md", "csv", "tex")]
    shown = display_table(table)
    paths[0].write_text(shown.to_markdown(index=False) + "\n")
    table.to_csv(paths[1], index=False)
    paths[2].write_text(shown.to_latex(index=False))
    return paths
