"""Queries: the read side (CQRS). Reads never change state; they come from read models and the cache.

``flags_by_organ_month`` reads the projection kept from ``investigation.completed`` events
(:mod:`cidadao.events.projections`) — one indexed range scan whatever the size of the flags table; an
investigation's status is its row in the queue (:mod:`cidadao.storage.queue`), which is the state itself.
Commands (:mod:`cidadao.commands`) are the only writers.
"""

from __future__ import annotations

import base64
import re
import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any, Final

import asyncpg
import orjson

from cidadao.errors import CommandError
from cidadao.storage import queue

__all__ = [
    "CONTRACT_COLUMNS",
    "SOURCES",
    "SOURCE_ID_MAX",
    "SUPPLIER_COLUMNS",
    "ContractSearch",
    "contract",
    "contracts_by_source_id",
    "contracts_of",
    "decode_cursor",
    "encode_cursor",
    "flags_by_organ_month",
    "investigation",
    "organ",
    "organs",
    "search_contracts",
    "search_flags",
    "supplier",
    "suppliers",
]

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


# --- the API's searches ---------------------------------------------------------------------------------------
# Every search pages by keyset (a cursor naming the last row seen), never by OFFSET: page 1,000 costs what page 1
# costs. Filters are bound parameters; only the fixed SQL fragments below are ever concatenated.

CONTRACT_COLUMNS: Final = """c.id, c.source, c.source_id, c.numero, c.objeto, c.object_class, c.modalidade,
    c.situacao, c.signed_on::text AS signed_on, c.starts_on::text AS starts_on, c.ends_on::text AS ends_on,
    c.initial_value::float8 AS initial_value, c.final_value::float8 AS final_value, c.supplier_document,
    c.supplier_name, c.ug_codigo, c.orgao_codigo, c.uf"""
# contracts.source's CHECK. A source id is unique per source (the natural key (source, source_id)); naming every
# source lets that key's index find a source id alone (three probes) with no index of its own.
SOURCES: Final = ("portal", "pncp", "csv")
SOURCE_ID_MAX: Final = 120  # the ingest refuses longer source ids (cidadao.contracts.mappers)


def encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(values)).decode().rstrip("=")


def decode_cursor(cursor: str, shape: tuple[type, ...]) -> list[Any]:
    """The values a cursor names; :class:`CommandError` on ``cursor`` if it is not one of ours."""
    try:
        values = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        raise CommandError("cursor", "is not a cursor this API gave") from None
    if (
        not isinstance(values, list)
        or len(values) != len(shape)
        or not all(isinstance(v, t) and not isinstance(v, bool) for v, t in zip(values, shape, strict=True))
    ):
        raise CommandError("cursor", "is not a cursor this API gave")
    return values


@dataclass(frozen=True)
class ContractSearch:
    """The filters of ``GET /api/v1/contracts``; every one optional, all of them ANDed."""

    orgao: str | None = None
    ug: str | None = None
    supplier: str | None = None
    object_class: str | None = None
    flag: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    value_min: float | None = None
    value_max: float | None = None
    source_id: str | None = None  # the source's own id (Portal `id`, PNCP `numeroControlePNCP`)

    def check(self, max_days: int) -> None:
        if self.source_id is not None and not 1 <= len(self.source_id) <= SOURCE_ID_MAX:
            raise CommandError("source_id", f"must be 1 to {SOURCE_ID_MAX} characters")
        if self.date_from and self.date_to:
            if self.date_from > self.date_to:
                raise CommandError("date_to", "must not be before date_from")
            if (self.date_to - self.date_from).days > max_days:
                raise CommandError("date_to", f"a date range spans at most {max_days} days")
        if self.value_min is not None and self.value_max is not None and self.value_min > self.value_max:
            raise CommandError("value_max", "must not be below value_min")


