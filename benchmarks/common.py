"""What every benchmark shares: command-line arguments and writing results as JSON + Markdown."""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

from bench.arch.latency import environment

OUT = Path("reports/benchmarks")


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--out", type=Path, default=OUT, help=f"results folder (default {OUT})")
    return p


def quick_mode(p: argparse.ArgumentParser, what: str) -> None:
    """``--quick``: seconds on tiny inputs (``what``), the mode a test runs so that no benchmark rots
    unseen; its results go to ``NAME_quick``, never over the full run's."""
    p.add_argument("--quick", action="store_true", help=f"seconds, tiny inputs: {what}")


def named(name: str, args: argparse.Namespace) -> str:
    """The results' name: ``NAME``, or ``NAME_quick`` for a quick run."""
    return name + ("_quick" if getattr(args, "quick", False) else "")


def commit() -> str:
    """The commit the benchmark ran at, ``+changes`` when the working tree differs from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!reports"],
                               capture_output=True, text=True, check=True).stdout.strip()  # results are not code
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return head + (" +changes" if dirty else "")


def write(name: str, rows: list[dict[str, Any]], meta: dict[str, Any], out: Path = OUT) -> Path:
    """``out/NAME.json`` (rows, meta, environment, command, commit) and ``out/NAME.md`` (the table)."""
    out.mkdir(parents=True, exist_ok=True)
    record = {"benchmark": name, "command": " ".join(["python -m", f"benchmarks.{name}", *sys.argv[1:]]),
              "commit": commit(), "finished": time.strftime("%Y-%m-%d %H:%M:%S"), "environment": environment(),
              **meta, "rows": rows}
    (out / f"{name}.json").write_text(json.dumps(record, indent=1, default=str) + "\n")
    lines = [f"# {name}", "", f"`{record['command']}` at commit {record['commit']}, {record['finished']}; "
             f"torch {record['environment']['torch']}, {record['environment']['cpu']}", ""]
    lines += [f"- {k}: {v}" for k, v in meta.items()] + [""]
    lines.append(pd.DataFrame(rows).to_markdown(index=False, floatfmt=".4g"))
    (out / f"{name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return out / f"{name}.md"
