"""CPU latency of a forward pass: the deploy form, eval and inference mode, fixed threads,
warm-up, then repeated timed runs; median and interquartile range.

Wall-clock figures on a shared machine are noisy; compare networks by ratios measured in one
session.
"""
from __future__ import annotations

import copy
import platform
import statistics
import time
from dataclasses import asdict, dataclass
from typing import Callable

import torch
from torch import nn

from .deploy import deploy


@dataclass
class Latency:
    """Median and IQR of ``n`` timed forward passes, in milliseconds, with the protocol."""

    median_ms: float
    iqr_ms: float
    n: int
    threads: int
    batch: int
    input_size: int
    warmup: int
    torch: str
    cpu: str

    def to_dict(self) -> dict:
        return asdict(self)


def summarize(samples_ms: list[float]) -> tuple[float, float]:
    """(median, interquartile range) of ``samples_ms``."""
    if len(samples_ms) < 2:
        return samples_ms[0], 0.0
    q1, _, q3 = statistics.quantiles(samples_ms, n=4, method="inclusive")
    return statistics.median(samples_ms), q3 - q1


def measure_latency(model: nn.Module, in_channels: int, size: int, batch: int = 1, threads: int = 1,
                    warmup: int = 3, repeats: int = 20, max_seconds: float = 5.0,
                    clock: Callable[[], float] = time.perf_counter) -> Latency:
    """Latency of the deploy form of ``model`` (a copy; ``model`` is untouched)."""
    net = deploy(copy.deepcopy(model)).eval()
    x = torch.randn(batch, in_channels, size, size)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        samples = []
        with torch.inference_mode():
            for _ in range(warmup):
                net(x)
            deadline = clock() + max_seconds
            while len(samples) < repeats and (len(samples) < 3 or clock() < deadline):
                start = clock()
                net(x)
                samples.append((clock() - start) * 1e3)
    finally:
        torch.set_num_threads(previous)
    median, iqr = summarize(samples)
    return Latency(median, iqr, len(samples), threads, batch, size, warmup, str(torch.__version__),
                   platform.processor() or platform.machine())
