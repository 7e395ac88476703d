"""Study reports from a sweep's records: every trial and the Pareto front as CSV, Markdown and
LaTeX tables, and the front as a static (PNG) and an interactive (HTML) plot."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: never open a window
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from .evidence import indistinguishable  # noqa: E402
from .objectives import OBJECTIVES  # noqa: E402
from .records import SweepResult  # noqa: E402


def trial_rows(result: SweepResult) -> pd.DataFrame:
    """One row per trial: number, state, status, sample, values, metrics, flags."""
    on_front = set(result.front)
    timed = (result.front_latency or {}).get("trials", {})
    rows = []
    for r in result.records:
        row: dict[str, Any] = {"trial": r.number, "state": r.state, "status": r.status, **r.sample}
        row.update(r.values)
        row.update({f"metric_{k}": v for k, v in r.metrics.items() if k not in r.values})
        for name, figure in r.estimates.items():
            if figure["n"] > 1:
                row.update({f"{name}_std": figure["std"], f"{name}_ci95_low": figure["ci_low"],
                            f"{name}_ci95_high": figure["ci_high"]})
        test = result.versus_stock.get(r.number)
        if test is not None:
            row.update({"vs_stock": test.verdict, "vs_stock_dice_fg_diff": test.mean_difference,
                        "vs_stock_ci95_low": test.ci_low, "vs_stock_ci95_high": test.ci_high,
                        "vs_stock_p": test.p_value})
        if timed:  # the front timed again in one interleaved session
            figures = timed.get(str(r.number), {})
            row.update({"latency_interleaved_ms": figures.get("median_ms"), "latency_ratio": figures.get("ratio")})
        row.update({"trained": r.trained, "duplicate_of": r.duplicate_of, "feasible": r.feasible,
                    "on_front": r.number in on_front, "reference": r.config_hash == result.info.reference_hash,
                    "config_hash": r.config_hash, "skipped": r.skipped or "", "fail_reason": r.fail_reason or ""})
        rows.append(row)
    return pd.DataFrame(rows)


def write_report(result: SweepResult, out_dir: Path) -> list[Path]:
    """``results.csv``, ``pareto.csv``, ``report.md``, ``table.tex``, ``pareto.png`` and
    ``pareto.html`` in ``out_dir``; returns the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    objectives = result.info.objectives
    results = trial_rows(result)
    results.to_csv(out_dir / "results.csv", index=False)
    shown = results[results["on_front"] | results["reference"]] if len(results) else results
    pareto = results[results["on_front"]] if len(results) else results
    pareto.to_csv(out_dir / "pareto.csv", index=False)
    columns = [c for c in shown.columns if c not in ("state", "config_hash", "fail_reason", "skipped", "feasible",
                                                     "on_front")]
    table = shown[columns].sort_values(list(objectives)[0], ascending=False) if len(shown) else shown
    (out_dir / "report.md").write_text(
        f"# Study {result.info.study}\n\n{len(result.records)} trials, {result.count('trained')} trained, "
        f"{len(result.front)} on the Pareto front of {', '.join(f'{k} ({v})' for k, v in objectives.items())}.\n"
        "Rows marked reference are the stock architecture, when the study sampled it.\n\n"
        + table.to_markdown(index=False, floatfmt=".4f") + "\n\n" + _evidence(result)
    )
    (out_dir / "table.tex").write_text(table.to_latex(index=False, float_format="%.4f"))
    paths = [out_dir / name for name in ("results.csv", "pareto.csv", "report.md", "table.tex")]
    return paths + _plots(result, out_dir)


def _evidence(result: SweepResult) -> str:
    """The paired tests, in words."""
    seeds = (f"each design trained {result.info.repeats} times (seeds {result.info.recipe['seed']} to "
             f"{result.info.recipe['seed'] + result.info.repeats - 1}); per-image scores averaged over the seeds"
             if result.info.repeats > 1 else "one seed per design: the tests see image-to-image variation only")
    lines = [f"## Paired evidence\n\nPer-image foreground Dice on the test split, {seeds}. Verdicts need both "
             "a Wilcoxon signed-rank p < 0.05 and a 95 % bootstrap interval of the mean difference that excludes 0.\n"]
    if result.stock is None:
        lines.append("The study did not train the stock network, so front members are not compared with it.\n")
    for number, test in result.versus_stock.items():
        lines.append(f"- trial {number} against the stock network (trial {result.stock}): {test.text()}")
    same = indistinguishable(result)
    if same:
        lines.append("\nFront members that cannot be told apart on test Dice: " + ", ".join(
            f"{c.reference} and {c.candidate} (p {c.p_value:.2g})" for c in same) + ".")
    return "\n".join(lines) + "\n"


def _plots(result: SweepResult, out_dir: Path) -> list[Path]:
    """Accuracy against each cost objective; the front marked."""
    names = list(result.info.objectives)
    accuracy = [n for n in names if not OBJECTIVES.get(n).before_training]
    costs = [n for n in names if OBJECTIVES.get(n).before_training]
    points = [r for r in result.records if r.state == "COMPLETE" and all(r.value(n) is not None for n in names)]
    if not accuracy or not costs or not points:
        return []
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    y = accuracy[0]
    front = set(result.front)
    figure, axes = plt.subplots(1, len(costs), figsize=(5 * len(costs), 4), squeeze=False)
    html = make_subplots(rows=1, cols=len(costs))
    for i, x in enumerate(costs):
        for on_front, colour in ((False, "#1f77b4"), (True, "#d62728")):
            group = [r for r in points if (r.number in front) == on_front]
            xs, ys = [r.value(x) for r in group], [r.value(y) for r in group]
            axes[0, i].scatter(xs, ys, color=colour, label="Pareto front" if on_front else "trials")
            html.add_trace(go.Scatter(x=xs, y=ys, mode="markers", marker={"color": colour},
                                      text=[f"trial {r.number}" for r in group],
                                      name="Pareto front" if on_front else "trials"), row=1, col=i + 1)
        axes[0, i].set_xlabel(OBJECTIVES.get(x).label)
        axes[0, i].set_ylabel(OBJECTIVES.get(y).label)
        axes[0, i].legend()
    figure.savefig(out_dir / "pareto.png", dpi=120, bbox_inches="tight")
    plt.close(figure)
    html.write_html(out_dir / "pareto.html", include_plotlyjs=True)  # self-contained, offline
    return [out_dir / "pareto.png", out_dir / "pareto.html"]
