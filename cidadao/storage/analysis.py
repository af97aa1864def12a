"""Contracts, sanctions and the supplier registry read from Postgres as Arrow, for the red-flag rules.

Each read is one ``COPY (SELECT ...) TO STDOUT (FORMAT csv)`` parsed by pyarrow's multi-threaded CSV reader:
the fastest path from Postgres to Arrow here (no per-row Python). Contracts are read in groups of whole
organs, so every group holds whole organ × year partitions and can go to the engine as it arrives. Query
arguments are bound through asyncpg (``copy_from_query`` quotes them on the server).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date
from typing import Any, Final

import asyncpg
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from cidadao.errors import EmptyScope
from cidadao.redflags.base import REGISTRY_SCHEMA, SANCTIONS_SCHEMA, SideData
from cidadao.redflags.frame import ANALYSIS_SCHEMA
from cidadao.redflags.stats import LOG_BIN, PricePartial

__all__ = [
    "Scope",
    "group_organs",
    "load_contracts",
    "load_price_histogram",
    "load_side",
    "no_contracts",
    "organ_counts",
    "store_tables",
]

_CONTRACTS: Final = """SELECT id, source_id, orgao_codigo, ug_codigo, object_class, modalidade, signed_on,
       initial_value::float8, final_value::float8, supplier_document
  FROM contracts WHERE {where}"""


@dataclass(frozen=True)
class Scope:
    """What an investigation covers: one organ or all, optionally one fiscal (signing) year.

    An organ's code covers the organ and every organ under it: a ministry's code (its *órgão máximo*, e.g. 26000,
    Ministério da Educação) covers the universities and agencies it supervises, as the Portal's own organ
    hierarchy (``orgaoMaximo``) says.
    """

    orgao: str | None = None
    year: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"orgao": self.orgao, "year": self.year} if self.orgao else {"all": True, "year": self.year}

    def where(self, first_arg: int = 1, *, organ: bool = True) -> tuple[str, list[Any]]:
        """SQL condition and its arguments (numbered from ``first_arg``)."""
        parts: list[str] = ["TRUE"]
        args: list[Any] = []
        if organ and self.orgao is not None:
            args.append(self.orgao)
            n = first_arg + len(args) - 1
            parts.append(_ORGAN_AND_UNDER.format(n=n))
        if self.year is not None:
            args += [date(self.year, 1, 1), date(self.year + 1, 1, 1)]
            n = first_arg + len(args)
            parts.append(f"signed_on >= ${n - 2} AND signed_on < ${n - 1}")
        return " AND ".join(parts), args


# one array computed once (an InitPlan), so the contracts are still read through (orgao_codigo, signed_on)
_ORGAN_AND_UNDER: Final = (
    "orgao_codigo = ANY(ARRAY(SELECT ${n}::text UNION SELECT codigo FROM organs WHERE orgao_maximo_codigo = ${n}))"
)


async def _copy_csv(conn: asyncpg.Connection, query: str, args: list[Any], schema: pa.Schema) -> pa.Table:
    chunks: list[bytes] = []

    async def sink(data: bytes) -> None:
        chunks.append(data)

    await conn.copy_from_query(query, *args, output=sink, format="csv")
    if not chunks:
        return schema.empty_table()
    return pacsv.read_csv(
        pa.py_buffer(b"".join(chunks)),
        read_options=pacsv.ReadOptions(column_names=schema.names),
        convert_options=pacsv.ConvertOptions(
            column_types=schema,
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
            true_values=["t"],
            false_values=["f"],
        ),
    ).cast(schema)


async def no_contracts(conn: asyncpg.Connection, scope: Scope) -> EmptyScope:
    """The error of a scope that holds no contracts (retrying cannot help), saying what the database does hold."""
    year = f" in {scope.year}" if scope.year else ""
    held = await conn.fetchrow(
        "SELECT count(*) AS n, count(DISTINCT orgao_codigo) AS organs, min(signed_on) AS first, "
        "max(signed_on) AS last FROM contracts"
    )
    where = f"orgao {scope.orgao}" if scope.orgao else "the database"
    if held is None or held["n"] == 0:
        return EmptyScope(
            f"no contracts in {where}{year}: the database holds none; ingest some first (cidadao ingest, "
            "or cidadao up --demo N)"
        )
    if scope.orgao is not None and scope.year is not None:
        organ_sql, args = Scope(scope.orgao).where()
        own = await conn.fetchrow(
            f"SELECT count(*) AS n, min(signed_on) AS first, max(signed_on) AS last FROM contracts WHERE {organ_sql}",
            *args,
        )
        if own is not None and own["n"]:
            return EmptyScope(
                f"no contracts in {where}{year}: it has {own['n']:,} contracts, signed {own['first']} to {own['last']}"
            )
    return EmptyScope(
        f"no contracts in {where}{year}: the database holds {held['n']:,} contracts of {held['organs']:,} organs, "
        f"signed {held['first']} to {held['last']} (list the organs: GET /api/v1/organs)"
    )


async def organ_counts(conn: asyncpg.Connection, scope: Scope) -> list[tuple[str, int]]:
    """(organ, contracts) in scope, in organ order."""
    where, args = scope.where()
    rows = await conn.fetch(
        f"SELECT orgao_codigo, count(*) AS n FROM contracts WHERE {where} GROUP BY 1 ORDER BY 1", *args
    )
    return [(r["orgao_codigo"], int(r["n"])) for r in rows]


def group_organs(counts: list[tuple[str, int]], rows_per_group: int) -> list[list[str]]:
    """Whole organs grouped into lists of about ``rows_per_group`` contracts each."""
    groups: list[list[str]] = []
    organs: list[str] = []
    size = 0
    for organ, n in counts:
        organs.append(organ)
        size += n
        if size >= rows_per_group:
            groups.append(organs)
            organs, size = [], 0
    if organs:
        groups.append(organs)
    return groups


async def load_contracts(conn: asyncpg.Connection, scope: Scope, organs: list[str] | None = None) -> pa.Table:
    """Contracts in ``scope`` (only ``organs`` of it when given) in :data:`ANALYSIS_SCHEMA`."""
    where, args = scope.where()
    if organs is not None:
        args.append(organs)
        where += f" AND orgao_codigo = ANY(${len(args)}::text[])"
    return await _copy_csv(conn, _CONTRACTS.format(where=where), args, ANALYSIS_SCHEMA)


async def load_side(conn: asyncpg.Connection) -> SideData:
    """Every sanction, and the registry rows that say something (opening date or status)."""
    sanctions = await _copy_csv(
        conn,
        "SELECT document, starts_on, ends_on, bars_contracting, sanction_type, registry FROM sanctions",
        [],
        SANCTIONS_SCHEMA,
    )
    registry = await _copy_csv(
        conn,
        "SELECT document, opening_date, registry_status FROM suppliers "
        "WHERE kind = 'PJ' AND (opening_date IS NOT NULL OR registry_status IS NOT NULL)",
        [],
        REGISTRY_SCHEMA,
    )
    return SideData(sanctions, registry)


async def load_price_histogram(conn: asyncpg.Connection, scope: Scope) -> PricePartial:
    """The price histogram of every organ's contracts in the scope's years, computed by Postgres.

    Peers span organs: an investigation of one organ judges its prices against every organ's contracts of
    the same class. Only the sufficient statistics (class, bin, count) cross the wire, never the rows.
    """
    where, args = scope.where(organ=False)
    rows = await conn.fetch(
        f"""SELECT object_class, floor(ln(v) / {LOG_BIN})::bigint AS bin, count(*) AS n
              FROM (SELECT object_class, COALESCE(initial_value, final_value)::float8 AS v
                      FROM contracts WHERE {where}) c
             WHERE v > 0 AND object_class IS NOT NULL GROUP BY 1, 2""",
        *args,
    )
    classes = sorted({r["object_class"] for r in rows})
    index = {c: i for i, c in enumerate(classes)}
    return PricePartial(
        classes,
        np.array([index[r["object_class"]] for r in rows], np.int64),
        np.array([r["bin"] for r in rows], np.int64),
        np.array([r["n"] for r in rows], np.int64),
    )


async def _copy_arrow(conn: asyncpg.Connection, name: str, table: pa.Table) -> None:
    buffer = io.BytesIO()
    pacsv.write_csv(table, buffer, pacsv.WriteOptions(include_header=False, quoting_style="needed"))
    buffer.seek(0)
    await conn.copy_to_table(name, source=buffer, columns=table.column_names, format="csv", null="")


async def store_tables(conn: asyncpg.Connection, contracts: pa.Table, side: SideData) -> None:
    """COPY tables already in the rules' shapes (synthetic data for benchmarks, tests, notebooks) into Postgres.

    No validation: real files go through ``cidadao ingest``. Contracts get source ``portal`` and an empty raw
    record; their organs get a row (by code only, so agency flags can name them); registry rows count as
    companies.
    """
    n = contracts.num_rows
    await _copy_arrow(conn, "contracts", pa.table({
        "source": pa.array(["portal"] * n), "source_id": contracts["contract_id"], "orgao_codigo": contracts["orgao"],
        "ug_codigo": contracts["ug"], "object_class": contracts["object_class"], "modalidade": contracts["modalidade"],
        "signed_on": contracts["signed_on"], "initial_value": contracts["initial_value"],
        "final_value": contracts["final_value"], "supplier_document": contracts["supplier"],
        "raw": pa.array(["{}"] * n),
    }))  # fmt: skip
    await conn.execute(
        "INSERT INTO organs (codigo) SELECT DISTINCT unnest($1::text[]) ON CONFLICT DO NOTHING",
        pc.unique(contracts["orgao"]).to_pylist(),
    )
    s = side.sanctions
    await _copy_arrow(conn, "sanctions", pa.table({
        "registry": s["registry"], "source_id": pa.array([str(i) for i in range(s.num_rows)]),
        "document": s["document"], "sanction_type": s["sanction_type"], "bars_contracting": s["bars_contracting"],
        "starts_on": s["starts_on"], "ends_on": s["ends_on"], "raw": pa.array(["{}"] * s.num_rows),
    }))  # fmt: skip
    r = side.registry.filter(pc.is_valid(side.registry["document"]))
    await _copy_arrow(conn, "suppliers", pa.table({
        "document": r["document"], "kind": pa.array(["PJ"] * r.num_rows), "opening_date": r["opening_date"],
        "registry_status": r["registry_status"],
    }))  # fmt: skip
