"""What a figure was measured on, without loading torch: the CPU model and its cores."""
from __future__ import annotations

import os
from pathlib import Path


def cpu_model() -> str:
    """The CPU's model name (``AMD EPYC ...``), or the platform's processor string."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "unknown CPU"


def cpu_count() -> int:
    """The cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1
