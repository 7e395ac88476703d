"""Latency of a forward pass, measured so that figures can be trusted and compared.

The protocol: eval and inference mode; the deploy form unless asked otherwise; a fixed thread
count; warm-up runs; then timed runs, garbage collection off, until the median is stable (the
95 % distribution-free confidence interval of the median lies within ``target`` of it, relative)
or a time cap is hit. Median, IQR, p90 and n are reported with the whole protocol and the
environment (versions, CPU model). On a GPU (``Protocol(device="cuda")``) each run is timed with
CUDA events around it, after synchronising, under the same warm-up, stopping rule and
interleaving; the record then carries the GPU, its driver and CUDA versions, the cuDNN
autotuning policy, clocks and throttle state (NVML), and each candidate's peak GPU memory.

Several candidates (networks, forms, backends) are timed *interleaved*, A B C A B C ..., so that
drift of a shared machine touches all of them alike; compare them by the ratio to a reference
timed in the same session, not by absolute milliseconds from different sessions.

``python -m bench.arch.latency SPEC OUT`` is the fresh-process measurement behind ``isolate=True``.
"""
from __future__ import annotations

import copy
import gc
import json
import math
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

import torch
from torch import nn

from .reparameterize import deploy
from ..core.device import describe_device, resolve_device, synchronize
from ..core.errors import BenchError
from ..core.files import write_text
from .runtimes import check_backend, prepare
from ..core.machine import cpu_count, cpu_model

FORMS = ("train", "deploy")
Clock = Callable[[], float]


@dataclass(frozen=True)
class Protocol:
    """How to time: threads, batch, warm-up runs, and when to stop the timed runs."""

    threads: int = 1
    batch: int = 1
    warmup: int = 5
    min_repeats: int = 10
    max_repeats: int = 1000
    max_seconds: float = 10.0  # per candidate; several candidates share len(candidates) x this
    target: float = 0.01  # stop when the median's 95 % CI half-width is within 1 % of it
    device: str = "cpu"  # see bench.core.device.resolve_device
    # cuDNN autotuning: off by default, since with shapes that vary (sliding windows) it re-tunes
    # per shape and the tuning lands in the timed runs
    cudnn_benchmark: bool = False

    def __post_init__(self) -> None:
        for name in ("threads", "batch", "min_repeats", "max_repeats"):
            if getattr(self, name) < 1:
                raise BenchError(f"latency protocol: {name} must be at least 1, got {getattr(self, name)}")
        if self.warmup < 0 or self.max_seconds <= 0 or self.target <= 0:
            raise BenchError(f"latency protocol: warmup >= 0, max_seconds > 0 and target > 0 "
                             f"are needed, got {self}")


@dataclass(frozen=True)
class Stats:
    """Order statistics of timed runs, in milliseconds."""

    median: float
    iqr: float
    p90: float
    ci_low: float  # 95 % confidence interval of the median (order statistics, no normality)
    ci_high: float
    n: int


def summarize(samples_ms: Sequence[float]) -> Stats:
    """Median, interquartile range, 90th percentile and the median's 95 % confidence interval.

    Quartiles and p90 interpolate linearly between order statistics (numpy's default); the
    interval is [x_(j), x_(k)] with j, k = n/2 -+ 0.98 sqrt(n) (+1 for k), the normal
    approximation to the binomial ranks, clipped to the sample.
    """
    if not samples_ms:
        raise ValueError("no samples")
    xs = sorted(samples_ms)
    n = len(xs)
    if n == 1:
        return Stats(xs[0], 0.0, xs[0], xs[0], xs[0], 1)
    q1, _, q3 = statistics.quantiles(xs, n=4, method="inclusive")
    p90 = statistics.quantiles(xs, n=10, method="inclusive")[8]
    spread = 0.98 * math.sqrt(n)
    low = max(1, math.floor(n / 2 - spread))
    high = min(n, math.ceil(n / 2 + 1 + spread))
    return Stats(statistics.median(xs), q3 - q1, p90, xs[low - 1], xs[high - 1], n)


def is_stable(stats: Stats, target: float) -> bool:
    """Whether the median's 95 % interval lies within ``target`` (relative) of the median."""
    return (stats.ci_high - stats.ci_low) / 2 <= target * stats.median


Timer = Callable[[Callable[[], Any]], float]  # runs a call once, returns its time in ms


def wall_timer(clock: Clock = time.perf_counter) -> Timer:
    """Times a call by ``clock`` (CPU work, which is done when the call returns)."""
    def timed(run: Callable[[], Any]) -> float:
        start = clock()
        run()
        return (clock() - start) * 1e3
    return timed


def cuda_event_timer(device: torch.device) -> Timer:
    """Times a call by CUDA events recorded around it on ``device``'s current stream (where the
    call's kernels go; not the current device's, which ``cuda:1`` need not be), after the queue
    is drained: the GPU's own time for the work the call queued, not the time to queue it."""
    def timed(run: Callable[[], Any]) -> float:
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        stream = torch.cuda.current_stream(device)
        torch.cuda.synchronize(device)
        start.record(stream)
        run()
        end.record(stream)
        end.synchronize()
        return start.elapsed_time(end)
    return timed


