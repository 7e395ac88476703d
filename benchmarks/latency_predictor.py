"""How well the per-block latency table predicts whole networks (issue: cheap trials): the table
is built for a space (every block it can place and 12 random networks per encoder width, timed in
one interleaved session), then held-out designs of the space (random samples outside the cover
and the calibration, so not used to build it) are timed whole and compared with their
predictions: Kendall's tau, and the share predicted within 10 %.

This machine's speed drifts between sessions (tens of percent within minutes), and a prediction
made from one session can be no closer to a measurement of another than that drift. So the
held-out designs are timed twice, in two sessions, each interleaved with the table's calibration
networks: their median ratio to the table's own timing of them is the session's drift, reported,
and divided out for the drift-corrected figures; the two sessions against each other give what
the measurement itself repeats to (the ceiling of any predictor here).

    python -m benchmarks.latency_predictor                       # lightweight at 48 px, 30 designs
    python -m benchmarks.latency_predictor --quick               # tabular at 32 px, 4 designs, short timing
"""
from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy import stats

from bench.arch import latency_table
from bench.arch.assemble import build_model
from bench.arch.latency import Candidate, Protocol, measure
from bench.arch.latency_table import LatencyTable
from bench.core.errors import BenchError
from bench.search.block_cover import build_latency_table, calibration_designs, random_designs
from bench.search.space import load_space

from .common import parser, write

HELD_OUT = Protocol(max_seconds=1.0)
QUICK = Protocol(warmup=1, min_repeats=3, max_repeats=5, max_seconds=0.02)
CALIBRATION = 12  # random networks per encoder width


def session(designs, reference, size: int, protocol: Protocol) -> tuple[list[float], float]:
    """One timing session: the designs' medians (ms), and the session's drift: the median ratio of
    the ``reference`` networks (architecture, ms in the table) now to their timing in the table."""
    archs = list(designs) + [a for a, _ in reference]
    timed = measure([Candidate(f"{i} {a.hash}", build_model(a, seed=0)) for i, a in enumerate(archs)],
                    int(archs[0].config["in_channels"]), size, protocol)
    ms = [t.median_ms for t in timed]
    drift = statistics.median(now / then for now, (_, then) in zip(ms[len(designs):], reference))
    return ms[:len(designs)], drift


def _accuracy(predicted, measured) -> tuple[float, float]:
    error = np.asarray(predicted) / np.asarray(measured) - 1
    return float(stats.kendalltau(predicted, measured).statistic), float(np.mean(np.abs(error) <= 0.10))


def run(space_name: str, size: int, count: int, seed: int, table_path: Path,
        protocol: Protocol = HELD_OUT) -> tuple[list[dict], dict]:
    space = load_space(space_name)
    table = LatencyTable()
    started = time.perf_counter()
    cover = build_latency_table(space, size, table, CALIBRATION)
    build_seconds = time.perf_counter() - started
    table.save(table_path)
    calibrated = {c["design"]: c["measured_ms"] for kept in table.calibration.values() for c in kept}
    reference = [(a, calibrated[a.hash]) for a in calibration_designs(space, size, cover, CALIBRATION)]
    designs = random_designs(space, size, count, seed, frozenset({a.hash for a in cover} | set(calibrated)))
    if len(designs) < count:
        raise BenchError(f"space {space.name!r} holds {len(designs)} designs outside the cover; ask for fewer")
    predicted = [table.predict(a, size).ms for a in designs]
    first, drift_1 = session(designs, reference, size, protocol)
    second, drift_2 = session(designs, reference, size, protocol)
    corrected = [m / drift_1 for m in first]
    rows = [{"design": a.hash[:12], "predicted_ms": p, "measured_ms": m, "measured_drift_corrected_ms": c,
             "error": p / m - 1, "error_drift_corrected": p / c - 1, "measured_again_ms": m2}
            for a, p, m, c, m2 in zip(designs, predicted, first, corrected, second)]
    tau, within = _accuracy(predicted, first)
    _, within_corrected = _accuracy(predicted, corrected)
    repeat_tau, repeat_within = _accuracy([m / drift_2 for m in second], corrected)
    _, repeat_within_raw = _accuracy(second, first)
    meta = {"space": space_name, "size": size, "held_out": len(designs), "seed": seed,
            "cover_designs": len(cover), "calibration_networks": len(calibrated), "blocks": len(table.blocks),
            "table_build_seconds": round(build_seconds, 1), "scales": table.scales, "constant_ms": table.constants,
            "kendall_tau": round(tau, 3), "within_10pct": round(within, 3),
            "within_10pct_drift_corrected": round(within_corrected, 3),
            "median_abs_error_drift_corrected": round(float(np.median([abs(r["error_drift_corrected"]) for r in rows])), 3),
            "session_drift": [round(drift_1, 3), round(drift_2, 3)],
            "repeat_kendall_tau": round(repeat_tau, 3), "repeat_within_10pct": round(repeat_within, 3),
            "repeat_within_10pct_raw": round(repeat_within_raw, 3),
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
        latency_table.BLOCK_PROTOCOL = QUICK
    with tempfile.TemporaryDirectory() as tmp:
        rows, meta = run(args.space, args.size, args.designs, args.seed, Path(tmp) / "table.json",
                         QUICK if args.quick else HELD_OUT)
    write("latency_predictor" + ("_quick" if args.quick else ""), rows, meta, args.out)


if __name__ == "__main__":
    main()
