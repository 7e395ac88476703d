"""``bench ui`` and ``bench server``: the MLflow UI on a study's runs, and a tracking server
for many machines."""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import click

from ..core.errors import BenchError
from ..core.files import ensure_writable

from .common import PORT, cli, console


@cli.command()
@click.option("--tracking-uri", default=None, envvar="MLFLOW_TRACKING_URI",
              help="Backend store (default: sqlite:///runs/mlflow.db).")
@click.option("--port", type=PORT, default=5000, show_default=True)
@click.option("--experiment", default=None, help="Print only this study's (experiment's) address.")
def ui(tracking_uri: Optional[str], port: int, experiment: Optional[str]) -> None:
    """Start the MLflow UI on 127.0.0.1 over the local store (one worker, no background job
    execution), and print the address that opens each study's runs table. For a server that many
    workers log to, see `bench server`."""
    from ..core.defaults import DEFAULT_ARTIFACTS, DEFAULT_TRACKING
    from ..results.mlflow_store import experiment_urls

    store = tracking_uri or DEFAULT_TRACKING
    urls = experiment_urls(store, f"http://127.0.0.1:{port}", experiment)
    if experiment and not urls:
        raise BenchError(f"no experiment {experiment!r} in {store}; `bench ui` without --experiment lists them all.")
    for name, url in urls:
        console.print(f"runs of {name}: {url}", highlight=False, soft_wrap=True)
    _exec_mlflow_server(store, DEFAULT_ARTIFACTS, "127.0.0.1", port, 1, "MLflow UI", serve_artifacts=False)


@cli.command()
@click.option("--backend-store", required=True, metavar="URL",
              help="Database for runs and metrics: postgresql://USER:PASSWORD@HOST/DB, sqlite:///FILE, ...")
@click.option("--artifacts", required=True, metavar="PATH_OR_URI",
              help="Where the server keeps artifacts it receives (a folder, or s3://... etc.).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; 0.0.0.0 to accept other machines.")
@click.option("--port", type=PORT, default=5000, show_default=True)
@click.option("--workers", "server_workers", type=click.IntRange(1, 64), default=2, show_default=True,
              help="Server worker processes.")
@click.option("--allowed-host", "allowed_hosts", multiple=True, metavar="NAME",
              help="A host name clients use to reach the server (repeatable; with --host other than "
              "127.0.0.1). This machine's own names and local addresses are allowed anyway.")
def server(backend_store: str, artifacts: str, host: str, port: int, server_workers: int,
           allowed_hosts: Sequence[str]) -> None:
    """Start an MLflow tracking server for sweeps on many machines: a database backend store,
    artifacts served through the server (workers need no shared disk), no background jobs.

    Point workers at it with --tracking-uri http://HOST:PORT (or MLFLOW_TRACKING_URI).
    """
    from ..search.storage import check_storage

    if "://" not in artifacts:  # before the store: a refusal here leaves no database behind
        ensure_writable(Path(artifacts), "--artifacts", create=False)
    check_storage(backend_store, "--backend-store")  # a clear error now, not a traceback from the server
    if "://" not in artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
    _exec_mlflow_server(backend_store, artifacts, host, port, server_workers, "MLflow tracking server",
                        allowed_hosts=allowed_hosts)


def _exec_mlflow_server(store: str, artifacts: str, host: str, port: int, workers: int, what: str,
                        serve_artifacts: bool = True, allowed_hosts: Sequence[str] = ()) -> None:
    """Replace this process with ``mlflow server`` (which then receives Ctrl-C and SIGTERM)."""
    import os
    import sys

    from ..search.storage import redact

    command, env, names = mlflow_server_command(store, artifacts, host, port, workers, serve_artifacts, allowed_hosts)
    console.print(f"{what} for {redact(store)}, artifacts in {_artifact_uri(artifacts)}: http://{host}:{port}  "
                  "(Ctrl-C stops it)", highlight=False)
    if names:
        console.print(f"accepting requests addressed to {', '.join(names)} and to local and private addresses "
                      "(add names with --allowed-host)", highlight=False)
    sys.stdout.flush()
    os.execve(sys.executable, command, env)


def _artifact_uri(artifacts: str) -> str:
    return artifacts if "://" in artifacts else Path(artifacts).resolve().as_uri()


def mlflow_server_command(store: str, artifacts: str, host: str, port: int, workers: int,
                          serve_artifacts: bool = True,
                          allowed_hosts: Sequence[str] = ()) -> tuple[list[str], dict[str, str], list[str]]:
    """The ``mlflow server`` command line, its environment and the host names it accepts.

    Served artifacts go through the server; otherwise clients write ``artifacts`` directly. The
    store URL (it may hold a password) reaches MLflow through its environment variable, not the
    command line that ``ps`` shows. On an address other than loopback, MLflow's protection
    against DNS rebinding stays on: it accepts the Host names given (``allowed_hosts``), this
    machine's own names and its local and private addresses, never any name ("*")."""
    import os
    import socket
    import sys

    destination = _artifact_uri(artifacts)
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_BACKEND_STORE_URI": store}
    command = [sys.executable, "-m", "mlflow", "server",
               *(["--artifacts-destination", destination, "--serve-artifacts"] if serve_artifacts
                 else ["--default-artifact-root", destination, "--no-serve-artifacts"]),
               "--host", host, "--port", str(port), "--workers", str(workers)]
    names: list[str] = []
    if host not in ("127.0.0.1", "localhost"):  # MLflow 3 refuses other Host headers by default
        from mlflow.server.security_utils import get_default_allowed_hosts  # loopback and private addresses

        names = sorted({n for n in (*allowed_hosts, socket.gethostname(), socket.getfqdn(),
                                     *([host] if host != "0.0.0.0" else [])) if n and n != "*"})
        patterns = [p for name in names for p in (name, f"{name}:*")]
        command += ["--allowed-hosts", ",".join([*get_default_allowed_hosts(), *patterns])]
    return command, env, names
