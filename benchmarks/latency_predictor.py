"""How well the per-block latency table predicts whole networks (issue: cheap trials): the table
is built for a space (every block it can place, timed alone; the family's constant from whole
networks of the cover), then held-out designs of the space (random samples not in the cover, so
not used to build it) are timed whole, interleaved in one session, and compared with their
predictions: Kendall's tau, and the share predicted within 10 %.

    python -m benchmarks.latency_predictor                       # lightweight at 48 px, 30 designs
    python -m benchmarks.latency_predictor --quick               # tabular at 32 px, 4 designs, short timing
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import optuna
from scipy import stats

from bench.arch.assemble import build_model, plan_architecture
from bench.arch.config import resolve_architecture
from bench.arch.latency import Candidate, Protocol, measure
from bench.arch import latency_table
from bench.arch.latency_table import LatencyTable
from bench.core.errors import BenchError
from bench.search.block_cover import build_latency_table
from bench.search.space import load_space
from bench.search.study import sample_overrides

from .common import parser, write

HELD_OUT = Protocol(max_seconds=1.0)
QUICK = Protocol(warmup=1, min_repeats=3, max_repeats=5, max_seconds=0.02)


def held_out(space, size: int, count: int, seed: int, excluded: set[str]):
    """``count`` random designs of ``space`` that plan, are distinct, and are not in ``excluded``."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    found: dict[str, object] = {}
    for _ in range(200 * count):
        arch = resolve_architecture(space.architecture, sample_overrides(study.ask(), space))
        if arch.hash in excluded or arch.hash in found:
            continue
        try:
            plan_architecture(arch)
        except BenchError:
            continue
        found[arch.hash] = arch
        if len(found) == count:
            break
    if len(found) < count:
        raise BenchError(f"space {space.name!r} holds {len(found)} designs outside the cover; ask for fewer")
    return list(found.values())


def run(space_name: str, size: int, count: int, seed: int, table_path: Path,
        protocol: Protocol = HELD_OUT) -> tuple[list[dict], dict]:
    space = load_space(space_name)
    table = LatencyTable()
    started = time.perf_counter()
    cover = build_latency_table(space, size, table)
    build_seconds = time.perf_counter() - started
    table.save(table_path)
    designs = held_out(space, size, count, seed, {a.hash for a in cover})
    predicted = [table.predict(a, size).ms for a in designs]
    in_channels = int(designs[0].config["in_channels"])
    timed = measure([Candidate(f"design {i}", build_model(a, seed=0)) for i, a in enumerate(designs)],
                    in_channels, size, protocol)
    rows = [{"design": a.hash[:12], "predicted_ms": p, "measured_ms": t.median_ms, "error": p / t.median_ms - 1}
            for a, p, t in zip(designs, predicted, timed)]
    tau = stats.kendalltau(predicted, [t.median_ms for t in timed]).statistic
    within = sum(abs(r["error"]) <= 0.10 for r in rows) / len(rows)
    meta = {"space": space_name, "size": size, "held_out": len(designs), "seed": seed,
            "cover_designs": len(cover), "blocks": len(table.blocks), "table_build_seconds": round(build_seconds, 1),
            "constant_ms": table.constants, "kendall_tau": round(float(tau), 3), "within_10pct": round(within, 3),
            "median_abs_error": round(float(sorted(abs(r["error"]) for r in rows)[len(rows) // 2]), 3),
            "target": "tau >= 0.9 and >= 90 % within 10 %"}
    return rows, meta


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--space", default="lightweight")
    p.add_argument("--size", type=int, default=48)
    p.add_argument("--designs", type=int, default=30)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--quick", action="store_true", help="the tabular space at 32 px, 4 held-out designs, short timing")
    args = p.parse_args()
    if args.quick:  # checks the wiring, not the figures: timing cut short
        args.space, args.size, args.designs = "tabular", 32, 4
        latency_table.BLOCK_PROTOCOL = latency_table.NETWORK_PROTOCOL = QUICK
    with tempfile.TemporaryDirectory() as tmp:
        rows, meta = run(args.space, args.size, args.designs, args.seed, Path(tmp) / "table.json",
                         QUICK if args.quick else HELD_OUT)
    write("latency_predictor" + ("_quick" if args.quick else ""), rows, meta, args.out)


if __name__ == "__main__":
    main()
