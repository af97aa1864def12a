"""Ingestion into a real Postgres: idempotency, updates, rejections and all-or-nothing batches."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import orjson
import pytest

from cidadao.contracts.readers import detect
from cidadao.errors import IngestError
from cidadao.storage.ingest import IngestReport, ingest_file
from tests.unit.test_readers import ceis, pncp, portal, write_jsonl

pytestmark = pytest.mark.integration


async def load(conn: asyncpg.Connection, path: Path, batch_rows: int = 1000) -> IngestReport:
    report = IngestReport(kind="?")
    await ingest_file(conn, detect(path), report, batch_rows=batch_rows, max_value=1e11)
    return report


async def test_ingest_is_idempotent_and_reports_duplicates(db: asyncpg.Connection, tmp_path: Path) -> None:
    recs = [portal(i) for i in range(1, 51)] + [portal(51, dataAssinatura="nope")]
    path = write_jsonl(tmp_path / "p.jsonl", recs)
    first = await load(db, path, batch_rows=7)
    assert (first.accepted, first.rejected, first.duplicates) == (50, 1, 0)
    assert first.errors[0].record == {"line": 51, "id": "51"} and first.errors[0].field == "dataAssinatura"
    assert await db.fetchval("SELECT count(*) FROM contracts") == 50
    second = await load(db, path, batch_rows=7)
    assert (second.accepted, second.rejected, second.duplicates) == (0, 1, 50)
    assert await db.fetchval("SELECT count(*) FROM contracts") == 50
    row = await db.fetchrow("SELECT * FROM contracts WHERE source_id = '1'")
    assert row["orgao_codigo"] == "26000" and row["supplier_document"] == "11222333000181"
    assert float(row["initial_value"]) == 1000.5 and row["object_class"] == "material_escritorio"
    assert orjson.loads(row["raw"])["fornecedor"]["nome"] == "ACME"
    assert await db.fetchval("SELECT nome FROM organs WHERE codigo = '26000'") == "Ministério da Educação"
    assert await db.fetchval("SELECT orgao_codigo FROM management_units WHERE codigo = '150001'") == "26000"


async def test_a_changed_record_is_updated_not_duplicated(db: asyncpg.Connection, tmp_path: Path) -> None:
    await load(db, write_jsonl(tmp_path / "a.jsonl", [portal(1), portal(2)]))
    report = await load(db, write_jsonl(tmp_path / "b.jsonl", [portal(1, valorFinalCompra=5000), portal(2)]))
    assert (report.accepted, report.updated, report.duplicates) == (1, 1, 1)
    assert float(await db.fetchval("SELECT final_value FROM contracts WHERE source_id = '1'")) == 5000.0
    assert await db.fetchval("SELECT count(*) FROM contracts") == 2


async def test_repeated_ids_in_one_file_keep_the_last(db: asyncpg.Connection, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "p.jsonl", [portal(1, valorFinalCompra=1), portal(1, valorFinalCompra=2)])
    report = await load(db, path)
    assert (report.accepted, report.duplicates) == (1, 1)
    assert float(await db.fetchval("SELECT final_value FROM contracts")) == 2.0


async def test_a_failed_batch_leaves_the_database_as_before_it(db: asyncpg.Connection, tmp_path: Path) -> None:
    # A trigger makes Postgres itself refuse one row of the second batch.
    await db.execute(
        """CREATE OR REPLACE FUNCTION refuse_poison() RETURNS trigger AS $$
           BEGIN IF NEW.source_id = 'poison' THEN RAISE EXCEPTION 'poisoned row'; END IF; RETURN NEW; END
           $$ LANGUAGE plpgsql"""
    )
    await db.execute(
        "CREATE TRIGGER refuse_poison BEFORE INSERT ON contracts FOR EACH ROW EXECUTE FUNCTION refuse_poison()"
    )
    try:
        recs = [portal(i) for i in range(1, 11)] + [portal("poison")] + [portal(i) for i in range(12, 21)]
        with pytest.raises(IngestError, match="rolled back"):
            await load(db, write_jsonl(tmp_path / "p.jsonl", recs), batch_rows=10)
        assert await db.fetchval("SELECT count(*) FROM contracts") == 10
        assert await db.fetchval("SELECT max(source_id::int) FROM contracts") == 10
    finally:
        await db.execute("DROP TRIGGER refuse_poison ON contracts")
        await db.execute("DROP FUNCTION refuse_poison()")


async def test_pncp_sanctions_and_registry(db: asyncpg.Connection, tmp_path: Path) -> None:
    await load(db, write_jsonl(tmp_path / "pncp.jsonl", [pncp(1), pncp(2)]))
    assert await db.fetchval("SELECT count(*) FROM contracts WHERE source = 'pncp'") == 2
    assert await db.fetchval("SELECT uf FROM management_units WHERE codigo = '00394445000101:150001'") == "DF"

    sanctions = tmp_path / "ceis.json"
    sanctions.write_bytes(orjson.dumps([ceis(1), ceis(2, tipoSancao={"descricaoResumida": "Multa"})]))
    rep = await load(db, sanctions)
    assert rep.accepted == 2
    rows = await db.fetch("SELECT source_id, bars_contracting, ends_on, fine_value FROM sanctions ORDER BY source_id")
    assert [(r["source_id"], r["bars_contracting"], r["ends_on"]) for r in rows] == [
        ("1", True, None),
        ("2", False, None),
    ]
    assert float(rows[0]["fine_value"]) == 350000.0

    registry = tmp_path / "suppliers.csv"
    registry.write_text(
        "cnpj,razao_social,data_abertura,situacao_cadastral\n11222333000181,ACME LTDA,2019-05-01,BAIXADA\n"
    )
    rep = await load(db, registry)
    assert (rep.accepted, rep.updated) == (1, 1)  # the supplier was already known from the contracts
    row = await db.fetchrow("SELECT * FROM suppliers WHERE document = '11222333000181'")
    assert (
        row["registry_status"] == "BAIXADA" and str(row["opening_date"]) == "2019-05-01" and row["name"] == "ACME LTDA"
    )
    rep = await load(db, registry)
    assert (rep.accepted, rep.duplicates) == (0, 1)
