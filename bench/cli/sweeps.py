"""``bench run`` and ``bench report``: sweeps of a search space (argument parsing over
:class:`bench.run.sweep.Sweep`) and their reports."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import click

from ..core.files import plain_name

from .common import (COUNT, Finite, Registered, SIZE, cli, console, pruner_names, sampler_names, speed_options,
                     speed_overrides)


@cli.command()
@click.option("--space", "space_ref", required=True, help="Search space: built-in name or YAML path.")
@click.option("--study", "study_name", default=None, help="Study name (default: the space's); "
              "an existing study is resumed, and workers given the same name share it.")
@click.option("--trials", type=COUNT, default=None,
              help="Distinct networks to evaluate (default: the space's); repeats of a known network and designs "
              "breaking a constraint are recorded but not counted.")
@click.option("--data", default=None, help="Dataset folder (default: the space's, usually synthetic).")
@click.option("--size", type=SIZE, default=None, help="Resize whole images to SIZE x SIZE (default: the space's).")
@click.option("--patch", type=SIZE, default=None, help="Train on PATCH x PATCH crops at native resolution, "
              "score whole images by sliding windows (default: the space's).")
@click.option("--folds", type=int, default=None,
              help="K-fold cross-validation by the study seed (default: the space's data.folds): designs train "
              "on the first --rank-folds folds, the front and the stock network on all K at the end.")
@click.option("--rank-folds", type=int, default=None,
              help="With --folds: how many folds every design trains on and is ranked by (default 1).")
@click.option("--keep-weights", type=click.Choice(["front", "all", "none"]), default=None,
              help="Which trained networks keep their weights (default: the space's study.keep_weights, front): the "
              "front's and the stock network's, kept once (as MLflow models in their runs, with tracking); all; none.")
@click.option("--storage", default=None, envvar="BENCH_STORAGE",
              help="Optuna storage: sqlite:///FILE (default sqlite:///runs/optuna.db), "
              "postgresql://USER:PASSWORD@HOST/DB, mysql+pymysql://..., or journal:FILE. Env: BENCH_STORAGE.")
@click.option("--tracking-uri", default=None, envvar="MLFLOW_TRACKING_URI",
              help="MLflow tracking URI: sqlite:///FILE (default sqlite:///runs/mlflow.db) or a server, "
              "http://HOST:5000. Env: MLFLOW_TRACKING_URI.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Worker processes to start on this machine, all on the same study.")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="Torch threads per worker (default: OMP_NUM_THREADS where set, else the cores divided among "
              "the workers).")
@click.option("--timeout", type=Finite(0.0), default=None, help="Stop starting trials after this many seconds.")
@click.option("--heartbeat", type=click.IntRange(min=1), default=10, show_default=True,
              help="Seconds between trial heartbeats; a trial silent for 3x this is failed and retried.")
@click.option("--max-retry", type=click.IntRange(min=0), default=2, show_default=True,
              help="How often a trial whose worker died is retried.")
@click.option("--repeats", type=click.IntRange(min=1), default=None,
              help="Train each design this many times, seeds seed, seed+1, ... (default: the space's).")
@click.option("--sampler", type=Registered(sampler_names), default=None,
              help="Sampler instead of the space's (bench list samplers).")
@click.option("--pruner", type=Registered(pruner_names), default=None,
              help="Pruner instead of the space's, with its default settings (bench list pruners; Optuna's "
              "own work on one objective only).")
@click.option("--latency", type=click.Choice(["measured", "predicted"]), default="measured", show_default=True,
              help="Latency objectives measured per trained design, or predicted from this machine's table of "
              "measured blocks (bench latency-table build) before anything is built; the front is timed either way.")
@click.option("--latency-table", default=None, help="Latency table file (default: this machine's).")
@speed_options
@click.option("--quiet", is_flag=True, help="Only the final front.")
def run(space_ref: str, study_name: Optional[str], trials: Optional[int], data: Optional[str],
        size: Optional[int], patch: Optional[int], folds: Optional[int], rank_folds: Optional[int],
        keep_weights: Optional[str], storage: Optional[str], tracking_uri: Optional[str], workers: int,
        threads: Optional[int], timeout: Optional[float], heartbeat: int, max_retry: int, repeats: Optional[int],
        sampler: Optional[str], pruner: Optional[str], latency: str, latency_table: Optional[str], device: str,
        quiet: bool, **options: Any) -> None:
    """Sweep a search space with Optuna, track every trial in MLflow, print the Pareto front,
    and write the study's report to reports/<study>/.

    Start the same command on as many machines as you like, pointed at one --storage and one
    --tracking-uri: the workers share the study (Optuna's RDB storage coordinates them).
    With G GPUs here, worker i trains on cuda:(i mod G) (--device auto or cuda).
    """
    from ..core.defaults import DEFAULT_TRACKING
    from ..results.progress import SweepProgress
    from ..search.space import load_space, override_recipe, override_study
    from ..run.sweep import Sweep

    deterministic = options.pop("deterministic")  # set by the sweep in each worker process
    space = override_recipe(override_study(load_space(space_ref), sampler, pruner), **speed_overrides(options))
    Sweep(space, study=study_name, storage=storage, tracking_uri=tracking_uri or DEFAULT_TRACKING, data=data,
          size=size, patch=patch, trials=trials, workers=workers, threads=threads, timeout=timeout, heartbeat=heartbeat,
          max_retry=max_retry, repeats=repeats, listeners=[SweepProgress(console, quiet)],
          report_dir=Path("reports") / (study_name or space.name), device=device, deterministic=deterministic,
          latency=latency, latency_table=latency_table, folds=folds, rank_folds=rank_folds,
          keep_weights=keep_weights).run()


@cli.command()
@click.option("--study", "study_name", required=True)
@click.option("--storage", default=None, envvar="BENCH_STORAGE")
@click.option("--out", type=click.Path(file_okay=False), default=None, help="Default: reports/<study>/.")
def report(study_name: str, storage: Optional[str], out: Optional[str]) -> None:
    """Write a study's tables and Pareto plots: results.csv, pareto.csv, report.md, table.tex,
    pareto.png, pareto.html. Read from the study's storage alone."""
    from ..core.defaults import DEFAULT_STORAGE
    from ..results.report import write_report
    from ..search.study import load_study
    from ..results.loading import load_result

    result = load_result(load_study(plain_name(study_name, "--study"), storage or DEFAULT_STORAGE))
    paths = write_report(result, Path(out) if out else Path("reports") / study_name)
    console.print(f"wrote {', '.join(str(p) for p in paths)}")
