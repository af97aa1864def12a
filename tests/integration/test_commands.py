"""CQRS on real Postgres: a command is refused before anything changes (the field named), or persisted with its
events in one transaction; queries read the projection the events built."""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest

from cidadao import queries
from cidadao.commands import (
    CancelInvestigation,
    IngestFiles,
    StartInvestigation,
    cancel_investigation,
    ingest_files,
    parse,
    plan_investigation,
    start_investigation,
)
from cidadao.contracts.synthetic import generate
from cidadao.errors import CommandError, EmptyScope, InputFormatError
from cidadao.events import make
from cidadao.events.projections import apply_flags_by_organ_month
from cidadao.settings import Settings
from tests.integration.test_investigation_sweep import _store

pytestmark = pytest.mark.integration


async def _outbox(db: asyncpg.Connection) -> list[tuple[str, dict[str, Any]]]:
    rows = await db.fetch("SELECT type, data FROM event_outbox ORDER BY id")
    return [(r["type"], orjson.loads(r["data"])) for r in rows]


@pytest.mark.parametrize(
    ("command", "payload", "field"),
    [
        (StartInvestigation, {"orgao": "12"}, "orgao"),
        (StartInvestigation, {"orgao": "26000", "year": 1800}, "year"),
        (StartInvestigation, {"split": "sideways"}, "split"),
        (StartInvestigation, {"orgao": "26000", "colour": "red"}, "colour"),
        (StartInvestigation, {"idempotency_key": ""}, "idempotency_key"),
        (CancelInvestigation, {"investigation_id": "not-a-uuid"}, "investigation_id"),
        (CancelInvestigation, {}, "investigation_id"),
        (IngestFiles, {"paths": []}, "paths"),
        (IngestFiles, {"paths": ["a.jsonl"], "format": "xml"}, "format"),
    ],
)
def test_an_invalid_command_names_its_field(command: type[Any], payload: dict[str, Any], field: str) -> None:
    with pytest.raises(CommandError) as caught:
        parse(command, payload)
    assert caught.value.field == field and str(caught.value).startswith(f"{field}: ")
    assert "Traceback" not in caught.value.message and "Value error" not in caught.value.message


async def test_start_and_cancel_persist_and_announce_in_one_transaction(db: asyncpg.Connection) -> None:
    await db.execute("TRUNCATE event_outbox RESTART IDENTITY")
    await _store(db, 41, 1500)
    organs = await db.fetchval("SELECT count(DISTINCT orgao_codigo) FROM contracts")
    with pytest.raises(EmptyScope):  # refused after the read, before any write
        await start_investigation(db, StartInvestigation(orgao="99999"))
    assert await _outbox(db) == [] and await db.fetchval("SELECT count(*) FROM investigations") == 0

    cmd = StartInvestigation.of({"all": True, "year": None}, split="organ", idempotency_key="k-1")
    started = await start_investigation(db, cmd)
    assert started["created"] and started["partitions"] == organs and started["contracts"] == 1500
    events = await _outbox(db)
    assert [t for t, _ in events] == ["investigation.created"] * (organs + 1)  # the parent and every child
    assert {d["parent_id"] for _, d in events[1:]} == {started["id"]}
    again = await start_investigation(db, cmd)  # the same key: the same investigation, nothing new announced
    assert (again["id"], again["created"]) == (started["id"], False) and len(await _outbox(db)) == organs + 1

    assert await cancel_investigation(db, CancelInvestigation(investigation_id=started["id"])) == "cancelled"
    cancelled = [d["investigation_id"] for t, d in (await _outbox(db))[organs + 1 :] if t == "investigation.cancelled"]
    assert len(cancelled) == organs + 1 and started["id"] in cancelled
    found = await queries.investigation(db, started["id"])
    assert found is not None and found["status"] == "cancelled" and found["children"] == {"cancelled": organs}
    assert await cancel_investigation(db, CancelInvestigation(investigation_id=uuid.uuid4())) is None


async def test_ingest_stores_valid_rows_reports_the_rest_and_announces_batches(
    db: asyncpg.Connection, store_settings: Settings, tmp_path: Path
) -> None:
    await db.execute("TRUNCATE event_outbox RESTART IDENTITY")
    files = generate(tmp_path, 2500, 5, "portal").files
    with pytest.raises(InputFormatError, match="no such file"):  # every file is checked before any is stored
        await ingest_files(db, IngestFiles(paths=[Path(files["contracts"]), tmp_path / "missing.json"]), store_settings)
    assert await db.fetchval("SELECT count(*) FROM contracts") == 0 and await _outbox(db) == []

    paths = [Path(p) for name, p in files.items() if name not in ("labels", "manifest")]
    reports = {r.kind: r for r in await ingest_files(db, IngestFiles(paths=paths), store_settings)}
    contracts = reports["contracts"]
    assert contracts.accepted == await db.fetchval("SELECT count(*) FROM contracts") > 0
    assert contracts.rejected == len(contracts.errors) > 0  # the generator plants dirty rows
    announced = [d for t, d in await _outbox(db) if t == "contracts.ingested" and d["kind"] == "contracts"]
    assert len(announced) >= 3  # 1000-row batches
    assert sum(d["accepted"] for d in announced) == contracts.accepted
    assert sum(d["rejected"] for d in announced) == contracts.rejected


