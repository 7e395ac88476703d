"""``bench tabulate``: build a space's tabulated benchmark (a resumable study of (design, seed)
jobs), say how far it is, and export it as one Parquet file."""
from __future__ import annotations

import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any, Optional

import click

from ..core import interrupts
from ..core.errors import BenchError
from .common import SIZE, cli, console


@cli.group()
def tabulate() -> None:
    """A tabulated benchmark of a space: every design trained with several seeds, kept with its
    learning curves, per-image test Dice, costs, latency and the time of every step."""


def _study_name(space_name: str, study: Optional[str]) -> str:
    return study or f"{space_name}-table"


def _print_job(job, row: Optional[dict], error: Optional[str]) -> None:
    if row is None:
        print(f"design {job.design} seed {job.seed}: failed: {error}", flush=True)
        return
    seconds = row["build_seconds"] + sum(row["train_seconds"]) + sum(row["val_seconds"]) + row["test_seconds"]
    print(f"design {job.design} seed {job.seed}: best val Dice {row['best_val_dice']:.3f}, test Dice "
          f"{row['test_dice_fg']:.3f}, {seconds:.1f} s", flush=True)


def _worker(space_ref: str, data: Optional[str], size: Optional[int], study: str, storage: str, threads: int,
            limit: Optional[int], device: str) -> None:
    from ..data.source import source_from_space
    from ..run.tabulate import tabulate_worker
    from ..search.space import load_space

    space = load_space(space_ref)
    interrupts.install()
    try:
        tabulate_worker(space, source_from_space(space.data, data, {"size": size}), study, storage, threads, limit,
                        device, _print_job)
    except KeyboardInterrupt:
        raise SystemExit(130) from None


@tabulate.command("build")
@click.option("--space", "space_ref", required=True, help="Search space with a table: section (built-in or path).")
@click.option("--data", default=None, help="Dataset folder (default: the space's).")
@click.option("--size", type=SIZE, default=None, help="Resize images to SIZE x SIZE (default: the space's).")
@click.option("--study", default=None, help="Study name (default: <space>-table); an existing one is resumed.")
@click.option("--storage", default=None, envvar="BENCH_STORAGE",
              help="Optuna storage (default sqlite:///runs/optuna.db).")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Worker processes here; more may join from anywhere with the same --study and --storage.")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="Torch threads per worker "
              "(default: the cores divided among the workers).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Stop each worker after this many jobs.")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:N or auto.")
