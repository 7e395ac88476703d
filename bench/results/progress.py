"""Progress on the terminal. Sweeps: one line per trial, and on a terminal a live panel (trials
complete, the running trial's epoch, the front so far), then the front. Training (``bench train``,
``bench compare``): progress bars on a terminal, one line per epoch otherwise (a log file, CI,
nohup)."""
from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Callable, Iterator, Optional, Sequence

from rich.console import Console, Group
from rich.live import Live
from rich.measure import Measurement
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from .evidence import indistinguishable
from ..search.listeners import SweepListener
from ..search.pareto import front_records
from ..search.records import COMPLETE, StudyInfo, SweepResult, TrialRecord


def describe(record: TrialRecord, objectives: Sequence[str]) -> str:
    """One line for a finished trial: its sample and what became of it."""
    sample = ", ".join(f"{k}={v}" for k, v in record.sample.items())
    status = record.status
    if status == "skipped":
        return f"trial {record.number} skipped: {record.skipped}"
    if status == "failed":
        return f"trial {record.number} failed: {sample}: {record.fail_reason}"
    note = f" (same network as trial {record.duplicate_of})" if status == "duplicate" else ""
    if record.pruned:
        return f"trial {record.number}: {sample} -> pruned: {record.pruned['reason']}{note}"
    if not record.feasible:
        return f"trial {record.number}: {sample} -> {record.skipped}{note}"
    values = ", ".join(f"{name} {shown(record, name)}" for name in objectives)
    seeds = f" ({len(record.seeds)} seeds)" if len(record.seeds) > 1 and status == "trained" else ""
    return f"trial {record.number}: {sample} -> {values}{seeds}{note}"


def fmt(value: Optional[float]) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4f}"


def shown(record: TrialRecord, name: str) -> str:
    """A value, as ``mean ± std`` where it comes from several seeds."""
    figure = record.estimate(name)
    if figure is not None and figure.n > 1:
        return f"{fmt(figure.mean)} ± {fmt(figure.std)}"
    return fmt(record.value(name) if name in record.values else record.metrics.get(name))


def front_rows(records: Sequence[TrialRecord], objectives: dict[str, str],
               result: Optional[SweepResult] = None) -> tuple[list[str], list[list[str]]]:
    """The front of ``records``, by the first objective: the headers and each member's cells (trial,
    design, objectives, test Dice, and with a ``result`` P(front) and the paired verdict against
    the stock network)."""
    by_number = {r.number: r for r in records}
    best = [by_number[n] for n in front_records(records, objectives)]
    versus = ["vs stock (paired)"] if result is not None and result.stock is not None else []
    sure = ["P(front)"] if result is not None and result.front_probability else []
    first = next(iter(objectives))
    rows = []
    for r in sorted(best, key=lambda r: r.value(first)):
        verdict = []
        if versus:
            test = result.versus_stock.get(r.number)
            verdict = ["stock" if r.number == result.stock else test.short() if test else "-"]
        chance = [f"{result.front_probability.get(r.number, 0.0):.2f}"] if sure else []
        rows.append([str(r.number), r.label, *(shown(r, name) for name in objectives), shown(r, "test_dice"),
                     *chance, *verdict])
    return ["trial", "design", *objectives, "test Dice", *sure, *versus], rows


def front_table(records: Sequence[TrialRecord], objectives: dict[str, str], title: str,
                result: Optional[SweepResult] = None) -> Table:
    """The front of ``records`` as a rich table (:func:`front_rows`); no cell wraps or is cut."""
    headers, rows = front_rows(records, objectives, result)
    table = Table(title=title)
    for header in headers:
        table.add_column(header, no_wrap=True)
    for row in rows:
        table.add_row(*row)
    return table


def front_view(records: Sequence[TrialRecord], objectives: dict[str, str], title: str, console: Console,
               result: Optional[SweepResult] = None) -> Table | Group:
    """The front as a table where the console is wide enough for every cell whole; else (an 80-column
    terminal, a log file) one entry per member: its trial and whole design name on a line, its
    figures beneath, its verdict on a line of its own."""
    headers, rows = front_rows(records, objectives, result)
    entries = [(f"trial {row[0]}  {row[1]}", dict(zip(headers[2:], row[2:]))) for row in rows]
    return fitting_view(front_table(records, objectives, title, result), title, entries, console, "vs stock (paired)")