def time_interleaved(runs: Mapping[str, Callable[[], Any]], protocol: Protocol,
                     clock: Clock = time.perf_counter,
                     timer: Optional[Timer] = None) -> tuple[dict[str, list[float]], str]:
    """Warm each run up, then time rounds of one call each, in order, until every candidate's
    median is stable, ``max_repeats`` rounds, or the time cap (``max_seconds`` per candidate,
    at least three rounds). Each call is timed by ``timer`` (default: ``clock`` around it).
    Returns the samples in ms per label and why timing stopped."""
    timer = timer or wall_timer(clock)
    for run in runs.values():
        for _ in range(protocol.warmup):
            run()
    samples: dict[str, list[float]] = {label: [] for label in runs}
    deadline = clock() + protocol.max_seconds * len(runs)
    collecting = gc.isenabled()
    gc.disable()  # a collection inside one timed run would land on one candidate only
    try:
        while True:
            for label, run in runs.items():
                samples[label].append(timer(run))
            rounds = len(samples[next(iter(runs))])
            if rounds >= protocol.min_repeats and all(
                    is_stable(summarize(s), protocol.target) for s in samples.values()):
                return samples, "stable"
            if rounds >= protocol.max_repeats:
                return samples, "max repeats"
            if rounds >= 3 and clock() >= deadline:
                return samples, "time cap"
    finally:
        if collecting:
            gc.enable()


@dataclass
class Latency:
    """One candidate's latency with the protocol and environment that produced it."""

    label: str
    median_ms: float
    iqr_ms: float
    p90_ms: float
    ci95_ms: tuple[float, float]
    n: int
    stopped: str  # "stable", "max repeats" or "time cap"
    protocol: dict[str, Any]
    ratio: Optional[float] = None  # median / the reference's median, timed in the same session
    reference: Optional[str] = None
    max_abs_diff: Optional[float] = None  # output difference from eager PyTorch (converted backends)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def environment() -> dict[str, Optional[str]]:
    """What the figures depend on besides the network: versions and the CPU model."""
    try:
        import onnxruntime
        ort_version: Optional[str] = onnxruntime.__version__
    except ImportError:
        ort_version = None
    return {"torch": str(torch.__version__), "onnxruntime": ort_version,
            "python": platform.python_version(), "cpu": cpu_model(), "cpu_count": str(cpu_count())}


@dataclass(frozen=True)
class Candidate:
    """A network to time, in a form (train, deploy) on a backend."""

    label: str
    model: nn.Module
    form: str = "deploy"
    backend: str = "eager"
    config: Optional[dict] = None  # the resolved architecture of ``model``: what a fresh process rebuilds

    def __post_init__(self) -> None:
        if self.form not in FORMS:
            raise BenchError(f"unknown form {self.form!r}; choose from {', '.join(FORMS)}")
        check_backend(self.backend)

    def network(self) -> nn.Module:
        """A copy in this form and eval mode; the candidate's own model is untouched."""
        net = copy.deepcopy(self.model).eval()
        return deploy(net) if self.form == "deploy" else net


def measure(candidates: Sequence[Candidate], in_channels: int, size: int,
            protocol: Protocol = Protocol(), isolate: bool = False, reference: Optional[str] = None,
            clock: Clock = time.perf_counter) -> list[Latency]:
    """Time ``candidates`` on one random (batch, in_channels, size, size) input: interleaved in
    this process, or each in a fresh process when ``isolate``. Ratios are to ``reference`` (a
    label; default the first candidate)."""
    labels = [c.label for c in candidates]
    if len(set(labels)) != len(labels):
        raise BenchError(f"latency candidates need distinct labels, got {labels}")
    reference = reference or labels[0]
    if reference not in labels:
        raise BenchError(f"reference {reference!r} is not one of the candidates {labels}")
    if isolate:
        results = [_measure_in_subprocess(c, in_channels, size, protocol) for c in candidates]
    else:
        results = _measure_here(candidates, in_channels, size, protocol, clock)
    base = next(r for r in results if r.label == reference).median_ms
    if len(results) > 1:
        for r in results:
            r.ratio, r.reference = r.median_ms / base, reference
    return results


def measure_latency(model: nn.Module, in_channels: int, size: int, form: str = "deploy",
                    backend: str = "eager", protocol: Protocol = Protocol(),
                    clock: Clock = time.perf_counter) -> Latency:
    """Latency of one network (the deploy form by default; ``model`` is untouched)."""
    return measure([Candidate(form, model, form, backend)], in_channels, size, protocol, clock=clock)[0]


