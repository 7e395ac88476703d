"""What a figure was measured on, without loading torch: the CPU model, its cores, and the
commit of the code."""
from __future__ import annotations

import os
import subprocess
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


def git_revision() -> str:
    """The commit of this checkout of bench, or ``unknown`` (an installed copy, no git)."""
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, timeout=5)
        return done.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"