def fitting_view(table: Table, title: str, entries: Sequence[tuple[str, dict[str, str]]], console: Console,
                 verdict: str) -> Table | Group:
    """``table`` where the console is wide enough for every cell whole; else one entry per row of
    ``entries`` (name, figures by heading): the whole name on a line, the figures packed beneath
    without splitting one, and the ``verdict`` figure on a line of its own."""
    if Measurement.get(console, console.options.update_width(10_000), table).maximum <= console.width:
        return table
    lines = [Text(title, style="italic")]
    for name, cells in entries:
        lines.append(Text(name, style="bold"))
        figures = [f"{h} {v}" for h, v in cells.items() if h != verdict and v]
        lines += [Text("  " + line) for line in _packed(figures, " · ", console.width - 2)]
        if cells.get(verdict):
            said = f"  {verdict}: {cells[verdict]}"
            lines += [Text(said)] if len(said) <= console.width else [Text(f"  {verdict}:"),
                                                                       Text(f"    {cells[verdict]}")]
    return Group(*lines)


def _packed(chunks: Sequence[str], separator: str, width: int) -> list[str]:
    """``chunks`` joined by ``separator`` into lines of at most ``width`` characters, never split."""
    lines = [""]
    for chunk in chunks:
        joined = f"{lines[-1]}{separator}{chunk}" if lines[-1] else chunk
        if len(joined) <= width or not lines[-1]:
            lines[-1] = joined
        else:
            lines.append(chunk)
    return lines


