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
# what runs a sweep: the run layer, Optuna's study, building, timing and training networks
ENGINE = ("bench.run", "bench.search.study", "bench.search.design", "bench.arch.config", "bench.arch.latency",
          "bench.arch.assemble", "bench.training.loop", "bench.training.seeds")


def imported_modules(path: Path) -> set[str]:
    """bench modules a source file imports, at any depth of the file, as absolute names."""
    module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    package = module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
            found.update([f"{base}.{node.module}"] if node.module else [f"{base}.{a.name}" for a in node.names])
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("bench."):
            found.add(node.module)
    return found


@pytest.mark.parametrize("module", ["results/report", "results/tracking", "search/records", "results/progress",
                                    "search/pareto", "search/listeners", "results/tables"])
def test_readers_of_records_do_not_import_the_engine(module):
    imported = imported_modules(PACKAGE / f"{module}.py")
    assert imported and not {m for m in imported if m.startswith(ENGINE)}


def test_importing_reports_and_tracking_loads_no_engine_module():
    code = ("import sys, bench.results.report, bench.results.tracking, bench.results.progress, bench.results.tables; "
            "print(sorted(m for m in sys.modules if m.startswith(%r)))" % (ENGINE,))
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"


def test_optuna_is_driven_from_the_search_wing_alone():
    users = {p.relative_to(PACKAGE).parts[0] for p in PACKAGE.rglob("*.py")
             if any(s in p.read_text() for s in ("import optuna", "from optuna"))}
    assert users == {"search"}


def test_bench_run_is_argument_parsing_plus_a_sweep():
    source = inspect.getsource(run.callback)
    body = source[source.index("def run("):]  # the options above are declarations
    lines = [line for line in body.splitlines() if line.strip()]
    assert len(lines) <= 40 and "Sweep(" in body, len(lines)
