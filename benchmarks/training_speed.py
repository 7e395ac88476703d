"""Training images per second of each network under each training speed option (fp32 eager,
channels_last, bf16 autocast, torch.compile, and combinations), timed interleaved one training
step at a time, each as a ratio to fp32 eager. The step is :class:`bench.training.loop.TrainingStep`,
the one ``bench train`` runs. The authors' TinyU-Net and U-Lite training loops are not at hand
offline. Before ``bench.blocks.upsample2x`` our fp32 eager step trained at 0.98 to 1.00 of their
speed (issue 17), so their reference here is our fp32 eager step with PyTorch's own upsampling
backward, as their code runs it: ``speed_vs_authors_ops``.

Each network runs in a fresh process: a crash inside torch (torch 2.13's CPU backward of a 1x1
stride-2 convolution on 3 channels in channels_last corrupts the heap, which hits AL-Net's stem)
is recorded, and the network is measured again without the channels_last options. Where no
option reaches ``--target`` x fp32 eager, torch.profiler's top operators of an fp32 step show
where the time goes.

``python -m benchmarks.training_speed [--networks ...] [--size 128] [--device cpu] [--no-compile]``
"""
from __future__ import annotations

import contextlib
import copy
import json
import math
import subprocess
import sys
import time
from typing import Any

import torch

from bench.arch.assemble import build_model
from bench.blocks.upsample2x import pytorch_backward
from bench.arch.config import resolve_architecture
from bench.core.device import describe_device, resolve_device, synchronize
from bench.arch.latency import Protocol, summarize, time_interleaved
from bench.training.losses import SegmentationLoss
from bench.training.recipe import Recipe
from bench.training.loop import TrainingStep

from .common import named, parser, quick_mode, write

AUTHORS = "fp32 eager, PyTorch's upsampling backward"  # what the authors' code runs
OPTIONS: dict[str, dict[str, Any]] = {
    AUTHORS: {},
    "fp32 eager": {},
    "channels_last": {"channels_last": True},
    "bf16": {"precision": "bf16"},
    "bf16 + channels_last": {"precision": "bf16", "channels_last": True},
    "compile": {"compile": True},
    "compile + bf16": {"compile": True, "precision": "bf16"},
    "compile + bf16 + channels_last": {"compile": True, "precision": "bf16", "channels_last": True},
}
REFERENCE = "fp32 eager"


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--networks", nargs="+", default=["tinyunet", "ulite", "alnet", "lmnet"])
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--device", default="cpu")
    p.add_argument("--max-seconds", type=float, default=20.0, help="time cap per option")
    p.add_argument("--no-compile", action="store_true", help="leave out the torch.compile options")
    p.add_argument("--target", type=float, default=1.5, help="speed-up below which the profile is shown")
    quick_mode(p, "TinyU-Net at 32 px, batch 2, 0.5 s per option, no compile")
    args = p.parse_args()
    if args.quick:
        args.networks, args.size, args.batch, args.max_seconds, args.no_compile = ["tinyunet"], 32, 2, 0.5, True
    options = [o for o in OPTIONS if not (args.no_compile and "compile" in o)]
    rows, profiles = [], {}
    for name in args.networks:
        found = _in_subprocess(name, args, options)
        rows += found["rows"]
        if found.get("profile"):
            profiles[name] = found["profile"]
    meta = {"size": args.size, "batch": args.batch, "threads": torch.get_num_threads(),
            "device": describe_device(resolve_device(args.device)),
            "step": "bench.training.loop.TrainingStep: forward, CE + Dice loss, backward, Adam step",
            "best": {n: _best(rows, n) for n in args.networks}, "profiles": profiles}
    write(named("training_speed", args), rows, meta, args.out)


def _best(rows: list[dict], network: str) -> dict[str, Any]:
    measured = [r for r in rows if r["network"] == network and "speed_vs_fp32" in r and r["option"] != AUTHORS]
    top = max(measured, key=lambda r: r["speed_vs_fp32"], default=None)
    return {"option": top["option"], "speed_vs_fp32": round(top["speed_vs_fp32"], 3),
            "speed_vs_authors_ops": round(top["speed_vs_authors_ops"], 3)} if top else {}


def _in_subprocess(name: str, args: Any, options: list[str]) -> dict[str, Any]:
    command = [sys.executable, "-m", "benchmarks.training_speed", "--one", json.dumps(
        {"name": name, "size": args.size, "batch": args.batch, "device": args.device,
         "max_seconds": args.max_seconds, "target": args.target, "options": options})]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode == 0:
        return json.loads(done.stdout.strip().splitlines()[-1])
    first = (done.stderr.strip().splitlines() or [""])[-1][:100]
    kept = [o for o in options if "channels_last" not in OPTIONS[o]]
    if kept == options:
        return {"rows": [{"network": name, "option": o, "error": f"crashed (exit {done.returncode}): {first}"}
                         for o in options]}
    found = _in_subprocess(name, args, kept)
    found["rows"] += [{"network": name, "option": o, "error": f"torch crashed (exit {done.returncode}): {first}"}
                      for o in options if o not in kept]
    return found


def measure_network(name: str, size: int, batch: int, device: str, max_seconds: float, target: float,
                    options: list[str]) -> dict[str, Any]:
    """Interleaved training steps of ``name`` under each option, in this process."""
    where = resolve_device(device)
    arch = resolve_architecture(name)
    model = build_model(arch, seed=0)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, arch.config["in_channels"], size, size, generator=g)
    y = torch.randint(0, 2, (batch, size, size), generator=g)
    steps, first_call = {}, {}
    for option in options:
        network = copy.deepcopy(model).train()
        recipe = Recipe(**OPTIONS[option])
        step = TrainingStep(network, SegmentationLoss("ce_dice", 2), torch.optim.Adam(network.parameters(), 1e-4),
                            recipe, where)

        def run(step: TrainingStep = step, stock: bool = option == AUTHORS) -> None:
            with pytorch_backward() if stock else contextlib.nullcontext():
                step(x, y)
            synchronize(where)

        started = time.perf_counter()
        run()  # compiles, for the compile options: reported apart, not timed
        first_call[option] = time.perf_counter() - started
        steps[option] = run
    samples, stopped = time_interleaved(steps, Protocol(warmup=2, min_repeats=5, max_seconds=max_seconds))
    base, authors = (summarize(samples[o]).median if o in samples else math.nan for o in (REFERENCE, AUTHORS))
    rows = []
    for option, times in samples.items():
        stats = summarize(times)
        rows.append({"network": name, "size": size, "option": option, "step_ms": stats.median,
                     "iqr_ms": stats.iqr, "images_per_s": batch / stats.median * 1e3,
                     "speed_vs_fp32": base / stats.median, "speed_vs_authors_ops": authors / stats.median,
                     "n": stats.n, "stopped": stopped,
                     "first_step_s": first_call[option]})
    best = max(r["speed_vs_fp32"] for r in rows)
    profile = _top_operators(steps[REFERENCE]) if best < target else None
    return {"rows": rows, "profile": profile}


def _top_operators(run, count: int = 8) -> list[dict[str, Any]]:
    """torch.profiler's operators of three fp32 steps, by their own CPU time."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(3):
            run()
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events) or 1
    return [{"operator": e.key, "share": round(e.self_cpu_time_total / total, 3), "calls": e.count}
            for e in events[:count]]


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--one":
        spec = json.loads(sys.argv[2])
        print(json.dumps(measure_network(spec["name"], spec["size"], spec["batch"], spec["device"],
                                         spec["max_seconds"], spec["target"], spec["options"])))
    else:
        main()