async def search_contracts(
    conn: asyncpg.Connection, s: ContractSearch, *, limit: int, cursor: str | None = None
) -> dict[str, Any]:
    """Contracts newest signed first, ``limit`` at a time; ``next`` is the cursor of the following page."""
    where: list[str] = []
    args: list[Any] = []

    def bind(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    for column, value in (("c.orgao_codigo", s.orgao), ("c.ug_codigo", s.ug), ("c.supplier_document", s.supplier),
                          ("c.object_class", s.object_class)):  # fmt: skip
        if value is not None:
            where.append(f"{column} = {bind(value)}")
    if s.date_from is not None:
        where.append(f"c.signed_on >= {bind(s.date_from)}")
    if s.date_to is not None:
        where.append(f"c.signed_on <= {bind(s.date_to)}")
    if s.value_min is not None:
        where.append(f"c.final_value >= {bind(s.value_min)}")
    if s.value_max is not None:
        where.append(f"c.final_value <= {bind(s.value_max)}")
    if s.source_id is not None:
        where.append(f"c.source = ANY({bind(list(SOURCES))}::text[]) AND c.source_id = {bind(s.source_id)}")
    if s.flag is not None:
        where.append(f"c.id IN (SELECT f.contract_id FROM flags f WHERE f.flag = {bind(s.flag)})")
    if cursor is not None:
        signed, last_id = decode_cursor(cursor, (str, int))
        try:
            signed_on = date.fromisoformat(signed)
        except ValueError:
            raise CommandError("cursor", "is not a cursor this API gave") from None
        where.append(f"(c.signed_on, c.id) < ({bind(signed_on)}, {bind(last_id)})")
    sql = f"""SELECT {CONTRACT_COLUMNS} FROM contracts c {"WHERE " + " AND ".join(where) if where else ""}
               ORDER BY c.signed_on DESC, c.id DESC LIMIT {bind(limit + 1)}"""
    rows = [dict(r) for r in await conn.fetch(sql, *args)]
    page, more = rows[:limit], len(rows) > limit
    nxt = encode_cursor([page[-1]["signed_on"], page[-1]["id"]]) if more and page else None
    return {"contracts": page, "next": nxt}


async def contract(conn: asyncpg.Connection, contract_id: int) -> dict[str, Any] | None:
    """One contract with its flags (each flag's latest finding) and its supplier's active sanctions."""
    row = await conn.fetchrow(f"SELECT {CONTRACT_COLUMNS} FROM contracts c WHERE c.id = $1", contract_id)
    if row is None:
        return None
    out = dict(row)
    flags = await conn.fetch(
        """SELECT DISTINCT ON (flag) flag, severity, score, evidence, basis, investigation_id::text AS investigation_id,
                  created_at
             FROM flags WHERE contract_id = $1 ORDER BY flag, created_at DESC""",
        contract_id,
    )
    out["flags"] = [_with_evidence(r) for r in flags]
    return out


async def contracts_by_source_id(conn: asyncpg.Connection, source_id: str) -> list[dict[str, Any]]:
    """The contracts (``id``, ``source``, ``source_id``) whose source's own id is ``source_id`` — one per source
    at most (the natural key), in id order."""
    rows = await conn.fetch(
        "SELECT id, source, source_id FROM contracts WHERE source = ANY($1::text[]) AND source_id = $2 ORDER BY id",
        list(SOURCES), source_id,
    )  # fmt: skip
    return [dict(r) for r in rows]


def _with_evidence(r: asyncpg.Record) -> dict[str, Any]:
    out = dict(r)
    if isinstance(out.get("evidence"), str):
        out["evidence"] = orjson.loads(out["evidence"])
    return out


async def organs(conn: asyncpg.Connection, *, limit: int, cursor: str | None = None) -> dict[str, Any]:
    after = decode_cursor(cursor, (str,))[0] if cursor else None
    rows = await conn.fetch(
        """SELECT codigo, sigla, nome, cnpj, orgao_maximo_codigo, orgao_maximo_sigla, orgao_maximo_nome FROM organs
            WHERE ($1::text IS NULL OR codigo > $1) ORDER BY codigo LIMIT $2""",
        after, limit + 1,
    )  # fmt: skip
    page = [dict(r) for r in rows[:limit]]
    return {"organs": page, "next": encode_cursor([page[-1]["codigo"]]) if len(rows) > limit else None}


async def organ(conn: asyncpg.Connection, codigo: str) -> dict[str, Any] | None:
    """An organ with its contracts' count, total value and date span, and its management units."""
    row = await conn.fetchrow(
        """SELECT codigo, sigla, nome, cnpj, orgao_maximo_codigo, orgao_maximo_sigla, orgao_maximo_nome FROM organs
            WHERE codigo = $1""",
        codigo,
    )
    if row is None:
        return None
    out = dict(row)
    totals = await conn.fetchrow(
        """SELECT count(*) AS contracts, coalesce(sum(final_value), 0)::float8 AS total_value,
                  min(signed_on)::text AS first_signed, max(signed_on)::text AS last_signed
             FROM contracts WHERE orgao_codigo = $1""",
        codigo,
    )
    out.update(dict(totals))
    units = await conn.fetch(
        "SELECT codigo, nome, uf, municipio FROM management_units WHERE orgao_codigo = $1 ORDER BY codigo LIMIT 1000",
        codigo,
    )
    out["management_units"] = [dict(u) for u in units]
    return out


SUPPLIER_COLUMNS: Final = """s.document, s.kind, s.name, s.legal_name, s.opening_date::text AS opening_date,
    s.registry_status"""


async def suppliers(
    conn: asyncpg.Connection, *, limit: int, cursor: str | None = None, sanctioned: bool | None = None
) -> dict[str, Any]:
    after = decode_cursor(cursor, (str,))[0] if cursor else None
    rows = await conn.fetch(
        f"""SELECT {SUPPLIER_COLUMNS} FROM suppliers s
             WHERE ($1::text IS NULL OR s.document > $1)
               AND ($2::bool IS NULL OR EXISTS (SELECT 1 FROM sanctions x WHERE x.document = s.document) = $2)
             ORDER BY s.document LIMIT $3""",
        after, sanctioned, limit + 1,
    )  # fmt: skip
    page = [dict(r) for r in rows[:limit]]
    return {"suppliers": page, "next": encode_cursor([page[-1]["document"]]) if len(rows) > limit else None}


async def supplier(conn: asyncpg.Connection, document: str, *, contracts: int = 20) -> dict[str, Any] | None:
    """A supplier with its newest contracts (``contracts`` of them; the rest through the contract search),
    its totals and its sanctions (CEIS/CNEP)."""
    row = await conn.fetchrow(f"SELECT {SUPPLIER_COLUMNS} FROM suppliers s WHERE s.document = $1", document)
    if row is None:
        return None
    out = dict(row)
    totals = await conn.fetchrow(
        """SELECT count(*) AS contracts, coalesce(sum(final_value), 0)::float8 AS total_value,
                  count(DISTINCT orgao_codigo) AS organs FROM contracts WHERE supplier_document = $1""",
        document,
    )
    out["totals"] = dict(totals)
    out["contracts"] = (await search_contracts(conn, ContractSearch(supplier=document), limit=contracts))["contracts"]
    sanctions = await conn.fetch(
        """SELECT registry, source_id, sanction_type, sanction_detail, bars_contracting, starts_on::text AS starts_on,
                  ends_on::text AS ends_on, sanctioning_body, sanctioning_uf, fine_value::float8 AS fine_value
             FROM sanctions WHERE document = $1 ORDER BY starts_on DESC NULLS LAST""",
        document,
    )
    out["sanctions"] = [dict(r) for r in sanctions]
    return out


async def search_flags(
    conn: asyncpg.Connection, *, limit: int, cursor: str | None = None, investigation_id: uuid.UUID | None = None,
    flag: str | None = None, severity: str | None = None, orgao: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Flags newest first; an organ's are its agency flags and its contracts' flags. A contract flag names its
    contract by ``contract_id`` (``contracts.id``, what ``GET /api/v1/contracts/{id}`` answers) with the source's
    own ``source`` and ``source_id`` beside it; an agency flag has none of the three."""
    after = decode_cursor(cursor, (int,))[0] if cursor else None
    rows = await conn.fetch(
        """SELECT f.id, f.investigation_id::text AS investigation_id, f.level, f.contract_id, c.source, c.source_id,
                  coalesce(f.orgao_codigo, c.orgao_codigo) AS orgao_codigo, f.flag, f.severity, f.score, f.evidence,
                  f.basis, f.created_at
             FROM flags f LEFT JOIN contracts c ON c.id = f.contract_id
            WHERE ($1::bigint IS NULL OR f.id < $1) AND ($2::uuid IS NULL OR f.investigation_id = $2)
              AND ($3::text IS NULL OR f.flag = $3) AND ($4::text IS NULL OR f.severity = $4)
              AND ($5::text IS NULL OR coalesce(f.orgao_codigo, c.orgao_codigo) = $5)
            ORDER BY f.id DESC LIMIT $6""",
        after, investigation_id, flag, severity, orgao, limit + 1,
    )  # fmt: skip
    page = [_with_evidence(r) for r in rows[:limit]]
    return {"flags": page, "next": encode_cursor([page[-1]["id"]]) if len(rows) > limit else None}
