"""What the API's replicas are told at deploy: where the stores are. Its own module, light to import: ``cidadao
up`` builds it before Ray starts, and imports the app (:mod:`deployments.ingress`) only when it deploys it, while
the agents start."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["IngressArgs"]


class IngressArgs(BaseModel):
    """Where the stores are; unset: as the settings say (the embedded servers of the data home, if no URL)."""

    model_config = ConfigDict(extra="forbid")
    database_url: str | None = None
    redis_url: str | None = None
    read_replica_url: str | None = None
