"""Ray actors: the agents (plain classes, wrapped once by :mod:`actors.factory`) and the agent pool."""

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
