"""Layers point one way: reports and tracking receive records; they do not import the sweep
engine, re-resolve configs or time anything; the CLI's `bench run` only parses arguments."""
from __future__ import annotations

import ast
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

import bench
from bench.cli import run

PACKAGE = Path(bench.__file__).parent
ENGINE = {"sweep", "study", "search", "config", "latency", "assemble", "design", "train"}


def imported_modules(path: Path) -> set[str]:
    """bench modules a source file imports, at any depth of the file (``from .x import y`` -> x)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and node.level == 1:
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("bench."):
            found.add(node.module.split(".")[1])
    return found


@pytest.mark.parametrize("module", ["report", "tracking", "records", "progress", "pareto", "listeners"])
def test_readers_of_records_do_not_import_the_engine(module):
    assert not imported_modules(PACKAGE / f"{module}.py") & ENGINE


def test_importing_reports_and_tracking_loads_no_engine_module():
    code = ("import sys, bench.results.report, bench.results.tracking, bench.results.progress; "
            "print(sorted(m for m in sys.modules if m.split('.')[-1] in %r and m.startswith('bench.')))" % (ENGINE,))
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"


def test_optuna_is_driven_from_study_py_alone():
    users = {p.stem for p in PACKAGE.rglob("*.py") if any(s in p.read_text() for s in ("import optuna", "from optuna"))}
    assert users <= {"study", "storage"}


def test_bench_run_is_argument_parsing_plus_a_sweep():
    source = inspect.getsource(run.callback)
    body = source[source.index("def run("):]  # the options above are declarations
    lines = [line for line in body.splitlines() if line.strip()]
    assert len(lines) <= 40 and "Sweep(" in body, len(lines)
