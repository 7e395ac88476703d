"""The replays a table report is missing, replayed in this process or in worker processes.

A report wants 30 replays per strategy and GP's take minutes each, hours in all on one core:
with ``processes`` > 1 (``bench tabulate report --jobs N``) that many spawned workers replay side
by side, each with its share of the cores as torch threads. Only this process writes the cache
(:class:`bench.results.replay_cache.ReplayCache`), a line as each replay ends, so an interrupted
report keeps every replay that finished. Ctrl-C and SIGTERM reach this process alone (the
workers ignore SIGINT) and it stops the workers.
"""
from __future__ import annotations

import multiprocessing
import os
import signal
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

from ..core import interrupts
from ..search.benchmark_table import BenchmarkTable
from ..search.replay import ReplayCurve
from ..search.space import SearchSpace
from .replay_cache import ReplayCache
from .table_analyses import Strategy, replay_strategy


@dataclass(frozen=True)
class ReplayJob:
    """One repetition of a strategy: its seed and its simulated time."""

    strategy: Strategy
    seed: int
    horizon: float


def run_replays(table: BenchmarkTable, space: SearchSpace, jobs: Sequence[ReplayJob], designs: int,
                cache: ReplayCache, processes: int = 1,
                replay: Callable[..., object] = replay_strategy) -> Iterator[tuple[ReplayJob, ReplayCurve]]:
    """Replay ``jobs`` (``designs`` trials each) and yield each with its curve as the cache keeps
    it, once it is in the cache: in the order given in this process, in the order they end with
    ``processes`` workers. ``replay`` is :func:`bench.results.table_analyses.replay_strategy` or a
    stand-in with its signature (workers always use the real one)."""
    if processes <= 1 or len(jobs) <= 1:
        for job in jobs:
            curve = replay(table, space, job.strategy, designs, job.seed, max_seconds=job.horizon).summary()
            yield job, cache.add(job.strategy, job.seed, curve)
        return
    processes = min(processes, len(jobs))
    threads = max(1, (os.cpu_count() or 1) // processes)
    pool = multiprocessing.get_context("spawn").Pool(processes, _start_worker, (table, space, threads))
    try:
        for job, curve in pool.imap_unordered(_replay_one, [(job, designs) for job in jobs]):
            yield job, cache.add(job.strategy, job.seed, curve)
            interrupts.checkpoint()
        pool.close()
    finally:
        pool.terminate()  # after close(): the workers are done; otherwise (Ctrl-C, an error) they stop now
        pool.join()


_worker: dict = {}


def _start_worker(table: BenchmarkTable, space: SearchSpace, threads: int) -> None:
    import torch  # GP's sampler fits with torch: one share of the cores per worker, not every core each

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent hears Ctrl-C and stops the pool
    torch.set_num_threads(threads)
    _worker.update(table=table, space=space)


def _replay_one(task: tuple[ReplayJob, int]) -> tuple[ReplayJob, ReplayCurve]:
    job, designs = task
    replayed = replay_strategy(_worker["table"], _worker["space"], job.strategy, designs, job.seed,
                               max_seconds=job.horizon)
    return job, replayed.summary()
