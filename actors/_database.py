"""One small asyncpg pool per agent, opened on first use (the stores are prepared then), closed with it."""

from __future__ import annotations

import asyncpg

from cidadao.settings import Settings
from cidadao.storage.database import prepare_stores
from cidadao.storage.postgres import create_pool

__all__ = ["AgentDatabase"]


class AgentDatabase:
    def __init__(self, settings: Settings, *, read_only: bool, max_size: int) -> None:
        self.settings, self.read_only, self.max_size = settings, read_only, max_size
        self.dsn = ""  # the primary
        self.reader_dsn = ""  # the read replica when one is configured, else the primary
        self._pool: asyncpg.Pool | None = None

    async def pool(self) -> asyncpg.Pool:
        """The pool (to the replica when ``read_only`` and one is configured)."""
        if self._pool is None:
            self.dsn = (await prepare_stores(self.settings)).endpoints.database_url
            replica = self.settings.read_replica_url
            self.reader_dsn = replica.get_secret_value() if replica else self.dsn
            target = self.reader_dsn if self.read_only else self.dsn
            self._pool = await create_pool(target, self.settings, min_size=1, max_size=self.max_size)
        return self._pool

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
