"""Tests that depend on the machine: skipped where it lacks what they need, failed instead where
``BENCH_REQUIRE_<NAME>=1`` says it must be there (``.ci/run`` sets each one wherever the machine
allows it), so that a CI run cannot pass by skipping them. The run's summary lists every skip
with its reason (conftest's ``pytest_terminal_summary``)."""
from __future__ import annotations

import os

import pytest

# NAME -> what to install or provide
REQUIREMENTS = {
    "POSTGRES": "apt-get install postgresql",
    "CHROMIUM": "apt-get install chromium",
    "LATEX": "apt-get install texlive-latex-recommended",
    "TMPFS": "run as root where mounting a tmpfs is allowed",
    "CUDA": "a CUDA GPU and a CUDA build of torch",
    "SHARED_DATA": "../shared/data beside the checkout",
    "CONSOLE_SCRIPT": "pip install '.[test]' (the bench console script)",
    "ONNXRUNTIME": "pip install '.[test]' (onnxruntime)",
}


def required(name: str) -> bool:
    """Whether ``BENCH_REQUIRE_<name>=1`` is set."""
    return os.environ.get(f"BENCH_REQUIRE_{name}") == "1"


def need(name: str, available: bool, what: str) -> None:
    """Skip the test (or fail it, where required) unless ``available``."""
    if available:
        return
    variable = f"BENCH_REQUIRE_{name}"
    if required(name):
        pytest.fail(f"{what} is not available, and {variable}=1 requires it ({REQUIREMENTS[name]})")
    pytest.skip(f"{what} is not available ({REQUIREMENTS[name]}; {variable}=1 fails instead of skipping)")
