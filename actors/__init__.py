"""Ray actors: the agents (plain classes, wrapped once by :mod:`actors.factory`) and the agent pool.

The names below are imported on first use: every agent's Ray worker process imports this package before its
own module, and importing every agent (and what each needs) there cost each worker at start what only one of
them uses.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from actors.analyst import Analyst
    from actors.investigator import Investigator
    from actors.orchestrator import Orchestrator
    from actors.pool import AgentPool, LocalBackend, PoolConfig, PoolTimeout, RayBackend
    from actors.reporter import Reporter

__all__ = [
    "AgentPool",
    "Analyst",
    "Investigator",
    "LocalBackend",
    "Orchestrator",
    "PoolConfig",
    "PoolTimeout",
    "RayBackend",
    "Reporter",
]

_HOME = {
    "Analyst": "actors.analyst", "Investigator": "actors.investigator", "Orchestrator": "actors.orchestrator",
    "Reporter": "actors.reporter", "AgentPool": "actors.pool", "LocalBackend": "actors.pool",
    "PoolConfig": "actors.pool", "PoolTimeout": "actors.pool", "RayBackend": "actors.pool",
}  # fmt: skip


def __getattr__(name: str) -> Any:
    if name in _HOME:
        return getattr(importlib.import_module(_HOME[name]), name)
    raise AttributeError(f"module 'actors' has no attribute {name!r}")
