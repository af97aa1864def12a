"""Ray actors: the agents (plain classes, wrapped once by :mod:`actors.factory`), the pool (next)."""

from actors.investigator import Investigator

__all__ = ["Investigator"]