async def test_a_ministry_covers_its_organs_and_an_empty_scope_says_what_the_database_holds(
    db: asyncpg.Connection, store_settings: Settings, tmp_path: Path
) -> None:
    with pytest.raises(EmptyScope, match=r"no contracts in orgao 26000: the database holds none; ingest some first"):
        await start_investigation(db, StartInvestigation(orgao="26000"))
    files = generate(tmp_path, 3000, 5, "portal").files
    paths = [Path(p) for name, p in files.items() if name not in ("labels", "manifest")]
    await ingest_files(db, IngestFiles(paths=paths), store_settings)
    total, organs = await db.fetchrow("SELECT count(*), count(DISTINCT orgao_codigo) FROM contracts")
    # a ministry (órgão máximo) with contracts only in the organs under it, as in the Portal's hierarchy
    ministry, year = await db.fetchrow(
        """SELECT o.orgao_maximo_codigo, extract(year FROM c.signed_on)::int FROM contracts c
             JOIN organs o ON o.codigo = c.orgao_codigo
            WHERE o.orgao_maximo_codigo <> c.orgao_codigo AND NOT EXISTS
                  (SELECT 1 FROM contracts d WHERE d.orgao_codigo = o.orgao_maximo_codigo)
            GROUP BY 1, 2 ORDER BY count(*) DESC LIMIT 1"""
    )
    under = await db.fetch(
        """SELECT c.orgao_codigo, count(*) AS n FROM contracts c JOIN organs o ON o.codigo = c.orgao_codigo
            WHERE o.orgao_maximo_codigo = $1 AND c.signed_on >= make_date($2, 1, 1)
              AND c.signed_on < make_date($2 + 1, 1, 1) GROUP BY 1 ORDER BY 1""",
        ministry, year,
    )  # fmt: skip
    plan = await plan_investigation(db, StartInvestigation(orgao=ministry, year=year))
    assert plan["contracts"] == sum(r["n"] for r in under) > 0 and plan["organs"] == len(under)
    if len(under) > 1:  # one child investigation per organ under the ministry
        assert [p["scope"]["orgao"] for p in plan["partitions"]] == [r["orgao_codigo"] for r in under]

    with pytest.raises(EmptyScope) as unknown:
        await start_investigation(db, StartInvestigation(orgao="99999", year=year))
    message = str(unknown.value)
    assert f"no contracts in orgao 99999 in {year}" in message and "ingest some first" not in message
    assert f"{total:,} contracts of {organs:,} organs" in message and "GET /api/v1/organs" in message
    with pytest.raises(EmptyScope) as wrong_year:  # the organ has contracts, not in that year: it says which
        await start_investigation(db, StartInvestigation(orgao=ministry, year=2031))
    assert f"no contracts in orgao {ministry} in 2031: it has " in str(wrong_year.value)
    assert await db.fetchval("SELECT count(*) FROM investigations") == 0


async def test_queries_read_the_projection(db: asyncpg.Connection) -> None:
    await db.execute("TRUNCATE projection_flags_by_organ_month, processed_events, event_outbox RESTART IDENTITY")
    rows = [("26000", "2024-01", "price_outlier", 2), ("26000", "2024-03", "price_outlier", 1),
            ("36000", "2024-02", "new_supplier", 4)]  # fmt: skip
    event = make("investigation.completed", key="x", investigation_id="x", contracts_analyzed=9,
                 flag_counts={"price_outlier": 3, "new_supplier": 4}, flags_by_organ_month=rows)  # fmt: skip
    assert await apply_flags_by_organ_month(db, dataclasses.replace(event, id="1"))
    got = await queries.flags_by_organ_month(db, orgao="26000", since="2024-02")
    assert got == [{"orgao_codigo": "26000", "month": "2024-03", "flag": "price_outlier", "n": 1}]
    assert len(await queries.flags_by_organ_month(db)) == 3
    with pytest.raises(CommandError, match="until: '2024-13' is not a month"):
        await queries.flags_by_organ_month(db, until="2024-13")
    with pytest.raises(CommandError) as caught:
        await queries.investigation(db, "nope")
    assert caught.value.field == "investigation_id"
