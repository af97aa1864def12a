"""Reads of many keys in one query, for DataLoaders: whatever the number of parents a GraphQL level holds, each
nested list costs one query. Each returns one answer per key, in the keys' order (empty or None when absent).
A contract flag names its contract by ``contract_id`` (``contracts.id``) with its ``source`` and ``source_id``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import asyncpg
import orjson

from cidadao.queries import CONTRACT_COLUMNS, SUPPLIER_COLUMNS

__all__ = [
    "contracts_by_id",
    "contracts_of_organs",
    "contracts_of_suppliers",
    "flags_of_contracts",
    "flags_of_investigations",
    "organs_by_code",
    "sanctions_of",
    "suppliers_by_document",
]


def _by(rows: Sequence[Any], column: str, keys: Sequence[Any]) -> list[list[dict[str, Any]]]:
    """Rows grouped under ``keys`` by ``column`` (compared as text: UUIDs and strings alike)."""
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        out = dict(r)
        if isinstance(out.get("evidence"), str):
            out["evidence"] = orjson.loads(out["evidence"])
        grouped[str(out[column])].append(out)
    return [grouped.get(str(k), []) for k in keys]


def _one(rows: Sequence[asyncpg.Record], column: str, keys: Sequence[Any]) -> list[dict[str, Any] | None]:
    found = {r[column]: dict(r) for r in rows}
    return [found.get(k) for k in keys]


async def contracts_by_id(conn: asyncpg.Connection, ids: Sequence[int]) -> list[dict[str, Any] | None]:
    rows = await conn.fetch(f"SELECT {CONTRACT_COLUMNS} FROM contracts c WHERE c.id = ANY($1::bigint[])", list(ids))
    return _one(rows, "id", ids)


async def organs_by_code(conn: asyncpg.Connection, codes: Sequence[str]) -> list[dict[str, Any] | None]:
    rows = await conn.fetch(
        """SELECT codigo, sigla, nome, cnpj, orgao_maximo_codigo, orgao_maximo_sigla, orgao_maximo_nome
             FROM organs WHERE codigo = ANY($1::text[])""",
        list(codes),
    )
    return _one(rows, "codigo", codes)


async def suppliers_by_document(conn: asyncpg.Connection, docs: Sequence[str]) -> list[dict[str, Any] | None]:
    rows = await conn.fetch(
        f"SELECT {SUPPLIER_COLUMNS} FROM suppliers s WHERE s.document = ANY($1::text[])", list(docs)
    )
    return _one(rows, "document", docs)


async def flags_of_contracts(conn: asyncpg.Connection, ids: Sequence[int]) -> list[list[dict[str, Any]]]:
    """Each contract's flags, each flag's latest finding."""
    rows = await conn.fetch(
        """SELECT DISTINCT ON (f.contract_id, f.flag) f.contract_id, c.source, c.source_id, f.flag, f.severity,
                  f.score, f.evidence, f.basis, f.investigation_id::text AS investigation_id, f.created_at
             FROM flags f JOIN contracts c ON c.id = f.contract_id
            WHERE f.contract_id = ANY($1::bigint[]) ORDER BY f.contract_id, f.flag, f.created_at DESC""",
        list(ids),
    )
    return _by(rows, "contract_id", ids)


async def flags_of_investigations(
    conn: asyncpg.Connection, keys: Sequence[tuple[str, int]]
) -> list[list[dict[str, Any]]]:
    """Up to ``n`` flags of each investigation (``(id, n)`` keys), strongest first."""
    ids = sorted({k[0] for k in keys})
    limit = max((k[1] for k in keys), default=0)
    rows = await conn.fetch(
        """SELECT x.investigation_id, f.* FROM unnest($1::uuid[]) AS x(investigation_id),
                  LATERAL (SELECT g.id, g.level, g.contract_id, c.source, c.source_id, g.orgao_codigo, g.flag,
                                  g.severity, g.score, g.evidence, g.basis, g.created_at
                             FROM (SELECT * FROM flags f WHERE f.investigation_id = x.investigation_id
                                    ORDER BY f.score DESC, f.id LIMIT $2) g
                             LEFT JOIN contracts c ON c.id = g.contract_id ORDER BY g.score DESC, g.id) f""",
        ids, limit,
    )  # fmt: skip
    grouped = _by(rows, "investigation_id", [k[0] for k in keys])
    return [g[:n] for g, (_, n) in zip(grouped, keys, strict=True)]


async def _newest_contracts(
    conn: asyncpg.Connection, column: str, keys: Sequence[tuple[str, int]]
) -> list[list[dict[str, Any]]]:
    values = sorted({k[0] for k in keys})
    limit = max((k[1] for k in keys), default=0)
    rows = await conn.fetch(
        f"""SELECT x.key AS parent_key, c.* FROM unnest($1::text[]) AS x(key),
                   LATERAL (SELECT {CONTRACT_COLUMNS} FROM contracts c WHERE c.{column} = x.key
                             ORDER BY c.signed_on DESC, c.id DESC LIMIT $2) c""",
        values, limit,
    )  # fmt: skip
    grouped = _by(rows, "parent_key", [k[0] for k in keys])
    out = []
    for group, (_, n) in zip(grouped, keys, strict=True):
        out.append([{k: v for k, v in row.items() if k != "parent_key"} for row in group[:n]])
    return out


async def contracts_of_organs(conn: asyncpg.Connection, keys: Sequence[tuple[str, int]]) -> list[list[dict[str, Any]]]:
    """The newest ``n`` contracts of each organ (``(codigo, n)`` keys)."""
    return await _newest_contracts(conn, "orgao_codigo", keys)


async def contracts_of_suppliers(
    conn: asyncpg.Connection, keys: Sequence[tuple[str, int]]
) -> list[list[dict[str, Any]]]:
    """The newest ``n`` contracts of each supplier (``(document, n)`` keys)."""
    return await _newest_contracts(conn, "supplier_document", keys)


async def sanctions_of(conn: asyncpg.Connection, docs: Sequence[str]) -> list[list[dict[str, Any]]]:
    rows = await conn.fetch(
        """SELECT document, registry, source_id, sanction_type, bars_contracting, starts_on::text AS starts_on,
                  ends_on::text AS ends_on, sanctioning_body, fine_value::float8 AS fine_value
             FROM sanctions WHERE document = ANY($1::text[]) ORDER BY document, starts_on DESC NULLS LAST""",
        list(docs),
    )
    return _by(rows, "document", docs)
