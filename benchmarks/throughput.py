"""Training throughput (images per second) per network and input size, eager against
channels_last, the two memory formats timed interleaved one training step at a time.

Each (network, size) runs in a fresh process: a crash inside torch (torch 2.13's CPU backward of
a 1x1 stride-2 convolution on 3 channels in channels_last corrupts the heap, which hits AL-Net's
stem) is recorded as such, and the eager figure is measured alone."""
from __future__ import annotations

import copy
import json
import subprocess
import sys

import torch

from bench.arch.assemble import build_model
from bench.arch.config import resolve_architecture
from bench.arch.latency import Protocol, summarize, time_interleaved
from bench.training.losses import SegmentationLoss

from .common import named, parser, quick_mode, write

FORMATS = ("eager", "channels_last")


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--networks", nargs="+", default=["tinyunet", "ulite", "alnet", "lmnet", "unet"])
    p.add_argument("--sizes", nargs="+", type=int, default=[64, 128])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--max-seconds", type=float, default=10.0)
    quick_mode(p, "TinyU-Net at 32 px, batch 2, 0.5 s")
    args = p.parse_args()
    if args.quick:
        args.networks, args.sizes, args.batch, args.max_seconds = ["tinyunet"], [32], 2, 0.5
    rows = []
    for name in args.networks:
        for size in args.sizes:
            rows += _in_subprocess(name, size, args.batch, args.max_seconds, FORMATS)
    write(named("throughput", args), rows, {"batch": args.batch, "threads": torch.get_num_threads(),
                               "step": "forward, CE + Dice loss, backward, Adam step"}, args.out)


def _in_subprocess(name: str, size: int, batch: int, max_seconds: float, formats) -> list[dict]:
    done = subprocess.run([sys.executable, "-m", "benchmarks.throughput_one", name, str(size), str(batch),
                           str(max_seconds), *formats], capture_output=True, text=True)
    if done.returncode == 0:
        return json.loads(done.stdout.strip().splitlines()[-1])
    if len(formats) == 1:
        return [{"network": name, "size": size, "format": formats[0], "error": f"crashed (exit {done.returncode})"}]
    rows = _in_subprocess(name, size, batch, max_seconds, ("eager",))
    crashed = {"network": name, "size": size, "format": "channels_last",
               "error": f"torch crashed (exit {done.returncode}): {(done.stderr.strip().splitlines() or [''])[0][:80]}"}
    return rows + [crashed]


def measure_pair(name: str, size: int, batch: int, max_seconds: float, formats) -> list[dict]:
    """Interleaved training steps of ``name`` at ``size`` in each memory format, in this process."""
    arch = resolve_architecture(name)
    model = build_model(arch, seed=0)
    steps = {fmt: _train_step(copy.deepcopy(model), arch.config["in_channels"], size, batch, fmt) for fmt in formats}
    samples, stopped = time_interleaved(steps, Protocol(warmup=2, min_repeats=5, max_seconds=max_seconds))
    eager = summarize(samples["eager"]).median
    rows = []
    for fmt, times in samples.items():
        step_ms = summarize(times).median
        rows.append({"network": name, "size": size, "format": fmt, "step_ms": step_ms,
                     "images_per_s": batch / step_ms * 1e3, "speed_vs_eager": eager / step_ms,
                     "n": len(times), "stopped": stopped})
    return rows


def _train_step(model, in_channels: int, size: int, batch: int, fmt: str):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, in_channels, size, size, generator=g)
    y = torch.randint(0, 2, (batch, size, size), generator=g)
    if fmt == "channels_last":
        model, x = model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    model.train()
    loss_fn = SegmentationLoss("ce_dice", 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        optimizer.step()

    return step


if __name__ == "__main__":
    main()
