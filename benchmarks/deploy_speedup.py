"""Deploy (re-parameterised) against train form latency, timed interleaved in one session: the
seed networks with re-parameterisable blocks, a RepVGG-swapped TinyU-Net, and single blocks."""
from __future__ import annotations

from torch import nn

from bench.arch.assemble import build_model
from bench.blocks import BLOCKS
from bench.arch.config import resolve_architecture
from bench.arch.latency import Candidate, Protocol, measure

from .common import named, parser, quick_mode, write

NETWORKS = {"alnet": [], "lmnet": [], "tinyunet+repvgg": ["encoder.block.type=repvgg"]}
BLOCKS_TIMED = {"repvgg": {}, "multibranch_dw": {}}


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--max-seconds", type=float, default=10.0)
    quick_mode(p, "32 px, 0.1 s per form")
    args = p.parse_args()
    if args.quick:
        args.size, args.max_seconds = 32, 0.1
    protocol = Protocol(max_seconds=args.max_seconds)
    rows = []
    for label, sets in NETWORKS.items():
        arch = resolve_architecture(label.split("+")[0], sets)
        rows += _pair(label, build_model(arch, seed=0), arch.config["in_channels"], args.size, protocol)
    for name, params in BLOCKS_TIMED.items():  # one block, 64 -> 64 channels on a 64 x 64 map
        block = BLOCKS.get(name, "benchmark").build(64, 64, params)
        rows += _pair(f"block {name} 64->64", nn.Sequential(block), 64, 64, protocol)
    write(named("deploy_speedup", args), rows, {"size": args.size, "protocol": "eager, 1 thread, batch 1, "
                                   "train and deploy forms timed interleaved"}, args.out)


def _pair(label: str, model: nn.Module, in_channels: int, size: int, protocol: Protocol) -> list[dict]:
    train, deployed = measure([Candidate("train", model, "train"), Candidate("deploy", model, "deploy")],
                              in_channels, size, protocol)
    return [{"network": label, "train_ms": train.median_ms, "deploy_ms": deployed.median_ms,
             "deploy_over_train": deployed.ratio, "train_iqr_ms": train.iqr_ms,
             "deploy_iqr_ms": deployed.iqr_ms, "n": train.n, "stopped": train.stopped}]


if __name__ == "__main__":
    main()