class SweepProgress(SweepListener):
    """What ``bench run`` prints. ``quiet``: only the final front. ``prefix`` starts every line
    (a worker's number); ``header``: print the study line and the end (the coordinating process)."""

    def __init__(self, console: Optional[Console] = None, quiet: bool = False, prefix: str = "",
                 header: bool = True) -> None:
        self._console = console
        self.quiet, self.prefix, self.header = quiet, prefix, header
        self.info: Optional[StudyInfo] = None
        self.records: dict[int, TrialRecord] = {}
        self.live: Optional[Live] = None
        self.current = ""

    @property
    def console(self) -> Console:
        if self._console is None:  # made where it is used: a worker process makes its own
            self._console = Console()
        return self._console

    def for_worker(self, index: int) -> Optional["SweepProgress"]:
        return None if self.quiet else SweepProgress(prefix=f"[worker {index}] ", header=False)

    def study_started(self, info: StudyInfo, past: Sequence[TrialRecord]) -> None:
        self.info = info
        self.records = {r.number: r for r in past}
        if not self.header:
            return
        data = info.data
        self.console.print(
            f"study {info.study!r}: {sum(r.state not in ('RUNNING', 'WAITING') for r in past)} trials so far, "
            f"running until {info.trials} complete "
            f"({info.sampler}, data {data['source']} {info.data_at()}, split {data['split_hash'][:12]}; "
            f"{info.workers} worker(s))")
        if self.console.is_terminal and not self.quiet and info.workers == 1:
            self.live = Live(self._render(), console=self.console, refresh_per_second=4, transient=True)
            self.live.start()

    def epoch_ended(self, record: TrialRecord, epoch: dict) -> None:
        if self.live is not None:
            self.current = (f"trial {record.number}: epoch {epoch['epoch']}/{epoch['epochs']}, "
                            f"val Dice fg {epoch['val_dice']:.3f}")
            self.live.update(self._render())

    def noted(self, line: str) -> None:
        if self.quiet:
            return
        if self.live is not None:
            self.current = line
            self.live.update(self._render())
        else:
            self.console.print(self.prefix + line, soft_wrap=True, markup=False, highlight=False)

    def trial_ended(self, record: TrialRecord) -> None:
        self.records[record.number] = record
        if self.quiet:
            return
        line = self.prefix + describe(record, list(self.info.objectives) if self.info else [])
        if self.live is not None:
            self.current = ""
            self.live.console.print(line, markup=False, highlight=False)
            self.live.update(self._render())
        else:
            self.console.print(line, soft_wrap=True, markup=False, highlight=False)

    def study_ended(self, result: SweepResult) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None
        if result.status != "finished":  # interrupted or failed: the command's own line says it
            return
        info = result.info
        seeds = f"; means of {info.repeats} seeds ± std" if info.repeats > 1 else ""
        self.console.print(front_view(result.records, info.objectives,
                                      f"Pareto front of {info.study!r} ({len(result.front)} on the front; "
                                      f"{result.tally()}{seeds})", self.console, result))
        if result.exhausted:
            self.console.print(result.exhausted, highlight=False)
        if result.stock is None:
            self.console.print("no paired verdicts: the study did not train the stock network", highlight=False)
        same = indistinguishable(result)
        if same:
            self.console.print("front members the paired test on test Dice cannot tell apart: " + ", ".join(
                f"{c.reference} and {c.candidate} (p {c.p:.2g})" for c in same), highlight=False)
        if result.all_folds:
            folds = result.info.data["folds"]
            self.console.print(f"on all {folds} folds (test Dice fg, mean ± std over folds and seeds):", highlight=False)
            for number, figures in result.all_folds.items():
                test = result.all_folds_versus_stock.get(number)
                role = " (stock)" if number == result.stock else f"; against the stock: {test.short()}" if test else ""
                self.console.print(f"  trial {number} {result.record(number).label}: {figures.pooled().text()}{role}",
                                   highlight=False, soft_wrap=True)
        timed = result.front_latency
        if timed:
            self.console.print(
                f"front timed again, interleaved with {timed['reference']} ({timed['reference_ms']:.2f} ms): "
                + ", ".join(f"trial {n} {t['median_ms']:.2f} ms (x{t['ratio']:.2f})"
                            for n, t in timed["trials"].items()))
        where = f"; report {result.report_paths[0].rsplit('/', 1)[0]}/" if result.report_paths else ""
        tracking = f"; MLflow {info.tracking_uri} (experiment {info.study!r})" if info.tracking_uri else ""
        self.console.print(f"{result.status}: {result.seconds or 0:.0f} s; storage {info.storage}{tracking}{where}",
                           highlight=False)
        if "mlflow_runs_url" in result.links:
            ui = "" if info.tracking_uri.startswith("http") else " (start the UI with `bench ui`)"
            self.console.print(f"MLflow runs of this study: {result.links['mlflow_runs_url']}{ui}", highlight=False,
                               soft_wrap=True)

    def _render(self) -> Group:
        records = list(self.records.values())
        complete = sum(1 for r in records if r.state == COMPLETE)
        objectives = self.info.objectives if self.info else {}
        return Group(Text(f"{complete}/{self.info.trials if self.info else '?'} trials complete"),
                     Text(self.current), front_view(records, objectives, "best so far", self.console))


Report = Callable[[str, int, int, dict], None]  # bench.training.loop.Progress


@contextmanager
def training_progress(label: str, console: Optional[Console] = None) -> Iterator[Report]:
    """A progress callback for :func:`bench.training.loop.train_model`: rich bars on a terminal; off a
    terminal, one line per epoch (epoch, training loss, validation Dice, elapsed time)."""
    console = console or Console()
    if not console.is_terminal:
        started = time.perf_counter()

        def line(event: str, done: int, total: int, values: dict) -> None:
            if event == "epoch":
                console.print(f"{label}: epoch {done}/{total}, loss {values['train_loss']:.4f}, val Dice "
                              f"{values['val_dice']:.4f}, {time.perf_counter() - started:.0f} s",
                              highlight=False, soft_wrap=True)

        yield line
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True) as progress:
        epochs = progress.add_task(f"{label}: epoch", total=None)
        batches = progress.add_task("batch", total=None)

        def report(event: str, done: int, total: int, values: dict) -> None:
            if event == "batch":
                progress.update(batches, completed=done, total=total,
                                description=f"batch (loss {values['loss']:.3f})")
            else:
                progress.update(epochs, completed=done, total=total,
                                description=f"{label}: epoch (val Dice fg {values['val_dice']:.3f})")

        yield report
