"""Ctrl-C and SIGTERM at every moment of a sweep: ``bench run`` on a small two-network space,
interrupted after delays spread evenly over 1.1 times an uninterrupted run's wall time (so before
the study exists, while sampling, while a trial's MLflow run is created, mid-epoch, while the
report is written), SIGINT and SIGTERM alternating, and a few more sent 0 to 0.15 s after the
command's last line, while it exits. Two runs go at a time.

Each interrupted run must exit with status 130 (not die by a signal; a signal sent as the command
exits may find it past its last instruction, and then its exit 0 stands), leave no MLflow run and no
Optuna trial RUNNING, and close the study's parent run KILLED (``bench.status`` interrupted) unless the study had not been
created yet (no parent run) or had already been closed FINISHED before the signal came. Every
child starts with the default disposition of both signals, whatever this process inherited.

``--quick`` runs 3 signals and 1 at the exit (the test suite runs it)."""
from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Optional

from .common import parser, write

EXIT_LINE = "MLflow runs of this study"  # the command's last line
SPACE = """\
architecture: tinyunet
vary: {encoder.block.N: {choices: [2, 4]}, width_multiplier: {choices: [0.25]}}
objectives: {val_dice: maximize, params: minimize}
recipe: {name: default, epochs: %d, batch: 8}
data: {source: synthetic, size: 32, count: 24}
study: {sampler: random, trials: 2, seed: 0}
"""


def default_signals() -> None:
    """In the child, before exec: SIGINT and SIGTERM as a terminal would deliver them."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def start(folder: Path, epochs: int) -> subprocess.Popen:
    (folder / "space.yaml").write_text(textwrap.dedent(SPACE % epochs))
    env = {k: v for k, v in os.environ.items() if k not in ("BENCH_STORAGE", "MLFLOW_TRACKING_URI")}
    return subprocess.Popen([sys.executable, "-m", "bench", "run", "--space", "space.yaml", "--study", "stress",
                             "--quiet"], cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, preexec_fn=default_signals)


def rows_of(database: Path, query: str) -> list[tuple]:
    if not database.exists():
        return []
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
        try:
            return connection.execute(query).fetchall()
        except sqlite3.OperationalError:  # the schema is not there yet
            return []


def outcome(folder: Path) -> dict[str, Any]:
    """What the stores say after the process ended."""
    runs = folder / "runs"
    mlflow = rows_of(runs / "mlflow.db", "SELECT r.status, "
                     "(SELECT value FROM tags t WHERE t.run_uuid = r.run_uuid AND t.key = 'bench.role'), "
                     "(SELECT value FROM tags t WHERE t.run_uuid = r.run_uuid AND t.key = 'bench.status') FROM runs r")
    trials = [state for (state,) in rows_of(runs / "optuna.db", "SELECT state FROM trials")]
    parent = [(status, tag) for status, role, tag in mlflow if role == "study"]
    return {"parent": parent[0][0] if parent else "none", "parent_tag": parent[0][1] if parent else "",
            "runs_running": sum(status == "RUNNING" for status, _, _ in mlflow),
            "trials": ",".join(trials), "trials_running": trials.count("RUNNING"),
            "report": (folder / "reports" / "stress" / "report.md").exists()}


def interrupt(index: int, delay: float, signum: int, after: Optional[str], epochs: int) -> dict[str, Any]:
    """One run, signalled ``delay`` seconds after its start, or after the line holding ``after``."""
    folder = Path(tempfile.mkdtemp(prefix=f"bench-stress-{index}-"))
    process = start(folder, epochs)
    head = ""
    if after is not None:
        for line in process.stdout:
            head += line
            if after in line:
                break
    time.sleep(delay)
    sent = process.poll() is None
    if sent:
        process.send_signal(signum)
    started = time.perf_counter()
    output, _ = process.communicate(timeout=600)
    output = head + output
    row = {"signal": signal.Signals(signum).name, "moment": f"{delay:.2f} s after its last line" if after else
           f"{delay:.2f} s", "delay_s": round(delay, 2), "sent": sent,
           "exit": process.returncode, "after_s": round(time.perf_counter() - started, 2), **outcome(folder)}
    row["handled"] = handled(row)
    if not row["handled"]:
        row["output_tail"] = output[-1500:]
    return row


def handled(row: dict[str, Any]) -> bool:
    """Exit 130, nothing RUNNING, the parent run KILLED/interrupted (or absent, or closed before).
    A signal sent as the command exits may find it past its last instruction (the kernel tearing
    the process down takes milliseconds, during which it still counts as running): then the
    finished command's exit 0 stands, never a death by the signal."""
    if not row["sent"]:
        return row["exit"] == 0
    if "after" in row["moment"] and row["exit"] == 0:
        return (row["parent"] == "FINISHED" and row["report"] and row["runs_running"] == 0
                and row["trials_running"] == 0)
    closed = row["parent"] == "KILLED" and row["parent_tag"] == "interrupted"
    before_study = row["parent"] == "none"
    after_end = row["parent"] == "FINISHED" and row["parent_tag"] == "finished" and row["report"]
    return (row["exit"] == 130 and row["runs_running"] == 0 and row["trials_running"] == 0
            and (closed or before_study or after_end))


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--signals", type=int, default=50, help="interrupted runs at spread moments (default 50)")
    p.add_argument("--exit-probes", type=int, default=6,
                   help="runs signalled 0 to 0.15 s after their last line, as they exit (default 6)")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--parallel", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="3 signals and 1 at the exit")
    args = p.parse_args()
    count = 3 if args.quick else args.signals
    started = time.perf_counter()
    whole = start(Path(tempfile.mkdtemp(prefix="bench-stress-whole-")), args.epochs)
    whole.communicate(timeout=600)
    alone = time.perf_counter() - started
    span = alone * 1.1  # two at a time run a little slower
    moments = [(i, span * (i + 0.5) / count, signal.SIGINT if i % 2 == 0 else signal.SIGTERM, None)
               for i in range(count)]
    exits = 1 if args.quick else args.exit_probes  # after the command's last line: while it exits
    moments += [(count + k, 0.15 * k / max(1, exits - 1), signal.SIGINT if k % 2 == 0 else signal.SIGTERM, EXIT_LINE)
                for k in range(exits)]
    random.Random(args.seed).shuffle(moments)  # neighbours in time do not share a slot
    with ThreadPoolExecutor(args.parallel) as pool:
        rows = list(pool.map(lambda m: interrupt(*m, args.epochs), moments))
    rows.sort(key=lambda r: ("after" in r["moment"], r["delay_s"]))
    failed = [r for r in rows if not r["handled"]]
    for row in failed:
        print(f"NOT HANDLED at {row['delay_s']} s ({row['signal']}): {row}\n{row.get('output_tail', '')}",
              file=sys.stderr)
    sent = sum(r["sent"] for r in rows)
    write("signal_stress", [{k: v for k, v in r.items() if k != "output_tail"} for r in rows], {
        "signals_sent": sent, "handled": sum(r["handled"] for r in rows if r["sent"]),
        "uninterrupted_run_s": round(alone, 2), "epochs": args.epochs,
        "before_study": sum(r["parent"] == "none" for r in rows if r["sent"]),
        "closed_finished_before_signal": sum(r["parent"] == "FINISHED" for r in rows if r["sent"]),
        "exit_probes": exits,
        "exit_probes_130": sum(r["exit"] == 130 for r in rows if "after" in r["moment"] and r["sent"]),
        "exit_code": whole.returncode}, args.out)
    sys.exit(1 if failed or whole.returncode != 0 else 0)


if __name__ == "__main__":
    main()
