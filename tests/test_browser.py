"""The MLflow UI as a person sees it: a quick sweep, `bench ui`, and the address `bench ui` prints
loaded in headless Chromium (Debian's package): the runs table with the trials named by their
designs and the figure columns of bench's saved view shown, not MLflow's GenAI overview. A screenshot is kept in the test's temp folder."""
from __future__ import annotations

import html
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request


from bench.search.study import load_study
from bench.results.loading import load_result
from needs import need

CHROMIUM = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--window-size=1600,900", "--virtual-time-budget=30000"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def browser() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    need("CHROMIUM", found is not None, "Chromium")
    return found


def visible_text(page: str) -> str:
    for tag in ("script", "style"):
        page = re.sub(rf"<{tag}.*?</{tag}>", " ", page, flags=re.S)
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))


def test_bench_ui_opens_the_study_on_its_runs_table_with_design_named_trials(tmp_path):
    chromium = browser()
    env = {k: v for k, v in os.environ.items() if k not in ("BENCH_STORAGE", "MLFLOW_TRACKING_URI")}
    sweep = subprocess.run([sys.executable, "-m", "bench", "run", "--space", "quick", "--trials", "3", "--quiet"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert sweep.returncode == 0, sweep.stdout + sweep.stderr
    labels = [f"trial {r.number} · {r.label}" for r in load_result(
        load_study("quick", f"sqlite:///{tmp_path}/runs/optuna.db")).records if r.state == "COMPLETE"]
    port = free_port()
    ui = subprocess.Popen([sys.executable, "-m", "bench", "ui", "--port", str(port)], cwd=tmp_path, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        url, deadline = None, time.time() + 90
        while url is None:
            line = ui.stdout.readline()
            assert line and time.time() < deadline, "bench ui printed no address"
            if line.startswith("runs of quick: "):
                url = line.split(": ", 1)[1].strip()
        while True:
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5).status == 200:
                    break
            except OSError:
                assert ui.poll() is None and time.time() < deadline, "the MLflow UI did not start"
                time.sleep(1)
        common = [chromium, *CHROMIUM, f"--user-data-dir={tmp_path / 'profile'}"]
        dom = subprocess.run([*common, "--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
        subprocess.run([*common, f"--screenshot={tmp_path / 'runs.png'}", url], capture_output=True, timeout=120)
    finally:
        os.killpg(ui.pid, signal.SIGTERM)
        ui.wait(timeout=30)
    (tmp_path / "runs.html").write_text(dom)
    text = visible_text(dom)
    assert "Run Name" in text and "study quick" in text  # the runs table
    headers = {visible_text(cell).strip() for cell in re.findall(r'<[^>]*role="columnheader".*?</div>\s*</div>', dom,
                                                                    flags=re.S)}
    for column in ("val_dice_best", "n_params", "p_on_front"):  # the saved view's figure columns, unpicked
        assert any(column in header for header in headers), (column, headers)
    [header] = [tag for tag in re.findall(r"<div [^>]*>", dom)
                if 'role="columnheader"' in tag and 'col-id="attributes.`Run Name`"' in tag]
    assert re.search(r"width: 380px", header), header  # the saved view's width: MLflow's 190 px cut the designs
    figures = [tag for tag in re.findall(r"<div [^>]*>", dom) if 'role="columnheader"' in tag and 'col-id="metrics.' in tag]
    leftmost = min(figures, key=lambda tag: int(re.search(r"left: (\d+)px", tag).group(1)))  # ag-grid places by style
    assert "val_dice_best" in leftmost, figures  # the view's first figure first, not MLflow's alphabetical order
    for label in labels:  # every trial, by its design, without unfolding the study's run
        assert label in text, (label, text[:2000])
    assert (tmp_path / "runs.png").stat().st_size > 10_000
