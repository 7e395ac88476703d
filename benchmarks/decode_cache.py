"""Load time of a dataset folder without and with the decode cache, each in a fresh process (as a
sweep's workers and a next run load it): a cold load (empty cache: decode every file, fill the
cache) and a warm one (memory-mapped from the cache), for DSB 2018 at 96 px and for a set the size
of ISIC 2018 (N synthetic 1024 x 768 JPEGs with PNG masks, as benchmarks/data_memory.py writes them),
both at the working size given.

    python -m benchmarks.decode_cache --data ../shared/data/dsb2018_96 --count 2600 --size 256
    python -m benchmarks.decode_cache --quick      # 12 JPEGs and the DSB folder's first 24 pairs
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .common import parser, write
from .data_memory import write_set

LOAD = """
import json, sys, time
from pathlib import Path
from bench.data.dataset import load_folder
from bench.data.protocol import Protocol
started = time.perf_counter()
data = load_folder(Path(sys.argv[1]), Protocol(size=int(sys.argv[2])))
print(json.dumps({"seconds": time.perf_counter() - started, "images": len(data.stems)}))
"""


def timed_load(folder: Path, size: int, cache: Path) -> dict:
    """One load of ``folder`` in a fresh process with the cache folder ``cache``."""
    done = subprocess.run([sys.executable, "-c", LOAD, str(folder), str(size)], capture_output=True, text=True,
                          check=True, env={**os.environ, "BENCH_CACHE_DIR": str(cache)})
    return json.loads(done.stdout.strip().splitlines()[-1])


def first_pairs(source: Path, target: Path, count: int) -> Path:
    """The first ``count`` pairs of a DSB-shaped folder (images/ + masks/0/), copied."""
    for sub in ("images", "masks/0"):
        (target / sub).mkdir(parents=True)
    for image in sorted((source / "images").iterdir())[:count]:
        shutil.copy(image, target / "images" / image.name)
        shutil.copy(source / "masks" / "0" / image.name, target / "masks" / "0" / image.name)
    return target


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=Path("../shared/data/dsb2018_96"))
    p.add_argument("--count", type=int, default=2600, help="synthetic ISIC-sized JPEGs")
    p.add_argument("--size", type=int, default=256, help="working size of the JPEG set")
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    if args.quick:
        args.count, args.size = 12, 64
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        jpegs = folder / "jpegs"
        write_set(jpegs, args.count)
        dsb = first_pairs(args.data, folder / "dsb", 24) if args.quick else args.data
        for name, data, size in ((args.data.name, dsb, 96), (f"{args.count} JPEGs 1024x768", jpegs, args.size)):
            cache = folder / f"cache-{len(rows)}"
            cold, warm = timed_load(data, size, cache), timed_load(data, size, cache)
            cached = sum(f.stat().st_size for f in (cache / "decoded").glob("*.bin"))
            rows.append({"data": name, "images": cold["images"], "size": size, "cold_s": round(cold["seconds"], 3),
                         "warm_s": round(warm["seconds"], 3), "speedup": round(cold["seconds"] / warm["seconds"], 1),
                         "cache_mib": round(cached / 2**20, 1)})
    write("decode_cache" + ("_quick" if args.quick else ""), rows,
          {"note": "each load in a fresh process; cold: empty cache, warm: the entry the cold load wrote"}, args.out)


if __name__ == "__main__":
    main()