def _measure_here(candidates: Sequence[Candidate], in_channels: int, size: int, protocol: Protocol,
                  clock: Clock, isolated: bool = False) -> list[Latency]:
    device = resolve_device(protocol.device)
    if device.type != "cpu":
        for c in candidates:
            if c.backend == "onnxruntime":
                raise BenchError(f"latency of {c.label!r} on {device}: the onnxruntime backend runs on the CPU "
                                 "only; time it with --device cpu, or use eager, channels_last or compile")
    x = torch.randn(protocol.batch, in_channels, size, size, generator=torch.Generator().manual_seed(0)).to(device)
    previous, tuning = torch.get_num_threads(), torch.backends.cudnn.benchmark
    torch.set_num_threads(protocol.threads)
    torch.backends.cudnn.benchmark = protocol.cudnn_benchmark
    try:
        runners = {c.label: prepare(c.network().to(device), x.clone(), c.backend, protocol.threads)
                   for c in candidates}
        gpu_peaks = {k: _gpu_peak_mb(r.run, device) for k, r in runners.items()} if device.type == "cuda" else {}
        timer = cuda_event_timer(device) if device.type == "cuda" else wall_timer(clock)
        samples, stopped = time_interleaved({k: r.run for k, r in runners.items()}, protocol, clock, timer)
        env = {**environment(), **describe_device(device)}
    finally:
        torch.set_num_threads(previous)
        torch.backends.cudnn.benchmark = tuning
    results = []
    for c in candidates:
        runner, stats = runners[c.label], summarize(samples[c.label])
        extra = {"gpu_peak_memory_mb": gpu_peaks[c.label]} if c.label in gpu_peaks else {}
        record = {"backend": c.backend, "form": c.form, "threads": protocol.threads,
                  "batch": protocol.batch, "input_size": size, "in_channels": in_channels,
                  "warmup": protocol.warmup, "min_repeats": protocol.min_repeats,
                  "max_repeats": protocol.max_repeats, "max_seconds": protocol.max_seconds,
                  "target": protocol.target, "isolate": isolated,
                  "interleaved_with": ",".join(l for l in samples if l != c.label) or None,
                  "timer": "cuda events" if device.type == "cuda" else "wall clock", "figure": "measured",
                  "cudnn_benchmark_policy": protocol.cudnn_benchmark, **extra, **env, **runner.versions}
        results.append(Latency(c.label, stats.median, stats.iqr, stats.p90, (stats.ci_low, stats.ci_high),
                               stats.n, stopped, record, max_abs_diff=runner.max_abs_diff))
    return results


def _gpu_peak_mb(run: Callable[[], Any], device: torch.device) -> float:
    """Peak GPU memory of one forward pass, in MiB: ``torch.cuda.max_memory_allocated`` above what
    was allocated before it (input, and the weights of every candidate in the session)."""
    synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    run()
    synchronize(device)
    return (torch.cuda.max_memory_allocated(device) - before) / 2**20


def _measure_in_subprocess(candidate: Candidate, in_channels: int, size: int, protocol: Protocol) -> Latency:
    if candidate.config is None:
        raise BenchError(f"timing {candidate.label!r} in a fresh process needs its architecture config "
                         "(Candidate(config=...)); the process rebuilds the network from it and its weights.")
    with tempfile.TemporaryDirectory(prefix="bench-latency-") as tmp:
        spec, out = Path(tmp) / "spec.pt", Path(tmp) / "latency.json"
        write_spec(spec, candidate, in_channels, size, protocol)
        done = subprocess.run([sys.executable, "-m", "bench.arch.latency", str(spec), str(out)],
                              capture_output=True, text=True)
        if done.returncode != 0 or not out.exists():
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise BenchError(f"the isolated latency measurement of {candidate.label!r} failed "
                             f"(exit {done.returncode}): {' / '.join(tail)}")
        record = json.loads(out.read_text())
    record["ci95_ms"] = tuple(record["ci95_ms"])
    return Latency(**record)


def write_spec(path: Path, candidate: Candidate, in_channels: int, size: int, protocol: Protocol) -> None:
    """What a fresh process needs to time ``candidate``: its config as JSON, its weights as
    tensors, the input and the protocol; no module is pickled."""
    torch.save({"label": candidate.label, "form": candidate.form, "backend": candidate.backend,
                "config": json.dumps(candidate.config), "state_dict": candidate.model.state_dict(),
                "in_channels": in_channels, "size": size, "protocol": json.dumps(asdict(protocol))}, path)


def read_spec(path: Path) -> tuple[Candidate, int, int, Protocol]:
    """The candidate (rebuilt from its config, its weights loaded), input channels, size and
    protocol of a :func:`write_spec` file, read weights-only: tensors and strings, no code."""
    from .assemble import build_model
    from .config import Architecture

    spec = torch.load(path, weights_only=True)
    config = json.loads(spec["config"])
    model = build_model(Architecture(config.get("name", spec["label"]), config))
    model.load_state_dict(spec["state_dict"])
    candidate = Candidate(spec["label"], model, spec["form"], spec["backend"], config)
    return candidate, spec["in_channels"], spec["size"], Protocol(**json.loads(spec["protocol"]))


def _main(argv: Sequence[str]) -> None:
    spec_path, out_path = argv
    candidate, in_channels, size, protocol = read_spec(Path(spec_path))
    result = _measure_here([candidate], in_channels, size, protocol, time.perf_counter, isolated=True)[0]
    write_text(Path(out_path), json.dumps(result.to_dict()))


if __name__ == "__main__":
    _main(sys.argv[1:])
