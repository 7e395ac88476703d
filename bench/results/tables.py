"""Tables in the form of the seed papers' Table 1: ``bench compare``'s networks and a sweep's
front, as Markdown, CSV and LaTeX (booktabs, escaped, with caption and label).

A table is numeric: a figure over repeated seeds is its mean, with a companion column
``<name> std`` when there are several seeds. CSV keeps that form at full precision; Markdown and
LaTeX show ``mean ± std`` cells (:func:`display_table`).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Optional, Sequence

import pandas as pd

from ..core.files import atomic, write_text
from ..search.records import SweepResult
from ..core.stats import Estimate, PairedComparison
from ..search.objectives import OBJECTIVES, Objective
from ..training.trained import TrainedNetwork

STD = " std"


def results_table(networks: Sequence[TrainedNetwork], classes: int, class_names: Optional[list[str]] = None,
                  versus: Optional[Sequence[Optional[PairedComparison]]] = None,
                  objectives: Sequence[Objective] = ()) -> pd.DataFrame:
    """One row per network: parameters (M), paper-FLOPs (G), latency (ms) and its ratio, IoU and
    Dice (%) mean and per class, HD95 of the foreground (px), each over the seeds; each of
    ``objectives`` (known after training) over the seeds, in its display unit; and, with
    ``versus``, the paired per-image comparison with the first network (difference of foreground
    Dice, its 95 % hierarchical bootstrap interval, P(better), the Holm-adjusted p, verdict: see
    :mod:`bench.core.stats`)."""
    names = class_names or [f"class {c}" for c in range(classes)]
    rows = []
    for i, net in enumerate(networks):
        figures = net.estimates()
        row: dict[str, object] = {"Model": net.name, "Seeds": len(net.seeds), "Params (M)": net.cost.train.params / 1e6,
                                  "FLOPs (G)": net.cost.train.flops / 1e9}
        if net.latency is not None:
            row["Latency (ms)"] = net.latency["median_ms"]
            if net.latency.get("ratio") is not None:
                row["Latency ratio"] = net.latency["ratio"]
        for metric, label in (("iou", "IoU"), ("dice", "Dice")):
            _put(row, f"{label} mean (%)", figures[f"{metric}_mean"], 100)
            for c, name in enumerate(names):
                _put(row, f"{label} {name} (%)", figures[f"{metric}_c{c}"], 100)
        _put(row, "HD95 fg (px)", figures["hd95_mean_fg"], 1)
        for objective in objectives:
            _put(row, objective.axis_label, net.scored(objective.compute), objective.scale)
        if versus is not None:
            test = versus[i]
            nan = math.nan
            row.update({"Δ Dice fg": test.mean_difference if test else nan, "Δ CI low": test.ci_low if test else nan,
                        "Δ CI high": test.ci_high if test else nan, "P(better)": test.p_better if test else nan,
                        "p (Holm)": test.p if test else nan, "Verdict": test.verdict if test else "reference"})
        rows.append(row)
    return pd.DataFrame(rows)


def front_table(result: SweepResult) -> pd.DataFrame:
    """A sweep's front, with the stock network when the study trained it, cheapest first: design,
    trial, parameters (M), paper-FLOPs (G), latency (ms, timed again interleaved with the stock
    network when the study timed designs) and its ratio to the stock network, validation Dice,
    test Dice, IoU and HD95 (mean over the seeds, with std), the study's other objectives known
    after training, and the paired verdict against the stock network."""
    shown = list(result.front_records)
    stock = next((r for r in result.records if r.number == result.stock), None)
    if stock is not None and stock.number not in result.front:
        shown.append(stock)
    shown.sort(key=lambda r: (r.cost or {}).get("params", 0))
    timed = (result.front_latency or {}).get("trials", {})
    columns = [("val_dice", "Val Dice (%)", 100), ("test_dice", "Test Dice (%)", 100),
               ("test_iou", "Test IoU (%)", 100), ("test_hd95_fg", "HD95 fg (px)", 1)]
    columns += [(o.name, o.axis_label, o.scale) for o in (OBJECTIVES.get(n) for n in result.info.objectives
                                                          if n in OBJECTIVES and n != "val_dice")
                if not o.before_training]
    rows = []
    for r in shown:
        row: dict[str, object] = {"Design": r.label + (" (stock)" if r is stock else ""), "Trial": r.number,
                                  "Params (M)": r.cost["params"] / 1e6, "FLOPs (G)": r.cost["flops"] / 1e9}
        if "latency_ms" in r.values:
            if timed:
                row["Latency (ms)"] = timed[str(r.number)]["median_ms"] if str(r.number) in timed \
                    else result.front_latency["reference_ms"] if r is stock else r.values["latency_ms"]
                row["Latency ratio"] = row["Latency (ms)"] / result.front_latency["reference_ms"]
            else:
                row["Latency (ms)"] = r.values["latency_ms"]
        for name, column, scale in columns:
            figure = r.estimate(name)
            if figure is not None:
                _put(row, column, figure, scale)
        if result.front_probability:
            row["P(front)"] = result.front_probability.get(r.number, math.nan)
        if result.stock is not None:
            test = result.versus_stock.get(r.number)
            row["vs stock"] = "reference" if r is stock else test.short() if test else "-"
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
        elif column in ("p (Holm)", "P(better)", "P(front)"):
            shown[column] = ["" if math.isnan(p) else f"{p:.3g}" for p in values]
        elif pd.api.types.is_numeric_dtype(values) and column not in ("Seeds", "Trial"):
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


def write_tables(table: pd.DataFrame, out_dir: Path, stem: str = "table", caption: str = "",
                 label: str = "") -> list[Path]:
    """``table`` as ``.md`` (for people), ``.csv`` (every figure at full precision) and LaTeX for
    papers in ``out_dir``: ``<stem>.tex``, the compact form within the text width of a one-column
    article; ``<stem>_2col.tex``, the same for one column of a two-column paper (MICCAI, IEEE);
    ``<stem>_full.tex``, every column, on a landscape page. Returns the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{stem}{suffix}" for suffix in (".md", ".csv", ".tex", "_2col.tex", "_full.tex")]
    shown = display_table(table)
    write_text(paths[0], shown.to_markdown(index=False) + "\n")
    with atomic(paths[1]) as tmp:
        table.to_csv(tmp, index=False)
    label = label or f"tab:{stem}"
    compact = compact_table(shown)
    key = " n.d.: not distinguishable (paired test)." if (compact.get("Verdict", pd.Series(dtype=str)) == "n.d.").any() \
        else ""
    write_text(paths[2], latex_table(compact, caption + key, label, "compact"))
    write_text(paths[3], latex_table(compact, caption + key, label, "column"))
    write_text(paths[4], latex_table(shown, caption, label + "-full", "full"))
    return paths


