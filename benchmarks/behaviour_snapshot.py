"""Behaviour that a refactoring must not change: the main job's trials and front, and the output
of ``bench compare``, recorded to the last digit and checked against a stored record.

``--record FILE`` runs both commands in a scratch folder and writes what they produced;
``--check FILE`` runs them again and lists every value that differs (exit 1 when one does).
What is measured rather than computed (latency, wall times, and what is derived from them:
front membership of the latency objective, P(front), the Holm adjustment over the front and the
verdict it gives) is kept in the record but not compared; the training figures over the seeds,
parameters, MACs, raw paired p-values and compare's whole table are. NSGA-II selects on the
measured latency too, so after its first generation two runs may draw other designs: trials are
matched by design (config hash), and every design trained in both runs must agree to the digit.

``python -m benchmarks.behaviour_snapshot --record reports/behaviour_snapshot.json``
``python -m benchmarks.behaviour_snapshot --check reports/behaviour_snapshot.json``
``--quick``: the quick space (2 trials, 1 repeat) and a 1-epoch compare at 32 px, for the test suite.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from .common import commit

MEASURED = re.compile(r"latency|seconds|_s$|time|duration|p_on_front|on_front|started|finished|speed|images_per|"
                      r"mlflow_run_id|p_holm|^vs_stock$", re.IGNORECASE)
# Which trial a design gets, and which designs are drawn at all after NSGA-II's first generation,
# follow the measured latency (an objective it selects on); so trials are matched by design.
ORDER = ("trial", "duplicate_of")
FRONT_ONLY = "vs_stock"  # a trial's test against the stock network exists while it is on the front: compared there


def main_job(folder: Path, quick: bool) -> list[str]:
    space = ["--space", "quick", "--trials", "2", "--repeats", "1"] if quick else ["--space", "cmrf_swap"]
    return [sys.executable, "-m", "bench", "run", *space, "--quiet"]


def compare_job(quick: bool) -> list[str]:
    quick_args = ["--size", "32", "--repeats", "1", "--epochs", "1", "--max-seconds", "0.2"] if quick else \
        ["--repeats", "2", "--epochs", "2"]
    return [sys.executable, "-m", "bench", "compare", "tinyunet", "ulite", *quick_args, "--out", "compared",
            "--no-tracking"]


def _run(command: list[str], cwd: Path) -> str:
    env = {**os.environ, "BENCH_STORAGE": "", "MLFLOW_TRACKING_URI": ""}
    env = {k: v for k, v in env.items() if v != ""}
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout


def _rows(csv: Path) -> list[dict[str, Any]]:
    frame = pd.read_csv(csv)
    return json.loads(frame.to_json(orient="records", double_precision=15))


def snapshot(quick: bool) -> dict[str, Any]:
    """Run both commands in a scratch folder; what they wrote, as plain JSON values."""
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        _run(main_job(folder, quick), folder)
        study = next((folder / "reports").iterdir())
        record: dict[str, Any] = {"trials": _rows(study / "results.csv"), "front": _rows(study / "pareto.csv")}
        _run(compare_job(quick), folder)
        compared = folder / "compared"
        record["compare"] = {path.name: _rows(path) for path in sorted(compared.glob("*.csv"))}
    return record


def by_design(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The rows of designs measured or trained here (not copies of another trial), by config hash,
    without the fields that depend on the order of trials."""
    return {row["config_hash"]: {k: v for k, v in row.items() if k not in ORDER and not k.startswith(FRONT_ONLY)}
            for row in rows if isinstance(row.get("config_hash"), str) and row.get("duplicate_of") is None}


def differences(stored: Any, now: Any, where: str = "") -> list[str]:
    """Every computed value that differs between two snapshots, by its path; measured ones are skipped."""
    if isinstance(stored, dict) and isinstance(now, dict):
        found = []
        for key in sorted(set(stored) | set(now)):
            if MEASURED.search(str(key)):
                continue
            if key not in stored or key not in now:
                found.append(f"{where}/{key}: only in the {'record' if key in stored else 'new run'}")
            else:
                found += differences(stored[key], now[key], f"{where}/{key}")
        return found
    if isinstance(stored, list) and isinstance(now, list):
        if len(stored) != len(now):
            return [f"{where}: {len(stored)} rows recorded, {len(now)} now"]
        return [d for i, (a, b) in enumerate(zip(stored, now)) for d in differences(a, b, f"{where}[{i}]")]
    both_nan = isinstance(stored, float) and isinstance(now, float) and math.isnan(stored) and math.isnan(now)
    return [] if stored == now or both_nan else [f"{where}: {stored!r} recorded, {now!r} now"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--record", type=Path, help="write the snapshot here")
    what.add_argument("--check", type=Path, help="compare with the snapshot stored here")
    p.add_argument("--save", type=Path, help="with --check: also write the new snapshot here")
    p.add_argument("--quick", action="store_true", help="the quick space and a 1-epoch compare at 32 px")
    args = p.parse_args()
    now = {"command": " ".join(["python -m benchmarks.behaviour_snapshot", *sys.argv[1:]]), "commit": commit(),
           "quick": args.quick, **snapshot(args.quick)}
    if args.record:
        args.record.parent.mkdir(parents=True, exist_ok=True)
        args.record.write_text(json.dumps(now, indent=1) + "\n")
        print(f"recorded {len(now['trials'])} trials, {len(now['front'])} on the front, "
              f"{len(now['compare'])} compare tables at {now['commit']} into {args.record}")
        return
    if args.save:
        args.save.write_text(json.dumps(now, indent=1) + "\n")
    stored = json.loads(args.check.read_text())
    if stored.get("quick") != args.quick:
        raise SystemExit(f"{args.check} was recorded with quick={stored.get('quick')}; run with the same mode")
    found = differences(stored["compare"], now["compare"], "/compare")
    designs_then, designs_now = by_design(stored["trials"]), by_design(now["trials"])
    shared = sorted(set(designs_then) & set(designs_now))
    found += differences([designs_then[h] for h in shared], [designs_now[h] for h in shared], "/designs")
    fronts = by_design(stored["front"]), by_design(now["front"])
    on_both = sorted(set(fronts[0]) & set(fronts[1]))
    found += differences([fronts[0][h] for h in on_both], [fronts[1][h] for h in on_both], "/front")
    print(f"recorded at {stored['commit']}, checked at {now['commit']}")
    print(f"{len(shared)} designs evaluated in both runs compared ({len(designs_then)} recorded, {len(designs_now)} "
          f"now); {len(on_both)} front members in both compared ({len(fronts[0])} recorded, {len(fronts[1])} now)")
    if found:
        print(f"{len(found)} values differ:", *found[:60], sep="\n  ")
        raise SystemExit(1)
    print(f"identical: {len(shared)} designs, {len(on_both)} front members, {len(now['compare'])} compare tables "
          "(measured values not compared)")


if __name__ == "__main__":
    main()
