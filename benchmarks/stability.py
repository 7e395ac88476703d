"""Latency stability: the spread of the median over separate invocations of
``bench profile ARCH --latency``, each a fresh process, one after another."""
from __future__ import annotations

import json
import statistics
import subprocess
import sys

from .common import named, parser, quick_mode, write


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--arch", default="tinyunet")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--runs", type=int, default=5)
    quick_mode(p, "two invocations at 32 px")
    args = p.parse_args()
    if args.quick:
        args.size, args.runs = 32, 2
    rows = []
    for i in range(args.runs):
        done = subprocess.run([sys.executable, "-m", "bench", "profile", args.arch, "--latency",
                               "--size", str(args.size), "--format", "json"],
                              capture_output=True, text=True, check=True)
        timed = json.loads(done.stdout)["latency"][0]
        rows.append({"invocation": i + 1, "median_ms": timed["median_ms"], "iqr_ms": timed["iqr_ms"],
                     "p90_ms": timed["p90_ms"], "n": timed["n"], "stopped": timed["stopped"]})
    medians = [r["median_ms"] for r in rows]
    cv = statistics.stdev(medians) / statistics.mean(medians) if len(medians) > 1 else 0.0
    write(named("stability", args), rows, {"arch": args.arch, "size": args.size,
                              "coefficient_of_variation_of_medians": round(cv, 4),
                              "protocol": "bench profile defaults: deploy form, eager, 1 thread, batch 1"}, args.out)


if __name__ == "__main__":
    main()
