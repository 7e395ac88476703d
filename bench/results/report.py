"""A sweep's report, from its records: ``report.md``, a page to read (what was swept on what
data, what became of every trial, the plot, the front table, the comparison with the stock
network); ``table.md``/``.tex``/``.csv``, the front in the form of the seed papers' Table 1;
``results.csv`` (every trial, full precision) and ``pareto.csv`` (the front, full precision);
``pareto.png``/``.pdf``/``.html``, the plots (:mod:`bench.results.plots`)."""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd

from .evidence import indistinguishable
from .folds import fold_rows
from ..core.files import atomic, write_text
from ..search.objectives import OBJECTIVES
from .plots import write_plots
from ..search.records import SweepResult
from ..core.stats import RULE
from .tables import display_table, front_table, write_tables


def trial_rows(result: SweepResult) -> pd.DataFrame:
    """One row per trial, every figure at full precision, each once: number, state, status,
    design, sample, objective values, metrics (means over seeds) with std and 95 % interval,
    the front's interleaved latency, the paired test against the stock network, flags."""
    on_front = set(result.front)
    timed = (result.front_latency or {}).get("trials", {})
    rows = []
    for r in result.records:
        row: dict[str, Any] = {"trial": r.number, "state": r.state, "status": r.status, "design": r.label,
                               **r.sample, **r.values}
        row.update({k: v for k, v in r.metrics.items() if k not in r.values})
        for name, figure in r.estimates.items():
            if figure["n"] > 1:
                row.update({f"{name}_std": figure["std"], f"{name}_ci95_low": figure["ci_low"],
                            f"{name}_ci95_high": figure["ci_high"]})
        if timed:  # the front timed again in one interleaved session
            figures = timed.get(str(r.number), {})
            row.update({"latency_interleaved_ms": figures.get("median_ms"), "latency_ratio": figures.get("ratio")})
        test = result.versus_stock.get(r.number)
        if test is not None:
            row.update({"vs_stock": test.verdict, "vs_stock_dice_fg_diff": test.mean_difference,
                        "vs_stock_ci95_low": test.ci_low, "vs_stock_ci95_high": test.ci_high,
                        "vs_stock_p_better": test.p_better, "vs_stock_p": test.p_value,
                        "vs_stock_p_holm": test.p_adjusted})
        row.update({"seeds": len(r.seeds), "trained": r.trained, "duplicate_of": r.duplicate_of,
                    "feasible": r.feasible, "on_front": r.number in on_front,
                    "p_on_front": result.front_probability.get(r.number), "stock": r.number == result.stock,
                    "config_hash": r.config_hash, "skipped": r.skipped or "", "fail_reason": r.fail_reason or "",
                    "pruned_at_epoch": (r.pruned or {}).get("epoch"),
                    "val_dice_so_far": (r.pruned or {}).get("val_dice"), "pruned": (r.pruned or {}).get("reason", ""), "sampler_seed": r.sampler_seed, "seconds": r.seconds, "mlflow_run_id": r.links.get("mlflow_run_id", "")})
        rows.append(row)
    return pd.DataFrame(rows)


