"""bench ui starts the MLflow UI on 127.0.0.1 and says where."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ui_serves_on_localhost(tmp_path):
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "bench", "ui", "--port", str(port)], cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              start_new_session=True)
    try:
        status, deadline = None, time.time() + 90
        while time.time() < deadline and status is None:
            time.sleep(1)
            try:
                status = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).status
            except OSError:
                assert server.poll() is None, server.stdout.read()
        assert status == 200
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            output = server.communicate(timeout=30)[0]
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            output = server.communicate()[0]
    assert f"http://127.0.0.1:{port}" in output
