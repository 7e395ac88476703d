"""Training throughput (images per second) per network and input size, eager against
channels_last, the two memory formats timed interleaved one training step at a time."""
from __future__ import annotations

import copy

import torch

from bench.assemble import build_model
from bench.config import resolve_architecture
from bench.latency import Protocol, summarize, time_interleaved
from bench.losses import SegmentationLoss

from .common import parser, write


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--networks", nargs="+", default=["tinyunet", "ulite", "alnet", "lmnet", "unet"])
    p.add_argument("--sizes", nargs="+", type=int, default=[64, 128])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--max-seconds", type=float, default=10.0)
    args = p.parse_args()
    rows = []
    for name in args.networks:
        arch = resolve_architecture(name)
        for size in args.sizes:
            model = build_model(arch, seed=0)
            steps = {fmt: _train_step(copy.deepcopy(model), arch.config["in_channels"], size, args.batch, fmt)
                     for fmt in ("eager", "channels_last")}
            samples, stopped = time_interleaved(steps, Protocol(warmup=2, min_repeats=5,
                                                                max_seconds=args.max_seconds))
            eager = summarize(samples["eager"]).median
            for fmt, times in samples.items():
                step_ms = summarize(times).median
                rows.append({"network": name, "size": size, "format": fmt, "step_ms": step_ms,
                             "images_per_s": args.batch / step_ms * 1e3, "speed_vs_eager": eager / step_ms,
                             "n": len(times), "stopped": stopped})
    write("throughput", rows, {"batch": args.batch, "threads": torch.get_num_threads(),
                               "step": "forward, CE + Dice loss, backward, Adam step"}, args.out)


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
