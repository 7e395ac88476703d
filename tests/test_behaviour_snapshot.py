"""The behaviour snapshot (benchmarks/behaviour_snapshot.py) that holds a refactoring to the main
job's and compare's figures: its quick mode records, and a check finds exactly the one value a
tampered record changed (so it compares every computed figure and nothing measured)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_a_quick_snapshot_is_checked_value_by_value(tmp_path):
    record = tmp_path / "snapshot.json"
    done = subprocess.run([sys.executable, "-m", "benchmarks.behaviour_snapshot", "--record", str(record), "--quick"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    stored = json.loads(record.read_text())
    assert stored["quick"] and len(stored["trials"]) == 2 and stored["front"] and "table.csv" in stored["compare"]
    assert {"val_dice", "params", "test_dice"} <= set(stored["trials"][0])
    stored["trials"][0]["val_dice"] += 1e-9  # one computed value off by a hair
    stored["compare"]["table.csv"][0]["Latency (ms)"] += 5.0  # a measured one: never compared
    record.write_text(json.dumps(stored))
    done = subprocess.run([sys.executable, "-m", "benchmarks.behaviour_snapshot", "--check", str(record), "--quick"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 values differ:" in done.stdout and "]/val_dice: " in done.stdout.split("1 values differ:")[1]
