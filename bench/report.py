"""Study reports: every trial and the Pareto front as CSV, Markdown and LaTeX tables, and the
front as a static (PNG) and an interactive (HTML) plot. Read from the Optuna study alone."""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: never open a window
import matplotlib.pyplot as plt  # noqa: E402
import optuna  # noqa: E402
import pandas as pd  # noqa: E402

from .search import front  # noqa: E402


def trial_rows(study: optuna.Study, objectives: dict[str, str], reference_hash: str = "") -> pd.DataFrame:
    """One row per trial: number, state, sampled parameters, objectives, cost, metrics, flags."""
    on_front = {t.number for t in front(study, objectives)}
    timed = study.user_attrs.get("front_latency", {}).get("trials", {})
    rows = []
    for t in study.trials:
        attrs = t.user_attrs
        row: dict[str, Any] = {"trial": t.number, "state": t.state.name, **t.params}
        row.update({f"cost_{k}": v for k, v in attrs.get("cost", {}).items()})
        row.update({f"metric_{k}": v for k, v in attrs.get("metrics", {}).items()})
        if t.values is not None:
            row.update(dict(zip(objectives, t.values)))
        if timed:  # the front timed again in one interleaved session (bench.search.time_front)
            figures = timed.get(str(t.number), {})
            row.update({"latency_interleaved_ms": figures.get("median_ms"), "latency_ratio": figures.get("ratio")})
        row.update({"trained": attrs.get("trained"), "duplicate_of": attrs.get("duplicate_of"),
                    "feasible": all(v <= 0 for v in attrs.get("constraint_values", [0.0])),
                    "on_front": t.number in on_front,
                    "reference": bool(reference_hash) and attrs.get("config_hash") == reference_hash,
                    "config_hash": attrs.get("config_hash", ""), "fail_reason": attrs.get("fail_reason", "")})
        rows.append(row)
    return pd.DataFrame(rows)


def write_report(study: optuna.Study, objectives: dict[str, str], out_dir: Path,
                 reference_hash: str = "") -> list[Path]:
    """``results.csv``, ``pareto.csv``, ``report.md``, ``table.tex``, ``pareto.png`` and
    ``pareto.html`` in ``out_dir``; returns the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    results = trial_rows(study, objectives, reference_hash)
    results.to_csv(out_dir / "results.csv", index=False)
    shown = results[results["on_front"] | results["reference"]] if len(results) else results
    pareto = results[results["on_front"]] if len(results) else results
    pareto.to_csv(out_dir / "pareto.csv", index=False)
    columns = [c for c in shown.columns if c not in ("state", "config_hash", "fail_reason", "feasible", "on_front")]
    table = shown[columns].sort_values(list(objectives)[0], ascending=False)
    complete = int((results["state"] == "COMPLETE").sum()) if len(results) else 0
    (out_dir / "report.md").write_text(
        f"# Study {study.study_name}\n\n{len(study.trials)} trials, {complete} complete, "
        f"{len(pareto)} on the Pareto front of {', '.join(f'{k} ({v})' for k, v in objectives.items())}.\n"
        "Rows marked reference are the stock architecture, when the study sampled it.\n\n"
        + table.to_markdown(index=False, floatfmt=".4f") + "\n"
    )
    (out_dir / "table.tex").write_text(table.to_latex(index=False, float_format="%.4f"))
    paths = [out_dir / name for name in ("results.csv", "pareto.csv", "report.md", "table.tex")]
    return paths + _plots(study, objectives, out_dir)


def _plots(study: optuna.Study, objectives: dict[str, str], out_dir: Path) -> list[Path]:
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    if len(objectives) not in (2, 3) or not complete:
        return []
    names = list(objectives)
    figure = optuna.visualization.plot_pareto_front(study, target_names=names)
    figure.write_html(out_dir / "pareto.html", include_plotlyjs=True)  # self-contained, offline
    with warnings.catch_warnings():  # Optuna marks its matplotlib backend experimental
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        axes = optuna.visualization.matplotlib.plot_pareto_front(study, target_names=names)
    axes.figure.savefig(out_dir / "pareto.png", dpi=120, bbox_inches="tight")
    plt.close(axes.figure)
    return [out_dir / "pareto.png", out_dir / "pareto.html"]
