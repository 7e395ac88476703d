"""Worker processes on this machine: ``bench run --workers N`` starts N children that share the
study (Optuna's storage coordinates them), each resolving its own device (worker i on
``cuda:(i mod G)`` with G GPUs) and torch threads, and waits for them; Ctrl-C or SIGTERM reaches
them too, and a child that does not stop is terminated."""
from __future__ import annotations

import multiprocessing
from typing import Callable, Optional, Sequence

from ..core import interrupts
from ..core.errors import BenchError
from ..search.listeners import Listeners, SweepListener
from .settings import SweepSettings


def run_workers(settings: SweepSettings, listeners: Listeners) -> None:
    """Run trials in ``settings.workers`` child processes on the study, and wait for them.

    Raises:
        BenchError: a worker failed (its error is printed by the worker itself).
        KeyboardInterrupt: Ctrl-C or SIGTERM, after the workers were stopped.
    """
    codes = run_processes(worker_main, [(settings, i, listeners.for_worker(i).listeners)
                                        for i in range(settings.workers)], "bench worker")
    if any(codes):
        raise BenchError(f"{sum(1 for c in codes if c)} of {settings.workers} workers failed (exit codes {codes}); "
                         "their errors are printed above")


def run_processes(target: Callable[..., None], arguments: Sequence[tuple], name: str) -> list[Optional[int]]:
    """``target(*args)`` in a fresh (spawned) process for each of ``arguments``; wait for all of
    them and return their exit codes. Ctrl-C or SIGTERM here stops them too (a child that does
    not stop within a minute is left to the system) and is raised.

    Raises:
        KeyboardInterrupt: Ctrl-C or SIGTERM, after the children were stopped.
    """
    context = multiprocessing.get_context("spawn")  # no forked torch or database state
    processes = [context.Process(target=target, name=f"{name} {i}", args=args) for i, args in enumerate(arguments)]
    for process in processes:
        process.start()
    try:
        for process in processes:
            while process.is_alive():
                process.join(0.5)
                interrupts.checkpoint()
    except KeyboardInterrupt:  # the workers got it too (one process group), or get SIGTERM now
        for process in processes:
            process.terminate()
        for process in processes:
            process.join(60)
        raise
    return [p.exitcode for p in processes]


def worker_main(settings: SweepSettings, index: int, listeners: Sequence[SweepListener]) -> None:
    """One worker process: trials only, as worker ``index`` of the sweep its parent coordinates."""
    from .sweep import Sweep

    try:
        Sweep(settings, worker_index=index, listeners=listeners).run()
    except KeyboardInterrupt:  # its trial is marked; the coordinating process says so
        raise SystemExit(130) from None
