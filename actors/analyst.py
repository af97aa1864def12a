"""The ``Analyst`` agent: patterns across contracts that no single red flag shows.

Four views of a scope (one organ or all, optionally one year), each one SQL statement that Postgres
aggregates (only the answer crosses the wire):

- ``top_suppliers``: the biggest suppliers by spend and their share of the scope's spend, year by year;
- ``spend_by_month``: contracts and spend per month;
- ``suppliers_across_organs``: suppliers that win contracts in many organs;
- ``price_dispersion``: object classes that different organs buy at very different median prices.

Spend is the final value, else the initial one, as in the red-flag rules.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import asyncpg

from actors._database import AgentDatabase
from actors._health import health_of
from cidadao.settings import Settings
from cidadao.storage.analysis import Scope

__all__ = ["Analyst"]

_SPEND = "COALESCE(final_value, initial_value)"


class Analyst:
    kind = "analyst"

    def __init__(self, settings: Settings, name: str | None = None) -> None:
        self.settings = settings
        self.name = name or f"analyst-{uuid.uuid4().hex[:8]}"
        self.tasks_done = 0
        self.started_at = time.time()
        self._database = AgentDatabase(settings, read_only=True, max_size=2)

    async def close(self) -> None:
        await self._database.close()

    async def health(self) -> dict[str, Any]:
        return health_of(self.name, self.kind, self.started_at, self.tasks_done)

    async def analyze(
        self, scope: dict[str, Any], *, top: int = 10, min_organs: int = 3, min_contracts: int = 5
    ) -> dict[str, Any]:
        """Every view of ``scope`` (``{"orgao": ..., "year": ...}``; no ``orgao``: all organs)."""
        s = Scope(scope.get("orgao"), scope.get("year"))
        where, args = s.where()
        pool = await self._database.pool()
        async with pool.acquire() as conn:
            out = {
                "scope": s.as_dict(),
                "top_suppliers": await self._top_suppliers(conn, where, args, top),
                "spend_by_month": await self._spend_by_month(conn, where, args),
                "suppliers_across_organs": await self._across_organs(conn, where, args, top, min_organs),
                "price_dispersion": await self._price_dispersion(conn, where, args, top, min_contracts),
            }
        self.tasks_done += 1
        return out

    async def _top_suppliers(self, conn: asyncpg.Connection, where: str, args: list[Any], top: int) -> list[Any]:
        n = len(args)
        rows = await conn.fetch(
            f"""WITH c AS (SELECT supplier_document AS doc, extract(year FROM signed_on)::int AS year,
                                  {_SPEND}::float8 AS spend
                             FROM contracts WHERE {where} AND supplier_document IS NOT NULL AND {_SPEND} > 0),
                     best AS (SELECT doc, sum(spend) AS total FROM c GROUP BY doc ORDER BY total DESC, doc
                              LIMIT ${n + 1}),
                     yearly AS (SELECT year, sum(spend) AS spend FROM c GROUP BY year)
               SELECT b.doc, b.total, c.year, sum(c.spend) AS spend, y.spend AS year_spend
                 FROM best b JOIN c ON c.doc = b.doc JOIN yearly y ON y.year = c.year
                GROUP BY b.doc, b.total, c.year, y.spend ORDER BY b.total DESC, b.doc, c.year""",
            *args, top,
        )  # fmt: skip
        out: dict[str, dict[str, Any]] = {}
        for r in rows:
            entry = out.setdefault(r["doc"], {"supplier": r["doc"], "spend": round(r["total"], 2), "by_year": []})
            share = r["spend"] / r["year_spend"] if r["year_spend"] else 0.0
            entry["by_year"].append({"year": r["year"], "spend": round(r["spend"], 2), "share": round(share, 4)})
        return list(out.values())

    async def _spend_by_month(self, conn: asyncpg.Connection, where: str, args: list[Any]) -> list[Any]:
        rows = await conn.fetch(
            f"""SELECT to_char(date_trunc('month', signed_on), 'YYYY-MM') AS month, count(*) AS contracts,
                       COALESCE(sum({_SPEND}) FILTER (WHERE {_SPEND} > 0), 0)::float8 AS spend
                  FROM contracts WHERE {where} GROUP BY 1 ORDER BY 1""",
            *args,
        )
        return [{"month": r["month"], "contracts": r["contracts"], "spend": round(r["spend"], 2)} for r in rows]

    async def _across_organs(
        self, conn: asyncpg.Connection, where: str, args: list[Any], top: int, min_organs: int
    ) -> list[Any]:
        n = len(args)
        rows = await conn.fetch(
            f"""SELECT supplier_document AS doc, count(DISTINCT orgao_codigo) AS organs, count(*) AS contracts,
                       COALESCE(sum({_SPEND}), 0)::float8 AS spend
                  FROM contracts WHERE {where} AND supplier_document IS NOT NULL
                 GROUP BY 1 HAVING count(DISTINCT orgao_codigo) >= ${n + 1}
                 ORDER BY organs DESC, spend DESC, doc LIMIT ${n + 2}""",
            *args, min_organs, top,
        )  # fmt: skip
        return [
            {"supplier": r["doc"], "organs": r["organs"], "contracts": r["contracts"], "spend": round(r["spend"], 2)}
            for r in rows
        ]

    async def _price_dispersion(
        self, conn: asyncpg.Connection, where: str, args: list[Any], top: int, min_contracts: int
    ) -> list[Any]:
        """Object classes whose per-organ median price varies most (max / min of the organs' medians)."""
        n = len(args)
        rows = await conn.fetch(
            f"""WITH per_organ AS (
                    SELECT object_class, orgao_codigo,
                           percentile_cont(0.5) WITHIN GROUP (ORDER BY {_SPEND}::float8) AS median, count(*) AS n
                      FROM contracts WHERE {where} AND object_class IS NOT NULL AND {_SPEND} > 0
                     GROUP BY 1, 2 HAVING count(*) >= ${n + 1})
                SELECT object_class, count(*) AS organs, min(median) AS low, max(median) AS high,
                       (array_agg(orgao_codigo ORDER BY median, orgao_codigo))[1] AS cheapest,
                       (array_agg(orgao_codigo ORDER BY median DESC, orgao_codigo))[1] AS dearest
                  FROM per_organ GROUP BY 1 HAVING count(*) >= 2
                 ORDER BY max(median) / min(median) DESC, object_class LIMIT ${n + 2}""",
            *args, min_contracts, top,
        )  # fmt: skip
        return [
            {
                "object_class": r["object_class"], "organs": r["organs"], "ratio": round(r["high"] / r["low"], 3),
                "lowest_median": round(r["low"], 2), "highest_median": round(r["high"], 2),
                "cheapest_orgao": r["cheapest"], "dearest_orgao": r["dearest"],
            }
            for r in rows
        ]  # fmt: skip