def write_report(result: SweepResult, out_dir: Path) -> list[Path]:
    """Every file of the report in ``out_dir``; returns the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    results = trial_rows(result)
    with atomic(out_dir / "results.csv") as tmp:
        results.to_csv(tmp, index=False)
    with atomic(out_dir / "pareto.csv") as tmp:
        (results[results["on_front"]] if len(results) else results).to_csv(tmp, index=False)
    info = result.info
    tables = write_tables(front_table(result), out_dir, "table", _table_caption(result),
                          f"tab:{info.study}") if result.front else []
    plots = write_plots(result, out_dir)
    folds = []
    if result.all_folds:
        with atomic(out_dir / "folds.csv") as tmp:
            fold_rows(result).to_csv(tmp, index=False)
        folds.append(out_dir / "folds.csv")
    write_text(out_dir / "report.md", report_page(result, bool(plots)))
    return [out_dir / "report.md", out_dir / "results.csv", out_dir / "pareto.csv", *folds, *tables, *plots]


def _table_caption(result: SweepResult) -> str:
    info = result.info
    seeds = f"mean ± std over {info.repeats} seeds" if info.repeats > 1 else "one seed per design"
    return (f"Pareto front of study {info.study} ({', '.join(info.objectives)}) on "
            f"{Path(str(info.data['source'])).name} {info.data_at()}, {info.test_split()}; {seeds}. P(front): the "
            f"share of 1,000 resamples of the designs' seeds and timings in which the design is on the front (bench.results.membership).")


def report_page(result: SweepResult, plotted: bool) -> str:
    """``report.md``: the study in words, figures and one table; no NaN, no raw dumps."""
    info = result.info
    recipe = info.recipe
    seeds = (f"{info.repeats} seeds per design ({recipe['seed']} to {recipe['seed'] + info.repeats - 1})"
             if info.repeats > 1 else f"one seed per design ({recipe['seed']})")
    lines = [f"# Study {info.study}", "", info.description or f"Search space {info.space}.", "",
             provenance(result), "", "## What was swept", ""]
    varied = "; ".join(f"`{path}` in {what}" for path, what in info.vary.items())
    lines.append(f"- Base architecture: `{Path(info.architecture).stem}`" + (f"; varied: {varied}." if varied else "."))
    bounds = ", ".join(OBJECTIVES.get(k).bounds_text(bound) for k, bound in info.constraints.items())
    lines.append("- Objectives: " + ", ".join(f"`{k}` ({v})" for k, v in info.objectives.items())
                 + (f"; constraints: {bounds}" if bounds else "") + ".")
    data = info.data
    lines.append(f"- Data: {Path(str(data['source'])).name} at {data['size']} px, {info.test_split()}: {data['train']} "
                 f"training and {data['val']} validation images (split {data['split_hash'][:12]}).")
    lines.append(f"- Recipe: {recipe['optimizer']}, learning rate {recipe['lr']:g}, {recipe['schedule']} schedule, "
                 f"{recipe['epochs']} epochs, batch {recipe['batch']}, loss {recipe['loss']}; {seeds}.")
    settings = "".join(f", {k} {v}" for k, v in info.sampler_settings.items())  # the sampler's own
    pruner = info.pruner.get("type", "none")
    lines.append(f"- Sampler {info.sampler} (study seed {info.seed}{settings}; each process and resume draws with its "
                 f"own seed, in `results.csv`), pruner {pruner}, {info.trials} distinct networks asked for, "
                 f"{len(result.records)} trials run" + (f" in {result.seconds:.0f} s" if result.seconds else "") + ".")
    lines += ["", "## What became of the trials", ""]
    counts = Counter(r.status for r in result.records)
    lines.append(f"- {counts['trained']} designs trained; {counts['duplicate']} trials sampled a design already "
                 f"evaluated and reused its results (or its fate).")
    if counts["pruned"]:
        lines.append(f"- {counts['pruned']} designs pruned, stopped early by {pruner} (figures so far in "
                     "`results.csv`; never on the front).")
    if result.exhausted:
        lines.append(f"- {result.exhausted}")
    untrained = Counter(f"{r.label} ({r.skipped.removeprefix('not trained: ')})" for r in result.records
                        if r.status == "not trained")
    if untrained:
        lines.append(f"- {counts['not trained']} designs not trained, violating a constraint: "
                     + "; ".join(f"{why} ({n}x)" if n > 1 else why for why, n in untrained.items()) + ".")
    failures = Counter((r.fail_reason or "")[:160] for r in result.records if r.status == "failed")
    if failures:
        lines.append(f"- {counts['failed']} failed: " + "; ".join(f"{why} ({n}x)" if n > 1 else why
                                                               for why, n in failures.items()) + ".")
    if counts["skipped"]:
        lines.append(f"- {counts['skipped']} skipped: the study already had enough trials under way.")
    if result.weights:
        lines.append(f"- {_weights(result)}")
    lines += ["", "## Pareto front", ""]
    if not result.front:
        lines.append("No design reached the front: none was trained.")
    else:
        if plotted:
            lines += ["![Pareto front](pareto.png)", "", "Interactive: [pareto.html](pareto.html); "
                      "for print: [pareto.pdf](pareto.pdf).", ""]
        lines += [_table_caption(result), "", display_table(front_table(result)).to_markdown(index=False), ""]
        if result.hypervolume is not None:
            lines.append(f"Hypervolume of the front: {result.hypervolume:.4f} ({SweepResult.HYPERVOLUME}).")
    lines += ["", "## Against the stock network", "", _evidence(result)]
    if result.all_folds:
        lines += ["## On every fold", "", _all_folds(result)]
    lines += ["## Files", "", "`results.csv` holds every trial at full precision (sample, values, metrics with "
              "std and interval, status and reasons), `pareto.csv` the front, `table.tex` the front for LaTeX "
              "(booktabs)."]
    return "\n".join(lines) + "\n"


def provenance(result: SweepResult) -> str:
    """Which command made the study and at which commit this page was written, on what machine."""
    import time
    from importlib.metadata import version

    from ..core.machine import cpu_count, cpu_model
    from ..core.machine import git_revision

    info = result.info
    study = f" --study {info.study}" if info.study != info.space else ""
    return (f"`bench run --space {info.space}{study}` at commit {git_revision()}; this page written "
            f"{time.strftime('%Y-%m-%d %H:%M')} by `bench report --study {info.study}` on {cpu_model()} "
            f"({cpu_count()} cores), torch {version('torch')}.")


def _weights(result: SweepResult) -> str:
    """What the weights policy kept, where, and what it freed."""
    kept = {n: w for n, w in result.weights.items() if w["kept"]}
    dropped = {n: w for n, w in result.weights.items() if not w["kept"]}
    in_mlflow = all(where.startswith(("runs:/", "models:/")) for w in kept.values() for where in w["where"])
    where = "as MLflow models in the trials' runs (`runs:/<run id>/model`)" if in_mlflow else "in the weights folder"
    text = (f"Weights (`--keep-weights {result.info.keep_weights}`): kept for {len(kept)} network(s) "
            f"({', '.join(f'trial {n}: ' + w['why'] for n, w in kept.items()) or 'none'}; "
            f"{sum(w['bytes'] for w in kept.values()) / 1e6:.1f} MB, {where})")
    if dropped:
        text += (f"; deleted for {len(dropped)} network(s) not on the front "
                 f"({sum(w['bytes'] for w in dropped.values()) / 1e6:.1f} MB freed)")
    return text + "."


def _all_folds(result: SweepResult) -> str:
    """The front and the stock network on every fold, in words and one table."""
    info = result.info
    folds, rank = info.data["folds"], info.data.get("rank_folds", 1)
    ranked = "fold 1" if rank == 1 else f"folds 1 to {rank}"
    table = fold_rows(result)
    shown = table[["trial", "design", "role", *[f"fold_{k + 1}" for k in range(folds)]]].copy()
    shown["pooled"] = [f"{m:.4f} ± {s:.4f}" if n > 1 else f"{m:.4f}"
                       for m, s, n in zip(table["test_dice_fg"], table["test_dice_fg_std"], table["runs"])]
    shown["against the stock"] = [result.all_folds_versus_stock[n].short() if n in result.all_folds_versus_stock
                                  else "" for n in table["trial"]]
    missing = [n for n, f in result.all_folds.items() if not f.complete]
    others = "the other folds" if rank < folds else "them"
    if result.stock is None:
        tested = ("The study did not train the stock network, so nothing here is tested against it.")
    else:
        tested = (f"The paired test against the stock network covers every image once, each scored by the fold that "
                  f"held it out, Holm-adjusted over the {len(result.all_folds_versus_stock)} comparison(s) here.")
    lines = [f"Every design was trained and ranked on {ranked} of {folds}; the front and the stock network were "
             f"trained on {others} as well, with the same seeds. Test foreground Dice per fold (mean over seeds) and "
             f"pooled over folds and seeds. {tested} `folds.csv` holds the figures at full precision.", "",
             shown.to_markdown(index=False, floatfmt=".4f"), ""]
    if missing:
        lines.append("Not yet trained on every fold (the sweep stopped before): "
                     + ", ".join(f"trial {n}" for n in missing) + "; run the same command again to finish.")
    return "\n".join(lines) + "\n"


def _evidence(result: SweepResult) -> str:
    """The paired tests, in words."""
    info = result.info
    seeds = (f"each design trained {info.repeats} times; the bootstrap resamples seeds and images"
             if info.repeats > 1 else "one seed per design: the tests see image-to-image variation only, not "
             "seed variance")
    family = len(result.versus_stock) + len(result.front_pairs)
    lines = [f"Per-image foreground Dice on the test split, {seeds}. {RULE} Here the family is the "
             f"{family} comparison(s) below and between front members.", ""]
    if result.stock is None:
        lines.append(f"The study did not train the stock {Path(info.architecture).stem}, so the front is not "
                     "compared with it.")
    stock = next((r for r in result.records if r.number == result.stock), None)
    for number, test in result.versus_stock.items():
        lines.append(f"- {result.record(number).label} (trial {number}) against the stock {stock.label} "
                     f"(trial {result.stock}): {test.text()}.")
    same = indistinguishable(result)
    if same:
        lines += ["", "Front members the paired test cannot tell apart on test Dice: " + ", ".join(
            f"{c.reference} and {c.candidate} (p {c.p:.2g})" for c in same) + "."]
    return "\n".join(lines) + "\n"
