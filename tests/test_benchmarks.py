"""Every benchmark in benchmarks/ keeps a quick mode (seconds, tiny inputs) that runs here, so a
benchmark that no longer runs fails CI instead of rotting unseen (`python -m benchmarks.overhead`
once failed with a TypeError for weeks). The benchmarks with quick-mode tests of their own
(behaviour snapshot, cheap trials, decode cache, signal stress, verdict calibration, replay
against live) are checked where their figures are."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = {path.stem for path in (ROOT / "benchmarks").glob("*.py")} - {"__init__", "common", "throughput_one"}
QUICK_HERE = {  # benchmark -> what its quick record must hold
    "backends": lambda r: {row["backend"] for row in r["rows"]} >= {"eager", "channels_last"},
    "deploy_speedup": lambda r: all(row["deploy_ms"] > 0 for row in r["rows"]),
    "stability": lambda r: len(r["rows"]) == 2 and r["coefficient_of_variation_of_medians"] >= 0,
    "throughput": lambda r: {row["format"] for row in r["rows"]} >= {"eager"},
    "training_speed": lambda r: any(row.get("speed_vs_fp32") == 1.0 for row in r["rows"]),
    "search_efficiency": lambda r: {row["sampler"] for row in r["rows"]} == {"random", "nsga2"},
}
TESTED_ELSEWHERE = {"behaviour_snapshot", "default_vs_random", "latency_predictor", "overhead", "decode_cache",
                    "signal_stress", "verdict_calibration", "replay_vs_live"}


def test_every_benchmark_has_a_quick_mode_and_a_test_that_runs_it():
    assert BENCHMARKS == set(QUICK_HERE) | {"data_memory"} | TESTED_ELSEWHERE
    for name in BENCHMARKS:
        source = (ROOT / "benchmarks" / f"{name}.py").read_text()
        assert '"--quick"' in source or "quick_mode(p," in source, name


@pytest.mark.parametrize("name", sorted(QUICK_HERE))
def test_the_quick_mode_runs_and_reports(name, tmp_path):
    done = subprocess.run([sys.executable, "-m", f"benchmarks.{name}", "--quick", "--out", str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    record = json.loads((tmp_path / f"{name}_quick.json").read_text())
    assert record["command"].endswith("--quick --out " + str(tmp_path)) and record["commit"]
    assert "error" not in json.dumps(record["rows"]), record["rows"]
    assert QUICK_HERE[name](record), record


def test_the_data_memory_quick_mode_reports_the_peak(tmp_path):
    done = subprocess.run([sys.executable, "-m", "benchmarks.data_memory", "--quick"], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "training steps of tinyunet" in done.stdout and " MB" in done.stdout
