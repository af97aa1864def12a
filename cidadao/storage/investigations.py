"""Investigations' flags in Postgres: stored in one COPY, read back in the ``cidadao investigate --json`` shape."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import orjson

from cidadao.redflags.sweep import SweepResult

__all__ = ["insert_flags", "load_result"]


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


async def load_result(conn: asyncpg.Connection, inv: uuid.UUID) -> dict[str, Any] | None:
    """A completed investigation in the ``cidadao investigate --json`` shape, read back from its rows.

    A contract flag names its contract as every API answer does: ``contract_id`` is ``contracts.id`` (what
    ``GET /api/v1/contracts/{id}`` answers), with the source's own ``source`` and ``source_id`` (Portal ``id``,
    PNCP ``numeroControlePNCP``) beside it."""
    row = await conn.fetchrow("SELECT id, scope, status, result, error FROM investigations WHERE id = $1", inv)
    if row is None:
        return None
    summary = orjson.loads(row["result"]) if row["result"] is not None else {}
    # a partitioned investigation's flags are its children's
    ids = [inv, *(r["id"] for r in await conn.fetch("SELECT id FROM investigations WHERE parent_id = $1", inv))]
    flags = await conn.fetch(
        """SELECT f.contract_id, c.source, c.source_id, f.flag, f.severity, f.score, f.evidence, f.basis
             FROM flags f JOIN contracts c ON c.id = f.contract_id
            WHERE f.investigation_id = ANY($1::uuid[]) AND f.level = 'contract' ORDER BY f.contract_id, f.flag""",
        ids,
    )
    agency = await conn.fetch(
        """SELECT orgao_codigo AS orgao, flag, severity, score, evidence, basis FROM flags
            WHERE investigation_id = ANY($1::uuid[]) AND level = 'agency' ORDER BY orgao_codigo, flag""",
        ids,
    )

    def as_dict(r: asyncpg.Record) -> dict[str, Any]:
        out = dict(r)
        out["evidence"] = orjson.loads(out["evidence"])
        return out

    return {
        "investigation_id": str(row["id"]), "status": row["status"], "error": row["error"],
        "scope": orjson.loads(row["scope"]), "contracts_analyzed": summary.get("contracts_analyzed", 0),
        "seconds": summary.get("seconds"), "flags": [as_dict(r) for r in flags],
        "agency_flags": [as_dict(r) for r in agency], "insufficient": summary.get("insufficient", {}),
    }  # fmt: skip
