"""What every agent says when the pool checks its health: cheap, no I/O."""

from __future__ import annotations

import os
import time
from typing import Any

import psutil

__all__ = ["health_of"]


def health_of(name: str, kind: str, started_at: float, tasks_done: int, **extra: Any) -> dict[str, Any]:
    """Name, kind, process, tasks done, uptime and resident memory (the pool recycles agents above a limit)."""
    return {
        "name": name, "kind": kind, "pid": os.getpid(), "tasks_done": tasks_done,
        "uptime_s": round(time.time() - started_at, 1),
        "rss_mb": round(psutil.Process().memory_info().rss / 2**20, 1), **extra,
    }  # fmt: skip