def build(space_ref: str, data: Optional[str], size: Optional[int], study: Optional[str], storage: Optional[str],
          workers: int, threads: Optional[int], limit: Optional[int], device: str) -> None:
    """Train every design of the space's table with its seeds (resumable: run it again to go on)."""
    from ..core.defaults import DEFAULT_STORAGE
    from ..search.space import load_space
    from ..search.table_study import TableStudy

    space = load_space(space_ref)
    name, storage = _study_name(space.name, study), storage or DEFAULT_STORAGE
    table = TableStudy(space, name, storage)  # created (jobs enqueued) once, before the workers race
    state = table.progress()
    console.print(f"table {name}: {len(table.samples)} designs, {state['jobs']} jobs; {state['done']} done, "
                  f"{state['waiting']} waiting.")
    threads = threads or max(1, (os.cpu_count() or 1) // workers)
    args = (space_ref, data, size, name, storage, threads, limit, device)
    if workers == 1:
        _worker(*args)
    else:
        from ..run.workers import run_processes

        codes = run_processes(_worker, [args] * workers, "tabulate worker")
        if any(codes):
            raise BenchError(f"{sum(1 for c in codes if c)} of {workers} workers failed (exit codes {codes}); their "
                             "errors are printed above. The build resumes where it stopped when run again.")
    state = table.progress()
    console.print(f"table {name}: {state['done']} of {state['jobs']} jobs done, {state['failed']} failed trials.")


@tabulate.command("status")
@click.option("--space", "space_ref", required=True)
@click.option("--study", default=None)
@click.option("--storage", default=None, envvar="BENCH_STORAGE")
def status(space_ref: str, study: Optional[str], storage: Optional[str]) -> None:
    """How far a table's build is."""
    from ..core.defaults import DEFAULT_STORAGE
    from ..search.space import load_space
    from ..search.table_study import TableStudy

    space = load_space(space_ref)
    table = TableStudy(space, _study_name(space.name, study), storage or DEFAULT_STORAGE)
    state = table.progress()
    rows = table.rows()
    spent = sum(_job_seconds(r) for r in rows)
    console.print(f"{state['done']} of {state['jobs']} jobs done ({len({r['design'] for r in rows})} of "
                  f"{len(table.samples)} designs), {state['running']} running, {state['waiting']} waiting, "
                  f"{state['failed']} failed trials; {spent / 3600:.2f} h of measured work so far.")
    for failure in table.failures()[:10]:
        console.print(f"  design {failure['design']} seed {failure['seed']}: {failure['reason']}", markup=False)


def _job_seconds(row: dict[str, Any]) -> float:
    return (row["build_seconds"] + sum(row["train_seconds"]) + sum(row["val_seconds"]) + row["test_seconds"]
            + sum(row.get(k, 0.0) for k in ("count_seconds", "latency_seconds", "proxies_seconds"))
            + sum(v for k, v in row.items() if k.startswith("test_seconds_at_")))


@tabulate.command("export")
@click.option("--space", "space_ref", required=True)
@click.option("--study", default=None)
@click.option("--storage", default=None, envvar="BENCH_STORAGE")
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="The Parquet file to write.")
def export(space_ref: str, study: Optional[str], storage: Optional[str], out: str) -> None:
    """Write the finished jobs of a table as one Parquet file (see bench.search.benchmark_table)."""
    import torch

    from ..arch.latency import cpu_model
    from ..core.defaults import DEFAULT_STORAGE
    from ..search.benchmark_table import BenchmarkTable, table_frame, write_table
    from ..search.space import load_space
    from ..search.table_study import TableStudy

    space = load_space(space_ref)
    table = TableStudy(space, _study_name(space.name, study), storage or DEFAULT_STORAGE)
    rows = table.rows()
    frame = table_frame(rows)
    meta = {"space": space.name, "space_file": space.raw, "study": table.name,
            "data": table.study.user_attrs.get("data"), "recipe": space.recipe.to_dict(),
            "table": space.table.to_dict(), "designs_in_space": len(table.samples),
            "calibration_designs": table.calibration, "jobs": len(table.jobs), "jobs_done": len(rows),
            "failures": table.failures(), "build_hours": sum(_job_seconds(r) for r in rows) / 3600,
            "torch": torch.__version__, "cpu": cpu_model(), "machine": platform.machine(),
            "commit": _commit(), "exported": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    path = write_table(BenchmarkTable(frame, meta), Path(out))
    console.print(f"wrote {path}: {len(frame)} rows, {frame['design'].nunique()} designs, "
                  f"{path.stat().st_size / 1024:.0f} KiB.")


def _commit() -> Optional[str]:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip() or None
    except (OSError, subprocess.CalledProcessError):
        return None


def _table_and_space(table_path: str, space_ref: Optional[str]):
    from ..search.benchmark_table import read_table
    from ..search.space import load_space

    table = read_table(table_path)
    return table, load_space(space_ref or table.meta.get("space") or "tabular")


@tabulate.command("report")
@click.option("--table", "table_path", required=True, type=click.Path(dir_okay=False), help="A table's Parquet file.")
@click.option("--space", "space_ref", default=None, help="The space it was built from (default: the one it names).")
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Folder for README.md, PNGs and CSVs.")
@click.option("--repetitions", type=click.IntRange(min=2), default=30, show_default=True,
              help="Replays per strategy.")
@click.option("--repetitions-of", "repetitions_of", multiple=True, metavar="SAMPLER=N",
              help="Another number of replays for one sampler (tpe's and gp's take seconds to minutes each).")
@click.option("--budget", type=click.FloatRange(min=0.01), default=0.5, show_default=True,
              help="Simulated time per replay, as a share of the time one worker takes to train every design once.")
@click.option("--draws", type=click.IntRange(min=1), default=200, show_default=True,
              help="3-seed verdicts drawn per pair of calibration designs.")
@click.option("--samplers", default="random,nsga2,tpe,gp", show_default=True, help="Samplers to replay.")
@click.option("--jobs", type=click.IntRange(min=1), default=1, show_default=True,
              help="Processes replaying what replays/ lacks, side by side (the figures do not depend on it).")
def table_report(table_path: str, space_ref: Optional[str], out: str, repetitions: int,
                 repetitions_of: tuple[str, ...],
                 budget: float, draws: int, samplers: str, jobs: int) -> None:
    """The five analyses of a table (variance, fidelity, verdict calibration, proxies, search
    strategies) as a report: README.md with PNG plots and CSV tables."""
    from ..results.table_report import ReportSettings, write_table_report

    table, space = _table_and_space(table_path, space_ref)
    counts = {}
    for given in repetitions_of:
        name, _, count = given.partition("=")
        if not count.isdigit() or int(count) < 2:
            raise click.BadParameter(f"{given!r}: expected SAMPLER=N with N >= 2, e.g. gp=5.",
                                     param_hint="--repetitions-of")
        counts[name.strip()] = int(count)
    settings = ReportSettings(repetitions, budget, draws, tuple(s.strip() for s in samplers.split(",") if s.strip()),
                              counts, _command(table_path, space_ref, out, repetitions, repetitions_of, budget, draws,
                                               samplers), _commit(), jobs)
    for path in write_table_report(table, space, Path(out), settings):
        console.print(f"wrote {path}")


def _command(table_path: str, space_ref: Optional[str], out: str, repetitions: int, repetitions_of: tuple[str, ...],
             budget: float, draws: int, samplers: str) -> str:
    """The ``bench tabulate report`` command line that reproduces a report."""
    words = ["bench tabulate report --table", table_path, *(["--space", space_ref] if space_ref else []), "--out", out,
             "--repetitions", str(repetitions), *(w for given in repetitions_of for w in ("--repetitions-of", given)),
             "--budget", f"{budget:g}", "--draws", str(draws), "--samplers", samplers]
    return " ".join(words)


@cli.command("replay")
@click.option("--table", "table_path", required=True, type=click.Path(dir_okay=False), help="A table's Parquet file.")
@click.option("--space", "space_ref", default=None, help="The space it was built from (default: the one it names).")
@click.option("--sampler", default=None, help="Sampler (default: the space's).")
@click.option("--pruner", default="none", show_default=True, help="Pruner (none, mo_asha, ...).")
@click.option("--trials", type=click.IntRange(min=1), default=100, show_default=True, help="Distinct designs.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True, help="Simulated workers.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seeds the sampler and each trial's seed row.")
@click.option("--repetitions", type=click.IntRange(min=1), default=1, show_default=True,
              help="Replays with seeds seed, seed+1, ...; the IQM of their figures is printed.")
@click.option("--without", multiple=True, type=click.Choice(["build", "count", "latency", "test"]),
              help="A recorded step that costs no simulated time (what if it were cached or predicted).")
def replay_command(table_path: str, space_ref: Optional[str], sampler: Optional[str], pruner: str, trials: int,
                   workers: int, seed: int, repetitions: int, without: tuple[str, ...]) -> None:
    """Replay a sampler and pruner against a tabulated benchmark, in simulated time."""
    from ..results.table_analyses import iqm
    from ..search.pruners import parse_pruner
    from ..search.replay import Components, replay

    table, space = _table_and_space(table_path, space_ref)
    sampler = sampler or space.study["sampler"]
    components = Components(**{name: False for name in without})
    runs = [replay(table, space, sampler, parse_pruner(pruner, space.objectives, table.epochs), trials, workers,
                   seed + i, components) for i in range(repetitions)]
    hours = [r.seconds / 3600 for r in runs]
    found = [r.curve[-1][1] if r.curve else 0.0 for r in runs]
    to90 = [r.time_to(0.9) / 3600 for r in runs]
    console.print(f"{sampler} + {pruner}, {workers} worker(s), {trials} designs, {repetitions} replay(s): "
                  f"{iqm(hours):.2f} simulated h, {iqm(found):.3f} of the true front's hypervolume found; "
                  f"90 % after {iqm(to90):.2f} h (IQM; inf: not reached by the middle half).")
    if repetitions == 1:
        r = runs[0]
        console.print(f"{sum(t.duplicate_of is None for t in r.trials)} designs trained, "
                      f"{sum(t.pruned for t in r.trials)} stopped by the pruner, "
                      f"{sum(t.duplicate_of is not None for t in r.trials)} repeats drawn"
                      + (f", {r.missing} draws of designs the table lacks" if r.missing else "") + ".")
