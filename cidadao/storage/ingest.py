"""Bulk ingestion: validated rows COPYed into a staging table, then upserted on the natural key.

Each batch is one transaction: ``COPY`` into a session-local staging table (``ON COMMIT DELETE ROWS``),
then ``INSERT ... SELECT ... ON CONFLICT`` into the real tables. A batch that fails, or a process killed
mid-batch, leaves the database as it was before that batch. Upserts only write rows that are new or
changed, so re-ingesting a file stores nothing and reports every row as a duplicate.

While Postgres stores batch *n*, a worker thread parses batch *n + 1*: the two cores both work.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import asyncpg

from cidadao.contracts.readers import DetectedFile, Kind, Rejection, read_rows
from cidadao.contracts.schema import CONTRACT_COLUMNS, SANCTION_COLUMNS, SUPPLIER_COLUMNS
from cidadao.errors import IngestError

__all__ = ["IngestReport", "ingest_file"]

_MAX_ERRORS_KEPT: Final = 10_000

_STAGING: Final = {
    "contracts": """CREATE TEMP TABLE IF NOT EXISTS stage_contracts (
        ord bigint, source text, source_id text, numero text, objeto text, object_class text,
        numero_processo text, fundamento_legal text, situacao text, modalidade text, modalidade_texto text,
        signed_on date, starts_on date, ends_on date, published_on date,
        initial_value float8, final_value float8,
        supplier_document text, supplier_kind text, supplier_name text, supplier_legal_name text,
        ug_codigo text, ug_nome text, orgao_codigo text, orgao_sigla text, orgao_nome text, orgao_cnpj text,
        orgao_maximo_codigo text, orgao_maximo_sigla text, orgao_maximo_nome text, uf text, municipio text,
        raw jsonb) ON COMMIT DELETE ROWS""",
    "sanctions": """CREATE TEMP TABLE IF NOT EXISTS stage_sanctions (
        ord bigint, registry text, source_id text, document text, name text, sanction_type text,
        sanction_detail text, bars_contracting boolean, starts_on date, ends_on date, published_on date,
        sanctioning_body text, sanctioning_uf text, fine_value float8, legal_basis jsonb, raw jsonb)
        ON COMMIT DELETE ROWS""",
    "suppliers": """CREATE TEMP TABLE IF NOT EXISTS stage_suppliers (
        ord bigint, document text, kind text, legal_name text, opening_date date, registry_status text)
        ON COMMIT DELETE ROWS""",
}

# Dimension upserts run before the fact upsert so its foreign keys hold. They write only what changed.
_CONTRACT_DIMENSIONS: Final = (
    """INSERT INTO organs AS o (codigo, sigla, nome, cnpj, orgao_maximo_codigo, orgao_maximo_sigla, orgao_maximo_nome)
       SELECT DISTINCT ON (orgao_codigo) orgao_codigo, orgao_sigla, orgao_nome, orgao_cnpj,
              orgao_maximo_codigo, orgao_maximo_sigla, orgao_maximo_nome
         FROM stage_contracts ORDER BY orgao_codigo, ord DESC
       ON CONFLICT (codigo) DO UPDATE SET
              sigla = COALESCE(EXCLUDED.sigla, o.sigla), nome = COALESCE(EXCLUDED.nome, o.nome),
              cnpj = COALESCE(EXCLUDED.cnpj, o.cnpj),
              orgao_maximo_codigo = COALESCE(EXCLUDED.orgao_maximo_codigo, o.orgao_maximo_codigo),
              orgao_maximo_sigla = COALESCE(EXCLUDED.orgao_maximo_sigla, o.orgao_maximo_sigla),
              orgao_maximo_nome = COALESCE(EXCLUDED.orgao_maximo_nome, o.orgao_maximo_nome), updated_at = now()
        WHERE (o.sigla, o.nome, o.cnpj, o.orgao_maximo_codigo, o.orgao_maximo_sigla, o.orgao_maximo_nome)
              IS DISTINCT FROM (COALESCE(EXCLUDED.sigla, o.sigla), COALESCE(EXCLUDED.nome, o.nome),
              COALESCE(EXCLUDED.cnpj, o.cnpj), COALESCE(EXCLUDED.orgao_maximo_codigo, o.orgao_maximo_codigo),
              COALESCE(EXCLUDED.orgao_maximo_sigla, o.orgao_maximo_sigla),
              COALESCE(EXCLUDED.orgao_maximo_nome, o.orgao_maximo_nome))""",
    """INSERT INTO management_units AS u (codigo, nome, orgao_codigo, uf, municipio)
       SELECT DISTINCT ON (ug_codigo) ug_codigo, ug_nome, orgao_codigo, uf, municipio
         FROM stage_contracts WHERE ug_codigo IS NOT NULL ORDER BY ug_codigo, ord DESC
       ON CONFLICT (codigo) DO UPDATE SET nome = COALESCE(EXCLUDED.nome, u.nome),
              orgao_codigo = EXCLUDED.orgao_codigo, uf = COALESCE(EXCLUDED.uf, u.uf),
              municipio = COALESCE(EXCLUDED.municipio, u.municipio), updated_at = now()
        WHERE (u.nome, u.orgao_codigo, u.uf, u.municipio) IS DISTINCT FROM
              (COALESCE(EXCLUDED.nome, u.nome), EXCLUDED.orgao_codigo, COALESCE(EXCLUDED.uf, u.uf),
               COALESCE(EXCLUDED.municipio, u.municipio))""",
    """INSERT INTO suppliers AS s (document, kind, name, legal_name)
       SELECT DISTINCT ON (supplier_document) supplier_document, supplier_kind, supplier_name, supplier_legal_name
         FROM stage_contracts WHERE supplier_document IS NOT NULL ORDER BY supplier_document, ord DESC
       ON CONFLICT (document) DO UPDATE SET name = COALESCE(s.name, EXCLUDED.name),
              legal_name = COALESCE(s.legal_name, EXCLUDED.legal_name), updated_at = now()
        WHERE (s.name IS NULL AND EXCLUDED.name IS NOT NULL)
           OR (s.legal_name IS NULL AND EXCLUDED.legal_name IS NOT NULL)""",
)

_UPSERT: Final = {
    "contracts": """
       INSERT INTO contracts AS c (source, source_id, numero, objeto, object_class, numero_processo, fundamento_legal,
              situacao, modalidade, modalidade_texto, signed_on, starts_on, ends_on, published_on, initial_value,
              final_value, supplier_document, supplier_name, ug_codigo, orgao_codigo, uf, raw)
       SELECT DISTINCT ON (source, source_id) source, source_id, numero, objeto, object_class, numero_processo,
              fundamento_legal, situacao, modalidade, modalidade_texto, signed_on, starts_on, ends_on, published_on,
              initial_value::numeric(20, 2), final_value::numeric(20, 2), supplier_document, supplier_name,
              ug_codigo, orgao_codigo, uf, raw
         FROM stage_contracts ORDER BY source, source_id, ord DESC
       ON CONFLICT ON CONSTRAINT contracts_natural_key DO UPDATE SET
              numero = EXCLUDED.numero, objeto = EXCLUDED.objeto, object_class = EXCLUDED.object_class,
              numero_processo = EXCLUDED.numero_processo, fundamento_legal = EXCLUDED.fundamento_legal,
              situacao = EXCLUDED.situacao, modalidade = EXCLUDED.modalidade,
              modalidade_texto = EXCLUDED.modalidade_texto, signed_on = EXCLUDED.signed_on,
              starts_on = EXCLUDED.starts_on, ends_on = EXCLUDED.ends_on, published_on = EXCLUDED.published_on,
              initial_value = EXCLUDED.initial_value, final_value = EXCLUDED.final_value,
              supplier_document = EXCLUDED.supplier_document, supplier_name = EXCLUDED.supplier_name,
              ug_codigo = EXCLUDED.ug_codigo, orgao_codigo = EXCLUDED.orgao_codigo, uf = EXCLUDED.uf,
              raw = EXCLUDED.raw, updated_at = now()
        WHERE c.raw IS DISTINCT FROM EXCLUDED.raw
       RETURNING (xmax = 0) AS inserted""",
    "sanctions": """
       INSERT INTO sanctions AS s (registry, source_id, document, name, sanction_type, sanction_detail,
              bars_contracting, starts_on, ends_on, published_on, sanctioning_body, sanctioning_uf, fine_value,
              legal_basis, raw)
       SELECT DISTINCT ON (registry, source_id) registry, source_id, document, name, sanction_type,
              sanction_detail, bars_contracting, starts_on, ends_on, published_on, sanctioning_body,
              sanctioning_uf, fine_value::numeric(20, 2), legal_basis, raw
         FROM stage_sanctions ORDER BY registry, source_id, ord DESC
       ON CONFLICT ON CONSTRAINT sanctions_natural_key DO UPDATE SET
              document = EXCLUDED.document, name = EXCLUDED.name, sanction_type = EXCLUDED.sanction_type,
              sanction_detail = EXCLUDED.sanction_detail, bars_contracting = EXCLUDED.bars_contracting,
              starts_on = EXCLUDED.starts_on, ends_on = EXCLUDED.ends_on, published_on = EXCLUDED.published_on,
              sanctioning_body = EXCLUDED.sanctioning_body, sanctioning_uf = EXCLUDED.sanctioning_uf,
              fine_value = EXCLUDED.fine_value, legal_basis = EXCLUDED.legal_basis, raw = EXCLUDED.raw
        WHERE s.raw IS DISTINCT FROM EXCLUDED.raw
       RETURNING (xmax = 0) AS inserted""",
    "suppliers": """
       INSERT INTO suppliers AS s (document, kind, legal_name, opening_date, registry_status)
       SELECT DISTINCT ON (document) document, kind, legal_name, opening_date, registry_status
         FROM stage_suppliers ORDER BY document, ord DESC
       ON CONFLICT (document) DO UPDATE SET legal_name = EXCLUDED.legal_name,
              opening_date = EXCLUDED.opening_date, registry_status = EXCLUDED.registry_status, updated_at = now()
        WHERE (s.legal_name, s.opening_date, s.registry_status)
              IS DISTINCT FROM (EXCLUDED.legal_name, EXCLUDED.opening_date, EXCLUDED.registry_status)
       RETURNING (xmax = 0) AS inserted""",
}

_COLUMNS: Final = {"contracts": CONTRACT_COLUMNS, "sanctions": SANCTION_COLUMNS, "suppliers": SUPPLIER_COLUMNS}


@dataclass
class IngestReport:
    """What one ``cidadao ingest`` did. ``accepted`` counts rows stored new or changed."""

    kind: str
    accepted: int = 0
    updated: int = 0
    rejected: int = 0
    duplicates: int = 0
    errors: list[Rejection] = field(default_factory=list)
    errors_truncated: int = 0
    files: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def add_rejection(self, rejection: Rejection) -> None:
        self.rejected += 1
        if len(self.errors) < _MAX_ERRORS_KEPT:
            self.errors.append(rejection)
        else:
            self.errors_truncated += 1

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "duplicates": self.duplicates,
            "errors": [e.as_dict() for e in self.errors],
            "seconds": round(self.seconds, 3),
        }
        if self.updated:
            out["updated"] = self.updated
        if self.errors_truncated:
            out["errors_truncated"] = self.errors_truncated
        return out


def _batches(rows: Iterator[Any], size: int, report: IngestReport) -> Iterator[list[tuple[Any, ...]]]:
    batch: list[tuple[Any, ...]] = []
    for item in rows:
        if isinstance(item, Rejection):
            report.add_rejection(item)
            continue
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


async def _store_batch(conn: asyncpg.Connection, kind: Kind, batch: list[tuple[Any, ...]]) -> tuple[int, int]:
    """Store one batch in one transaction; return (inserted, updated)."""
    async with conn.transaction():
        await conn.copy_records_to_table(f"stage_{kind}", records=batch, columns=list(_COLUMNS[kind]))
        if kind == "contracts":
            for sql in _CONTRACT_DIMENSIONS:
                await conn.execute(sql)
        rows = await conn.fetch(_UPSERT[kind])
    inserted = sum(1 for r in rows if r["inserted"])
    return inserted, len(rows) - inserted


async def ingest_file(
    conn: asyncpg.Connection,
    detected: DetectedFile,
    report: IngestReport,
    *,
    batch_rows: int,
    max_value: float,
    on_bytes: Callable[[int], None] | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> None:
    """Ingest one detected file into ``report`` (shared across the files of one command)."""
    started = time.perf_counter()
    await conn.execute(_STAGING[detected.kind])
    batches = _batches(read_rows(detected, max_value, on_bytes), batch_rows, report)
    loop = asyncio.get_running_loop()

    def next_batch() -> list[tuple[Any, ...]] | None:
        return next(batches, None)

    pending = loop.run_in_executor(None, next_batch)
    while (batch := await pending) is not None:
        pending = loop.run_in_executor(None, next_batch)  # parse the next batch while this one is stored
        try:
            inserted, updated = await _store_batch(conn, detected.kind, batch)
        except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            with contextlib.suppress(Exception):
                await pending  # let the parser thread settle before the error propagates
            raise IngestError(
                f"{detected.path}: a batch of {len(batch)} rows could not be stored and was rolled back: {exc}"
            ) from exc
        report.accepted += inserted + updated
        report.updated += updated
        report.duplicates += len(batch) - inserted - updated
        if on_batch is not None:
            on_batch(len(batch))
    report.files.append(str(Path(detected.path)))
    report.seconds += time.perf_counter() - started
