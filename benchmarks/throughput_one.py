"""One (network, size) of the throughput benchmark, in its own process; prints its rows as JSON.
Usage: python -m benchmarks.throughput_one NAME SIZE BATCH MAX_SECONDS FORMAT..."""
from __future__ import annotations

import json
import sys

from .throughput import measure_pair

if __name__ == "__main__":
    name, size, batch, max_seconds, *formats = sys.argv[1:]
    print(json.dumps(measure_pair(name, int(size), int(batch), float(max_seconds), formats)))
