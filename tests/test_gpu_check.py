"""benchmarks/gpu_check.sh, the one command for whoever has a GPU, must not rot where nobody has
one: its quick mode runs here on the CPU, every step."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_gpu_check_runs_every_step_in_quick_mode_on_the_cpu(tmp_path):
    env = {**os.environ, "OUT": str(tmp_path), "BENCH_GPU_CHECK_DEVICE": "cpu", "PYTHON": sys.executable}
    done = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--quick"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=480)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "gpu_check: done" in done.stdout
    speed = json.loads((tmp_path / "training_speed.json").read_text())
    assert {row["option"] for row in speed["rows"]} >= {"fp32 eager", "bf16"}
    latency = json.loads((tmp_path / "latency_tinyunet_64.json").read_text())["latency"][0]
    assert latency["median_ms"] > 0 and latency["protocol"]["device"] == "cpu"
