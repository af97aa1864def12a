"""Queries: the read side (CQRS). Reads never change state; they come from read models and the cache.

``flags_by_organ_month`` reads the projection kept from ``investigation.completed`` events
(:mod:`cidadao.events.projections`) — one indexed range scan whatever the size of the flags table; an
investigation's status is its row in the queue (:mod:`cidadao.storage.queue`), which is the state itself.
Commands (:mod:`cidadao.commands`) are the only writers.
"""

from __future__ import annotations

import re
import uuid
from typing import Any, Final

import asyncpg

from cidadao.errors import CommandError
from cidadao.storage import queue

__all__ = ["flags_by_organ_month", "investigation"]

_MONTH: Final = re.compile(r"\d{4}-(0[1-9]|1[0-2])")


async def flags_by_organ_month(
    conn: asyncpg.Connection, *, orgao: str | None = None, since: str | None = None, until: str | None = None
) -> list[dict[str, Any]]:
    """Flags found per organ, signing month (``"2024-03"``) and flag, from the projection; optionally one organ
    and a month range (inclusive). :class:`CommandError` naming the argument when a month is malformed."""
    for name, month in (("since", since), ("until", until)):
        if month is not None and not _MONTH.fullmatch(month):
            raise CommandError(name, f"{month!r} is not a month (YYYY-MM)")
    rows = await conn.fetch(
        """SELECT orgao_codigo, month, flag, n FROM projection_flags_by_organ_month
            WHERE ($1::text IS NULL OR orgao_codigo = $1)
              AND ($2::text IS NULL OR month >= $2) AND ($3::text IS NULL OR month <= $3)
            ORDER BY orgao_codigo, month, flag""",
        orgao, since, until,
    )  # fmt: skip
    return [dict(r) for r in rows]


async def investigation(conn: asyncpg.Connection, inv: uuid.UUID | str) -> dict[str, Any] | None:
    """State, progress, result and (when partitioned) its children's states; None if unknown."""
    try:
        key = uuid.UUID(str(inv))
    except ValueError:
        raise CommandError("investigation_id", f"{inv!r} is not a UUID") from None
    return await queue.get_investigation(conn, key)
