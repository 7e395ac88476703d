"""bench ui starts the MLflow UI on 127.0.0.1 and says where."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_ui_serves_on_localhost_and_sigterm_to_it_alone_stops_every_process_it_started(tmp_path):
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
        server.send_signal(signal.SIGTERM)  # as `kill PID` does: the server's workers are not signalled
        output = server.communicate(timeout=30)[0]
        deadline = time.time() + 20
        while time.time() < deadline and group_alive(server.pid):
            time.sleep(0.5)
        assert not group_alive(server.pid), "a process of the MLflow server outlived it"
        with socket.socket() as s:
            # as a server binds (uvicorn does): this passes over the closed connections' TIME_WAIT
            # entries on the port (a plain bind failed on them in CI) and fails while any socket listens
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", port))
            s.listen()  # the port is free again
    finally:
        if group_alive(server.pid):
            os.killpg(server.pid, signal.SIGKILL)
        if server.poll() is None:
            server.kill()
            output = server.communicate()[0]
    assert f"http://127.0.0.1:{port}" in output


def group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_server_for_other_machines_keeps_dns_rebinding_protection_and_its_password_off_the_command_line():
    from bench.cli import mlflow_server_command

    store = "postgresql://bench:s3cret@db-host/mlflow"
    command, env, names = mlflow_server_command(store, "/srv/artifacts", "0.0.0.0", 5000, 2,
                                                allowed_hosts=["tracking.example.org"])
    assert "s3cret" not in " ".join(command) and env["MLFLOW_BACKEND_STORE_URI"] == store
    allowed = command[command.index("--allowed-hosts") + 1].split(",")
    assert "*" not in allowed and "tracking.example.org" in allowed and "tracking.example.org:*" in allowed
    assert "127.0.0.1" in allowed and "tracking.example.org" in names
    local, _, _ = mlflow_server_command(store, "/srv/artifacts", "127.0.0.1", 5000, 1)
    assert "--allowed-hosts" not in local  # on loopback MLflow's own defaults hold
