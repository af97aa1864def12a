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

__all__ = ["contracts_of", "flags_by_organ_month", "investigation"]

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


async def contracts_of(
    conn: asyncpg.Connection, orgao: str, *, year: int | None = None, limit: int = 100, offset: int = 0
) -> dict[str, Any]:
    """An organ's contracts (newest signed first), a page of them and how many there are in all."""
    if not (orgao.isdigit() and len(orgao) in (5, 14)):
        raise CommandError("orgao", "must be a 5-digit SIAFI code or a 14-digit CNPJ")
    if not 1 <= limit <= 1000:
        raise CommandError("limit", "must be between 1 and 1000")
    if offset < 0:
        raise CommandError("offset", "must not be negative")
    where = "orgao_codigo = $1 AND ($2::int IS NULL OR extract(year FROM signed_on)::int = $2)"
    total = await conn.fetchval(f"SELECT count(*) FROM contracts WHERE {where}", orgao, year)
    rows = await conn.fetch(
        f"""SELECT source, source_id, numero, objeto, object_class, modalidade, signed_on::text AS signed_on,
                   initial_value::float8 AS initial_value, final_value::float8 AS final_value,
                   supplier_document, supplier_name, ug_codigo, uf
              FROM contracts WHERE {where} ORDER BY signed_on DESC, id DESC LIMIT $3 OFFSET $4""",
        orgao, year, limit, offset,
    )  # fmt: skip
    return {"orgao": orgao, "year": year, "total": total, "limit": limit, "offset": offset,
            "contracts": [dict(r) for r in rows]}  # fmt: skip
