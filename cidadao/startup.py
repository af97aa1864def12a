"""How long ``cidadao up``'s phases took: its ``start:`` line, which ``cidadao bench start`` reads.

Phases overlap (Ray starts while the stores are checked, the agents start while the API deploys), so each is
its own duration, and the total — from the process's start to ``ready`` — is less than their sum.
"""

from __future__ import annotations

import os
import time

import psutil

__all__ = ["record", "summary"]

_phases: dict[str, float] = {}


def record(phase: str, since: float) -> None:
    """``phase`` ran from ``since`` (a ``time.monotonic()``) until now."""
    _phases[phase] = time.monotonic() - since


def _since_process_start() -> float:
    """Seconds since this process started: from the kernel's clock ticks on Linux (psutil's start time rests on
    a boot time rounded to the second), psutil's elsewhere."""
    try:
        with open(f"/proc/{os.getpid()}/stat", "rb") as fh:
            ticks = int(fh.read().rsplit(b")", 1)[1].split()[19])  # field 22, starttime, after the name
        return time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return time.time() - float(psutil.Process().create_time())


def summary() -> str:
    """``start: 12.3 s to ready (stores 1.0 s, ray 5.1 s, ...)``, the phases in the order they were recorded."""
    total = _since_process_start()
    parts = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in _phases.items())
    return f"start: {total:.1f} s to ready ({parts})" if parts else f"start: {total:.1f} s to ready"
