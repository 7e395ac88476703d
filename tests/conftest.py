"""Shared helpers: run the CLI in-process and write small architecture files."""
from __future__ import annotations

import os

if os.environ.get("PYTEST_XDIST_WORKER"):
    # pytest -n: each worker (and each command it starts) on one torch thread, set before torch
    # loads; two workers with two OpenMP threads each on two cores ran 2.6x slower, spinning
    # against each other (tests/test_training.py, test_native.py, test_reparam.py: 134 s vs 51 s)
    os.environ["OMP_NUM_THREADS"] = "1"

import textwrap
from pathlib import Path
from typing import Callable, Iterator

import pytest
from click.testing import CliRunner, Result

from bench.cli import cli


@pytest.fixture(autouse=True)
def _in_its_own_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test runs in its own empty folder, so that default outputs (``runs/``, ``reports/``,
    weights and the resume checkpoints of interrupted training) never land in the checkout, nor
    carry over from one test to the next; the same for the machine's cache (counted costs)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path / ".bench-cache"))


@pytest.fixture
def run_cli() -> Callable[..., Result]:
    def run(*args: str) -> Result:
        return CliRunner().invoke(cli, list(args), catch_exceptions=False)

    return run


@pytest.fixture
def write_yaml(tmp_path: Path) -> Callable[[str, str], Path]:
    def write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip())
        return path

    return write


@pytest.fixture
def default_signals() -> Iterator[None]:
    """Ctrl-C and SIGTERM in this process as a terminal delivers them, for tests that send them
    to themselves (see signalling.py)."""
    from signalling import python_default_handlers

    with python_default_handlers():
        yield


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """End every run with what was skipped and why (or that nothing was): a skip that should not
    happen here is set to fail by its BENCH_REQUIRE_* variable (tests/needs.py)."""
    skipped = terminalreporter.stats.get("skipped", [])
    terminalreporter.section("skipped tests")
    if not skipped:
        terminalreporter.write_line("none")
    for report in skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        terminalreporter.write_line(f"{report.nodeid}: {reason.removeprefix('Skipped: ')}")
