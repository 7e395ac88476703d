"""The report of a sweep as a person reads it: plot and tables list the same front, untrained
designs are never plotted, table.tex compiles with pdflatex, report.md is a page without NaN,
results.csv has every figure once."""
from __future__ import annotations

import csv
import shutil
import subprocess

import pandas as pd
import pytest

from bench.results.plots import Point, _label_offsets, plot_points, staircase
from bench.search.records import SweepResult
from bench.run.sweep import Sweep
from bench.results.tables import front_table, latex_escape
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


def test_a_label_moves_below_when_a_near_label_to_its_left_sits_above_even_past_a_point_between():
    def point(params: float, dice: float) -> Point:
        return Point(record=None, x={"params": params}, y=dice, y_low=None, y_high=None, on_front=True,
                     stock=False, trials=[])

    # multibranch_dw x0.25, cmrf N=16 x1.0, axial_block x0.5 and a far design, from the main job's plot
    points = [point(0.404, 0.855), point(0.422, 0.651), point(0.432, 0.859), point(1.0, 0.856)]
    assert _label_offsets(points, "params") == [(5, 5), (5, 5), (5, -11), (5, 5)]


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


def test_table_tex_compiles_with_pdflatex(swept, tmp_path):
    pdflatex = shutil.which("pdflatex")
    need("LATEX", pdflatex is not None, "pdflatex")
    _, out = swept
    shutil.copy(out / "table.tex", tmp_path / "table.tex")
    (tmp_path / "paper.tex").write_text("\\documentclass{article}\n\\usepackage{booktabs}\n\\begin{document}\n"
                                        "\\input{table.tex}\n\\end{document}\n")
    done = subprocess.run([pdflatex, "-interaction=nonstopmode", "-halt-on-error", "paper.tex"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:]
    assert (tmp_path / "paper.pdf").stat().st_size > 1000
