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
    assert BENCHMARKS == set(QUICK_HERE) | {"data_memory", "seed_networks"} | TESTED_ELSEWHERE
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


@pytest.mark.slow
def test_the_seed_networks_quick_mode_writes_the_table_beside_the_papers_claims(tmp_path):
    done = subprocess.run([sys.executable, "-m", "benchmarks.seed_networks", "--quick", "--out", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    report = tmp_path / "seed_networks_quick"
    text = (report / "README.md").read_text()
    assert text.startswith("# The seed networks' Table 1") and "`python -m benchmarks.seed_networks --quick" in text
    assert "`bench compare tinyunet ulite --data synthetic --size 32 --epochs 1 --repeats 2`" in text
    record = json.loads((report / "synthetic" / "comparison.json").read_text())
    dice = 100 * record["networks"]["tinyunet"]["dice_mean"]["mean"]
    # the claims row: TinyU-Net's mDice 92.18 on ISIC 2018, bench's on this data, the gap between them
    row = next(line for line in text.splitlines() if line.startswith("| tinyunet") and "| mDice" in line)
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[4] == "92.18" and float(cells[5]) == pytest.approx(dice, abs=0.01)
    assert float(cells[7]) == pytest.approx(dice - 92.18, abs=0.02)
    assert "other data (ISIC 2018 at 256 px); 32 px, not 256; 1 epochs, not 300" in row
    assert {"table.csv", "table.tex", "table_2col.tex", "table_full.tex", "comparison.json"} <= \
        {p.name for p in (report / "synthetic").iterdir()}
