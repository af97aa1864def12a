"""Investigations and their flags in Postgres: created running, then completed (flags stored) or failed."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import orjson

from cidadao.redflags.sweep import SweepResult

__all__ = ["complete_investigation", "create_investigation", "fail_investigation", "insert_flags"]


async def create_investigation(
    conn: asyncpg.Connection, scope: dict[str, Any], user_id: str | None = None
) -> uuid.UUID:
    """A new investigation, status ``running``."""
    inv = uuid.uuid4()
    await conn.execute(
        "INSERT INTO investigations (id, status, user_id, scope, started_at) VALUES ($1, 'running', $2, $3, now())",
        inv,
        user_id,
        orjson.dumps(scope).decode(),
    )
    return inv


async def insert_flags(conn: asyncpg.Connection, inv: uuid.UUID, result: SweepResult) -> None:
    """COPY every flag of ``result`` into ``flags`` (contract flags need the stored contract's id)."""
    t = result.flag_table
    contract_rows = [
        (inv, "contract", db_id, None, flag, severity, score, evidence, basis)
        for db_id, flag, severity, score, evidence, basis in zip(
            *(t[c].to_pylist() for c in ("db_id", "flag", "severity", "score", "evidence", "basis")), strict=True)
        if db_id
    ]  # fmt: skip
    agency_rows = [
        (inv, "agency", None, a.orgao, a.flag, a.severity, a.score, orjson.dumps(a.evidence).decode(), a.basis)
        for a in result.agency_flags
    ]
    columns = ["investigation_id", "level", "contract_id", "orgao_codigo", "flag", "severity", "score", "evidence",
               "basis"]  # fmt: skip
    if contract_rows or agency_rows:
        await conn.copy_records_to_table("flags", records=contract_rows + agency_rows, columns=columns)


async def complete_investigation(
    conn: asyncpg.Connection, inv: uuid.UUID, result: SweepResult, summary: dict[str, Any]
) -> None:
    """Store every flag and mark the investigation completed, in one transaction."""
    async with conn.transaction():
        await insert_flags(conn, inv, result)
        await conn.execute(
            "UPDATE investigations SET status = 'completed', progress = 1, finished_at = now(), result = $2 "
            "WHERE id = $1",
            inv,
            orjson.dumps(summary).decode(),
        )


async def fail_investigation(conn: asyncpg.Connection, inv: uuid.UUID, error: str) -> None:
    await conn.execute(
        "UPDATE investigations SET status = 'failed', finished_at = now(), error = $2 WHERE id = $1", inv, error[:2000]
    )
