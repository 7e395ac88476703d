"""Latency of the reference networks on each backend (eager, channels_last, ONNX Runtime,
optionally torch.compile), timed interleaved per network, as ratios to eager, with the largest
output difference from eager."""
from __future__ import annotations

from bench.arch.assemble import build_model
from bench.arch.config import resolve_architecture
from bench.core.errors import BenchError
from bench.arch.latency import Candidate, Protocol, measure

from .common import named, parser, quick_mode, write

NETWORKS = ("tinyunet", "ulite", "alnet", "lmnet", "unet")


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--networks", nargs="+", default=list(NETWORKS))
    p.add_argument("--compile", action="store_true", help="also torch.compile (slow to compile)")
    p.add_argument("--max-seconds", type=float, default=10.0)
    quick_mode(p, "TinyU-Net at 32 px, 0.3 s per backend")
    args = p.parse_args()
    if args.quick:
        args.size, args.networks, args.max_seconds, args.compile = 32, ["tinyunet"], 0.3, False
    backends = ["eager", "channels_last", "onnxruntime"] + (["compile"] if args.compile else [])
    rows = []
    for name in args.networks:
        arch = resolve_architecture(name)
        model = build_model(arch, seed=0)
        try:
            results = measure([Candidate(b, model, "deploy", b) for b in backends],
                              arch.config["in_channels"], args.size, Protocol(max_seconds=args.max_seconds))
        except BenchError as exc:
            rows.append({"network": name, "error": str(exc)})
            continue
        for r in results:
            rows.append({"network": name, "backend": r.label, "median_ms": r.median_ms, "iqr_ms": r.iqr_ms,
                         "ratio_to_eager": r.ratio, "max_abs_diff": r.max_abs_diff, "n": r.n,
                         "stopped": r.stopped})
    write(named("backends", args), rows, {"size": args.size, "protocol": "deploy form, 1 thread, batch 1, backends "
                             "of one network timed interleaved"}, args.out)


if __name__ == "__main__":
    main()
