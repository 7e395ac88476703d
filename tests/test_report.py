"""The report of a sweep as a person reads it: plot and tables list the same front, untrained
designs are never plotted, table.tex compiles with pdflatex, report.md is a page without NaN,
results.csv has every figure once."""
from __future__ import annotations

import csv
import math
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from bench.results.plots import plot_points, staircase
from bench.search.records import SweepResult
from bench.run.sweep import Sweep
from bench.results.tables import front_table, latex_escape, write_tables
from needs import need


@pytest.fixture(scope="module")
def swept(tmp_path_factory) -> tuple[SweepResult, object]:
    """A small study with a trained stock network, two seeds per design, and designs over a
    parameter budget that are not trained."""
    root = tmp_path_factory.mktemp("report")
    (root / "base.yaml").write_text("base: tinyunet\nwidth_multiplier: 0.25\n")
    (root / "space.yaml").write_text("""
architecture: base.yaml
description: CMRF's N against the double conv, under a budget
vary:
  encoder.block:
    cmrf: {N: {choices: [4, 8]}}
    double_conv: {}
objectives: {val_dice: maximize, params: minimize}
constraints: {params: {max: 100000}}
recipe: {name: default, epochs: 1, batch: 8}
data: {source: synthetic, size: 32, count: 30}
study: {sampler: random, trials: 3, seed: 1, repeats: 2}
""")
    sweep = Sweep(str(root / "space.yaml"), storage=f"sqlite:///{root}/optuna.db", tracking_uri=None,
                  report_dir=root / "out", weights_dir=None)
    return sweep.run(), root / "out"


def test_the_study_has_what_the_report_must_show(swept):
    result, _ = swept
    statuses = {r.status for r in result.records}
    assert {"trained", "not trained"} <= statuses and result.stock == 0 and result.front


def test_plot_and_tables_list_the_same_front_and_no_untrained_design_is_plotted(swept):
    result, out = swept
    points = plot_points(result)
    assert {p.record.number for p in points if p.on_front} == set(result.front)
    assert all(p.record.status == "trained" and p.y is not None for p in points)  # never an untrained at Dice 0
    untrained = {r.number for r in result.records if r.status != "trained"}
    assert not {p.record.number for p in points} & untrained
    assert [p.record.number for p in points if p.stock] == [result.stock]
    table = front_table(result)
    assert set(table["Trial"]) == set(result.front) | {result.stock}
    assert set(pd.read_csv(out / "pareto.csv")["trial"]) == set(result.front)
    assert set(pd.read_csv(out / "table.csv")["Trial"]) == set(table["Trial"])
    xs, ys = staircase(points, "params")
    assert ys == sorted(ys) and xs == sorted(xs)  # more accuracy only at more cost
    html = (out / "pareto.html").read_text()
    for p in points:
        assert p.record.label in html
    assert "not trained (a constraint)" in html and "Parameters (M)" in html


def synthetic_result(designs: int) -> SweepResult:
    """``designs`` trained designs with long names, three seeds each, crowded as a real sweep's are."""
    import random

    from bench.core.stats import estimate
    from bench.search.pareto import front_records
    from bench.search.records import StudyInfo, TrialRecord

    rng = random.Random(designs)
    blocks = ["multibranch_dw", "axial_block", "cmrf", "repvgg", "double_conv"]
    records = []
    for n in range(designs):
        params = rng.uniform(0.05, 1.0)
        dice = min(0.95, 0.6 + 0.2 * params + rng.gauss(0, 0.05))
        runs = [dice + rng.gauss(0, 0.02) for _ in range(3)]
        records.append(TrialRecord(n, state="COMPLETE", trained=True, config_hash="stock" if n == 0 else f"h{n}",
                                   sample={"encoder.block.type": blocks[n % 5], "width_multiplier": [0.25, 0.5, 1.0][n % 3]},
                                   values={"val_dice": sum(runs) / 3, "params": params * 1e6},
                                   estimates={"val_dice": estimate(runs).to_dict()}))
    objectives = {"val_dice": "maximize", "params": "minimize"}
    info = StudyInfo("crowded", "crowded", "labels", objectives, {}, "tinyunet", "stock", {"source": "synthetic",
                     "size": 48, "split_hash": "0" * 64, "train": 1, "val": 1, "test": 1}, {}, "random", 0, designs,
                     repeats=3)
    return SweepResult(info, records, front_records(records, objectives))


@pytest.mark.parametrize("designs", [5, 40])
def test_plot_labels_never_overlap_one_another_a_point_or_an_error_bar(designs):
    from matplotlib.text import Annotation, Text

    from bench.results.plots import _matplotlib, axes_of, caption, marks

    result = synthetic_result(designs)
    points = plot_points(result)
    accuracy, costs = axes_of(result)
    figure = _matplotlib(result, points, accuracy, costs, caption(result, points))
    figure.canvas.draw()  # the labels where the renderer puts them
    renderer = figure.canvas.get_renderer()
    ax = figure.axes[0]
    labels = [a for a in ax.get_children() if isinstance(a, Annotation)]
    boxes = [Text.get_window_extent(a, renderer) for a in labels]  # the words; a leader line may cross
    for i, box in enumerate(boxes):
        assert not any(box.overlaps(other) for other in boxes[i + 1:]), labels[i].get_text()
        for p in points:
            assert not any(box.overlaps(mark) for mark in marks(ax, p, "params")), (labels[i].get_text(), p.label)
    named = {a.get_text() for a in labels}
    legend = " ".join(figure.texts[-1].get_text().split())  # the caption, unwrapped
    for p in points:
        if p.on_front or p.stock:  # the front and the stock always named, in full or by a number the caption keys
            assert p.label in named or (f"#{p.record.number}" in named
                                        and f"#{p.record.number} {p.label}" in legend), p.label
    if designs == 5:
        assert named == {p.label for p in points}
    else:
        assert any(name.startswith("#") for name in named) and "Labelled by trial number" in legend