COMPACT = (("Design", "Model"), ("Params (M)",), ("Latency ratio", "Latency (ms)"),
           ("Test Dice (%)", "Dice mean (%)"), ("vs stock", "Verdict"))
VERDICT_WORDS = {"better": "better", "worse": "worse", "not distinguishable": "n.d.", "reference": "ref.",
                 "stock": "ref.", "-": "-"}


def compact_table(shown: pd.DataFrame) -> pd.DataFrame:
    """The columns a paper's one-column table has room for: the design, parameters, latency ratio
    (or latency), test Dice with its spread, and the paired verdict as one word."""
    picked = {}
    for choices in COMPACT:
        column = next((c for c in choices if c in shown.columns), None)
        if column is None:
            continue
        values = shown[column]
        if choices[0] == "vs stock":
            values = values.map(lambda v: VERDICT_WORDS.get(str(v).split(" (")[0], str(v).split(" (")[0]))
            column = "Verdict"
        elif choices[0] == "Test Dice (%)":
            column = "Dice (%)"
        elif column == "Latency ratio":
            column = "Lat. ratio"
        picked[column] = values
    return pd.DataFrame(picked)


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  "±": r"$\pm$", "Δ": r"$\Delta$", "≤": r"$\le$", "≥": r"$\ge$", "×": r"$\times$"}


def latex_escape(text: str) -> str:
    """``text`` for LaTeX: its special characters escaped, ± Δ ≤ ≥ × as math."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))


LATEX_FORMS = {  # form -> (float, size, packages)
    "compact": ("table", r"\small", "booktabs,tabularx"),
    "column": ("table", r"\footnotesize", "booktabs,tabularx"),
    "full": ("sidewaystable", r"\small", "booktabs,rotating,graphicx"),
}


def latex_table(shown: pd.DataFrame, caption: str, label: str, form: str = "compact") -> str:
    """A booktabs table float, every cell escaped, text columns left and figures right. ``compact``
    and ``column``: the first column wraps (``tabularx``) so that the table spans exactly the line
    width of a one-column article or of one column of a two-column paper; ``full``: every column, on
    a landscape page (``sidewaystable``), scaled to the page width where it would not fit."""
    numeric = [all(str(v)[:1] in "0123456789+-." for v in shown[c] if str(v) not in ("", "-")) for c in shown.columns]
    float_env, size, packages = LATEX_FORMS[form]
    head = " & ".join(latex_escape(c) for c in shown.columns) + r" \\"
    wrap = form != "full"  # a design name may break after its underscores, to fit a narrow column
    body = [" & ".join([_breakable(latex_escape(row[0])) if wrap else latex_escape(row[0])]
                       + [latex_escape(v) for v in row[1:]]) + r" \\" for row in shown.itertuples(index=False)]
    lines = [rf"% needs \usepackage{{{packages}}}", rf"\begin{{{float_env}}}[htbp]", r"\centering", size,
             rf"\caption{{{latex_escape(caption)}}}", rf"\label{{{label}}}"]
    if form == "full":
        spec = "".join("r" if n else "l" for n in numeric)
        lines += [r"\resizebox{\linewidth}{!}{%", rf"\begin{{tabular}}{{{spec}}}", r"\toprule", head, r"\midrule",
                  *body, r"\bottomrule", r"\end{tabular}}"]
    else:
        spec = "@{}>{\\raggedright\\arraybackslash}X" + "".join("r" if n else "l" for n in numeric[1:]) + "@{}"
        lines += [r"\setlength{\tabcolsep}{3pt}", rf"\begin{{tabularx}}{{\linewidth}}{{{spec}}}", r"\toprule", head,
                  r"\midrule", *body, r"\bottomrule", r"\end{tabularx}"]
    lines.append(rf"\end{{{float_env}}}")
    return "\n".join(lines) + "\n"


def _breakable(cell: str) -> str:
    """An escaped cell that LaTeX may break after each underscore (``multibranch_dw``)."""
    return cell.replace(r"\_", r"\_\allowbreak{}")
