"""What the benchmarks say about the machine they ran on."""

from __future__ import annotations

import contextlib
import resource
import sys
from pathlib import Path


def cpu_model(fallback: str) -> str:
    """The CPU's model name from ``/proc/cpuinfo``, or ``fallback`` where it cannot be read."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return fallback


def peak_rss_mib() -> float:
    """This process's peak resident memory, in MiB."""
    # ru_maxrss is KiB on Linux, bytes on macOS.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024