def test_report_md_is_a_page_without_nan_and_results_have_every_figure_once(swept):
    result, out = swept
    page = (out / "report.md").read_text()
    assert "nan" not in page.lower() and "True" not in page
    for heading in ("## What was swept", "## What became of the trials", "## Pareto front", "## Against the stock"):
        assert heading in page
    assert "![Pareto front](pareto.png)" in page and "not trained, violating a constraint: double_conv (params" in page
    assert "params <= 0.1 M" in page and "2 seeds per design" in page
    header = next(csv.reader(open(out / "results.csv")))
    assert len(header) == len(set(header))
    assert "metric_val_dice" not in header and header.count("val_dice") == 1
    assert {"design", "status", "val_dice_std", "val_dice_ci95_low"} <= set(header)
    assert (out / "pareto.png").stat().st_size > 20_000 and (out / "pareto.pdf").exists()


def test_table_tex_is_escaped_booktabs_with_caption_and_label(swept):
    _, out = swept
    tex = (out / "table.tex").read_text()
    assert "\\toprule" in tex and "\\caption{" in tex and "\\label{tab:space}" in tex
    assert "$\\pm$" in tex and "(stock)" in tex
    assert latex_escape("a_b 5% & #1 {x} ~^\\") == "a\\_b 5\\% \\& \\#1 \\{x\\} \\textasciitilde{}\\textasciicircum{}\\textbackslash{}"


def compile_latex(folder: Path, document_class: str, packages: str, table: str) -> str:
    """pdflatex on a document holding ``table``; its log (the test fails on an error)."""
    pdflatex = shutil.which("pdflatex")
    need("LATEX", pdflatex is not None, "pdflatex")
    (folder / "paper.tex").write_text(f"\\documentclass{document_class}\n\\usepackage{{{packages}}}\n"
                                      f"\\begin{{document}}\n\\input{{{table}}}\n\\end{{document}}\n")
    done = subprocess.run([pdflatex, "-interaction=nonstopmode", "-halt-on-error", "paper.tex"], cwd=folder,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:]
    assert (folder / "paper.pdf").stat().st_size > 1000
    return (folder / "paper.log").read_text(errors="replace")


LONG = pd.DataFrame({  # a compare table at its widest: long names, every column, three seeds
    "Model": ["multibranch_dw x0.25 (stock)", "axial_block x0.5", "cmrf N=16 x0.25"], "Seeds": [3, 3, 3],
    "Params (M)": [0.482, 0.432, 0.118], "FLOPs (G)": [0.212, 0.197, 0.05], "Latency (ms)": [31.5, 16.1, 8.4],
    "Latency ratio": [1.0, 0.51, 0.27], "IoU mean (%)": [71.2, 74.9, 70.1], "IoU mean (%) std": [1.2, 0.8, 2.1],
    "Dice mean (%)": [82.9, 85.1, 81.7], "Dice mean (%) std": [0.9, 0.7, 1.8], "Dice class 0 (%)": [88.0, 89.2, 87.1],
    "Dice class 1 (%)": [77.8, 81.0, 76.3], "HD95 fg (px)": [12.3, 10.1, 14.9], "Δ Dice fg": [math.nan, 0.021, -0.012],
    "Δ CI low": [math.nan, 0.011, -0.02], "Δ CI high": [math.nan, 0.031, -0.004], "P(better)": [math.nan, 0.999, 0.01],
    "p (Holm)": [math.nan, 0.002, 0.03], "Verdict": ["reference", "better", "not distinguishable"]})


@pytest.mark.parametrize("table", ["swept", "long"])
def test_every_latex_form_compiles_without_an_overfull_box(swept, table, tmp_path):
    if table == "swept":
        out = swept[1]
    else:
        out = tmp_path / "long"
        write_tables(LONG, out, "table", "A caption long enough to wrap over two lines of a column, as captions do. " * 2)
    for name in ("table.tex", "table_2col.tex", "table_full.tex"):
        shutil.copy(out / name, tmp_path / name)
    forms = [("{article}", "booktabs,tabularx", "table.tex"), ("[twocolumn]{article}", "booktabs,tabularx", "table_2col.tex"),
             ("{article}", "booktabs,rotating,graphicx", "table_full.tex")]
    for document_class, packages, name in forms:
        log = compile_latex(tmp_path, document_class, packages, name)
        assert "Overfull \\hbox" not in log, (name, log[log.find("Overfull"):][:400])
    compact = (tmp_path / "table.tex").read_text()
    assert "Verdict" in compact and ("multibranch" in compact or table == "swept")




@pytest.mark.parametrize("width", [60, 80, 250])
def test_the_terminal_front_keeps_design_names_and_verdicts_whole_at_any_width(swept, width):
    from io import StringIO

    from rich.console import Console

    from bench.results.progress import SweepProgress

    result = swept[0]
    buffer = StringIO()
    console = Console(file=buffer, width=width, force_terminal=False)  # off a terminal, as in a log file
    progress = SweepProgress(console)
    progress.info = result.info
    progress.study_ended(result)
    lines = buffer.getvalue().splitlines()
    assert max(len(line) for line in lines) <= width
    for record in result.front_records:
        assert any(record.label in line for line in lines), record.label
        test = result.versus_stock.get(record.number)
        if test is not None:
            assert any(test.short() in line for line in lines), test.short()
    assert any("│" in line for line in lines) == (width == 250)  # the table only where it fits whole
