"""The API's searches straight from Postgres over a large table: P50/P90 per filter and the plan (EXPLAIN)."""

from __future__ import annotations

import asyncio
import random
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import orjson

from bench.scratch import scratch_database
from cidadao import queries
from cidadao.contracts.synthetic_tables import generate_tables
from cidadao.queries import ContractSearch
from cidadao.redflags import SideData
from cidadao.settings import Settings
from cidadao.storage.analysis import store_tables
from cidadao.storage.postgres import apply_migrations, connect

__all__ = ["search_benchmark"]

DRAWS = 100


async def _fill(dsn: str, n: int) -> None:
    table, sanctions, registry = generate_tables(n, 9)
    conn = await connect(dsn)
    try:
        await apply_migrations(conn)
        await store_tables(conn, table, SideData(sanctions, registry))
        # flags on ~3 % of contracts, as completed investigations leave them
        inv = uuid.uuid4()
        await conn.execute("INSERT INTO investigations (id, status, scope) VALUES ($1, 'completed', '{}')", inv)
        await conn.execute(
            """INSERT INTO flags (investigation_id, level, contract_id, flag, severity, score, evidence, basis)
               SELECT $1, 'contract', id, (ARRAY['price_outlier', 'new_supplier', 'year_end_rush'])[1 + id % 3],
                      'medium', 0.5, '{}', 'bench'
                 FROM contracts WHERE id % 33 = 0""",
            inv,
        )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


def _plan_nodes(plan: dict[str, Any]) -> list[str]:
    out = [plan["Node Type"] + (f" using {plan['Index Name']}" if "Index Name" in plan else "")]
    for child in plan.get("Plans", []):
        out += _plan_nodes(child)
    return out


async def _run(dsn: str, echo: Callable[[str], None]) -> dict[str, Any]:
    conn = await connect(dsn)
    rng = random.Random(3)
    try:
        pick = await conn.fetch("SELECT orgao_codigo, ug_codigo, supplier_document, object_class FROM contracts "
                                "ORDER BY random() LIMIT 2000")  # fmt: skip
        lo, hi = await conn.fetchrow("SELECT min(signed_on), max(signed_on) FROM contracts")

        def day() -> date:
            picked: date = lo + timedelta(days=rng.randrange((hi - lo).days))
            return picked

        def between() -> tuple[date, date]:
            start = day()
            return start, start + timedelta(days=90)

        def row() -> Any:
            return pick[rng.randrange(len(pick))]

        cases: dict[str, Callable[[], ContractSearch]] = {
            "orgao": lambda: ContractSearch(orgao=row()["orgao_codigo"]),
            "ug": lambda: ContractSearch(ug=row()["ug_codigo"]),
            "supplier": lambda: ContractSearch(supplier=row()["supplier_document"]),
            "object_class": lambda: ContractSearch(object_class=row()["object_class"]),
            "flag": lambda: ContractSearch(flag=rng.choice(["price_outlier", "new_supplier", "year_end_rush"])),
            "date_range": lambda: ContractSearch(date_from=(d := between())[0], date_to=d[1]),
            "value_range": lambda: ContractSearch(value_min=(v := rng.uniform(1e3, 1e6)), value_max=v * 1.05),
            "orgao_and_dates": lambda: ContractSearch(
                orgao=row()["orgao_codigo"], date_from=(d := between())[0], date_to=d[1]
            ),
            "none": lambda: ContractSearch(),
        }
        out: dict[str, Any] = {}
        for name, make in cases.items():
            times, pages = [], []
            for i in range(DRAWS):
                s = make()
                cursor = None
                if i % 2:  # every other draw reads its second page
                    first = await queries.search_contracts(conn, s, limit=50)
                    cursor = first["next"]
                started = time.perf_counter()
                page = await queries.search_contracts(conn, s, limit=50, cursor=cursor)
                times.append(time.perf_counter() - started)
                pages.append(len(page["contracts"]))
            plan = await _explain(conn, make())
            ordered = sorted(times)
            out[name] = {
                "p50_ms": round(1000 * statistics.median(times), 2),
                "p90_ms": round(1000 * ordered[int(0.9 * len(ordered))], 2),
                "max_ms": round(1000 * ordered[-1], 2), "mean_rows": round(statistics.mean(pages), 1),
                "plan": plan, "uses_index": any("Index" in node for node in plan),
            }  # fmt: skip
            r = out[name]
            echo(f"  search {name:16} p50 {r['p50_ms']:>7.2f} ms  p90 {r['p90_ms']:>7.2f} ms  "
                 f"index: {r['uses_index']}  plan: {' > '.join(plan[:4])}")  # fmt: skip
        return out
    finally:
        await conn.close()


async def _explain(conn: Any, s: ContractSearch) -> list[str]:
    """The plan of the query ``search_contracts`` runs for ``s`` (first page)."""
    captured: list[tuple[str, tuple[Any, ...]]] = []

    class Recorder:
        async def fetch(self, sql: str, *args: Any) -> list[Any]:
            captured.append((sql, args))
            return []

    recorder: Any = Recorder()  # records the SQL, runs nothing
    await queries.search_contracts(recorder, s, limit=50)
    sql, args = captured[0]
    raw = await conn.fetchval("EXPLAIN (FORMAT JSON) " + sql, *args)
    return _plan_nodes(orjson.loads(raw)[0]["Plan"])


def search_benchmark(settings: Settings, contracts: int, echo: Callable[[str], None]) -> dict[str, Any]:
    with scratch_database(settings) as dsn:
        started = time.perf_counter()
        asyncio.run(_fill(dsn, contracts))
        echo(f"  ({contracts:,} contracts stored and analysed in {time.perf_counter() - started:.0f} s)")
        result = asyncio.run(_run(dsn, echo))
    result["contracts"] = contracts
    result["all_p90_under_100_ms"] = all(v["p90_ms"] < 100 for k, v in result.items() if isinstance(v, dict))
    result["all_use_an_index"] = all(v["uses_index"] for k, v in result.items() if isinstance(v, dict))
    return result
