"""Bulk ingestion: validated rows COPYed into a staging table, then upserted on the natural key.

Each batch is one transaction: ``COPY`` into a session-local staging table (``ON COMMIT DELETE ROWS``),
then ``INSERT ... SELECT ... ON CONFLICT`` into the real tables. A batch that fails, or a process killed
mid-batch, leaves the database as it was before that batch. Upserts only write rows that are new or
changed, so re-ingesting a file stores nothing and reports every row as a duplicate.

While Postgres stores batch *n*, a worker thread parses batch *n + 1*: the two cores both work.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import multiprocessing.queues
import os
import queue
import time
from collections.abc import AsyncGenerator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import asyncpg

from cidadao.contracts.readers import DetectedFile, Kind, Rejection, read_rows
from cidadao.contracts.schema import CONTRACT_COLUMNS, SANCTION_COLUMNS, SUPPLIER_COLUMNS
from cidadao.errors import IngestError
from cidadao.events import emit, make
from cidadao.storage import ingest_sql as sql

__all__ = ["PARSE_IN_PROCESS_BYTES", "IngestReport", "ingest_file"]

_MAX_ERRORS_KEPT: Final = 10_000
PARSE_IN_PROCESS_BYTES: Final = 16 * 1024 * 1024

_C: Final = {name: i for i, name in enumerate(CONTRACT_COLUMNS)}
_CONTRACT_TABLE_COLUMNS: Final = (
    "source", "source_id", "numero", "objeto", "object_class", "numero_processo", "fundamento_legal", "situacao",
    "modalidade", "modalidade_texto", "signed_on", "starts_on", "ends_on", "published_on", "initial_value",
    "final_value", "supplier_document", "supplier_name", "ug_codigo", "orgao_codigo", "uf", "raw",
)  # fmt: skip
_CONTRACT_TABLE_INDEXES: Final = tuple(_C[c] for c in _CONTRACT_TABLE_COLUMNS)
_ORGAN_INDEXES: Final = tuple(_C[c] for c in (
    "orgao_codigo", "orgao_sigla", "orgao_nome", "orgao_cnpj", "orgao_maximo_codigo", "orgao_maximo_sigla",
    "orgao_maximo_nome"))  # fmt: skip
_UNIT_INDEXES: Final = tuple(_C[c] for c in ("ug_codigo", "ug_nome", "orgao_codigo", "uf", "municipio"))
_SUPPLIER_INDEXES: Final = tuple(
    _C[c] for c in ("supplier_document", "supplier_kind", "supplier_name", "supplier_legal_name")
)

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
    organs: set[str] = field(default_factory=set)  # whose contracts changed (what the cache must forget)

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


async def _upsert_via_staging(conn: asyncpg.Connection, kind: Kind, rows: list[tuple[Any, ...]]) -> tuple[int, int]:
    await conn.copy_records_to_table(f"stage_{kind}", records=rows, columns=list(_COLUMNS[kind]))
    result = await conn.fetch(sql.UPSERT[kind])
    inserted = sum(1 for r in result if r["inserted"])
    return inserted, len(result) - inserted


_DIMENSIONS: Final = (
    (sql.UPSERT_ORGANS, _ORGAN_INDEXES, _C["orgao_codigo"]),
    (sql.UPSERT_UNITS, _UNIT_INDEXES, _C["ug_codigo"]),
    (sql.UPSERT_CONTRACT_SUPPLIERS, _SUPPLIER_INDEXES, _C["supplier_document"]),
)


async def _upsert_dimensions(
    conn: asyncpg.Connection, batch: list[tuple[Any, ...]], seen: set[tuple[Any, ...]]
) -> list[tuple[Any, ...]]:
    """Upsert the organs, units and suppliers named by ``batch``; return what was sent.

    Rows this ingest already upserted identically (``seen``) are skipped, so later batches send only what
    is new; the caller adds the returned rows to ``seen`` once the batch has committed.
    """
    sent: list[tuple[Any, ...]] = []
    for statement, indexes, key in _DIMENSIONS:
        last: dict[Any, tuple[Any, ...]] = {}
        for r in batch:
            if r[key] is not None:
                last[r[key]] = tuple(r[i] for i in indexes)
        fresh = [v for v in last.values() if (statement, v) not in seen]
        if fresh:
            await conn.execute(statement, *(list(col) for col in zip(*fresh, strict=True)))
            sent.extend((statement, v) for v in fresh)
    return sent


async def _store_contracts(
    conn: asyncpg.Connection, batch: list[tuple[Any, ...]], fast: bool, seen: set[tuple[Any, ...]]
) -> tuple[int, int, list[tuple[Any, ...]]]:
    """Dimensions first, then contracts: new keys COPYed straight into the table, known keys upserted.

    Returns (inserted, updated, dimension rows sent).
    """
    sent = await _upsert_dimensions(conn, batch, seen)
    if not fast:
        return (*await _upsert_via_staging(conn, "contracts", batch), sent)
    latest: dict[tuple[str, str], tuple[Any, ...]] = {}
    for row in batch:  # a key repeated within the batch: the last record wins
        latest[(row[1], row[2])] = row
    new: list[tuple[Any, ...]] = []
    known: list[tuple[Any, ...]] = []
    for source in {key[0] for key in latest}:
        ids = [key[1] for key in latest if key[0] == source]
        existing = {r[0] for r in await conn.fetch(sql.EXISTING_CONTRACTS, source, ids)}
        for sid in ids:
            (known if sid in existing else new).append(latest[(source, sid)])
    if new:
        await conn.copy_records_to_table(
            "contracts",
            records=[tuple(r[i] for i in _CONTRACT_TABLE_INDEXES) for r in new],
            columns=list(_CONTRACT_TABLE_COLUMNS),
        )
    inserted, updated = len(new), 0
    if known:
        more, updated = await _upsert_via_staging(conn, "contracts", known)
        inserted += more
    return inserted, updated, sent


async def _store_batch(
    conn: asyncpg.Connection, kind: Kind, batch: list[tuple[Any, ...]], seen: set[tuple[Any, ...]], *,
    source: str = "", rejected: int = 0,
) -> tuple[int, int]:  # fmt: skip
    """Store one batch in one transaction, with its ``contracts.ingested`` event; return (inserted, updated).

    Contracts whose key is new are COPYed straight into ``contracts`` (no staging, no sort); if another
    ingest inserts the same key meanwhile, the batch is rolled back and redone through the upsert.
    """

    async def announce(inserted: int, updated: int) -> None:
        await emit(conn, make(
            "contracts.ingested", key=source, kind=kind, source=source, accepted=inserted + updated,
            rejected=rejected, duplicates=len(batch) - inserted - updated,
        ))  # fmt: skip
        if inserted + updated:  # the cached pages of these organs' contracts, and the API's records
            organs = organs_of(batch) if kind == "contracts" else []
            prefixes = [f"contracts:{organ}:" for organ in organs] + ["records:"]
            await emit(conn, make("cache.invalidate", key=source, prefixes=prefixes))

    if kind != "contracts":
        async with conn.transaction():
            inserted, updated = await _upsert_via_staging(conn, kind, batch)
            await announce(inserted, updated)
            return inserted, updated
    try:
        async with conn.transaction():
            inserted, updated, sent = await _store_contracts(conn, batch, True, seen)
            await announce(inserted, updated)
    except asyncpg.UniqueViolationError:
        async with conn.transaction():
            inserted, updated, sent = await _store_contracts(conn, batch, False, seen)
            await announce(inserted, updated)
    seen.update(sent)  # only once the batch has committed
    return inserted, updated


def organs_of(batch: list[tuple[Any, ...]]) -> list[str]:
    """The organs a batch of contract rows belongs to."""
    return sorted({row[_C["orgao_codigo"]] for row in batch})


_Message = tuple[list[tuple[Any, ...]] | None, list[Rejection], int]


def _parse_in_process(
    detected: DetectedFile, max_value: float, batch_rows: int, out: multiprocessing.queues.Queue[Any]
) -> None:
    """Child process: parse ``detected`` and send (batch, rejections, bytes read) messages; ``None`` ends.

    The queue is bounded, so the parser stays at most two batches ahead of Postgres. If the parent dies
    the child notices (its parent changes) and exits instead of blocking forever.
    """
    parent = os.getppid()
    progress = [0]

    def count(n: int) -> None:
        progress[0] += n

    def send(message: Any) -> None:
        while True:
            try:
                out.put(message, timeout=1.0)
                return
            except queue.Full:
                if os.getppid() != parent:
                    os._exit(1)

    collector = IngestReport(kind=detected.kind)
    try:
        for batch in _batches(read_rows(detected, max_value, count), batch_rows, collector):
            send((batch, collector.errors, progress[0]))
            collector.errors = []
        send((None, collector.errors, progress[0]))
    except BaseException as exc:  # the parent re-raises it; nothing is stored for a batch never sent
        send(("error", f"{type(exc).__name__}: {exc}", progress[0]))


async def _batches_from_process(
    detected: DetectedFile, max_value: float, batch_rows: int
) -> AsyncGenerator[_Message, None]:
    ctx = multiprocessing.get_context("spawn")
    channel: multiprocessing.queues.Queue[Any] = ctx.Queue(maxsize=2)
    worker = ctx.Process(
        target=_parse_in_process, args=(detected, max_value, batch_rows, channel), name="cidadao-ingest-parser",
        daemon=True,
    )  # fmt: skip
    worker.start()
    loop = asyncio.get_running_loop()
    try:
        while True:
            batch, rejections, read = await loop.run_in_executor(None, channel.get)
            if batch == "error":
                raise IngestError(f"{detected.path}: the parser failed: {rejections}")
            yield batch, rejections, read
            if batch is None:
                return
    finally:
        worker.kill()
        await loop.run_in_executor(None, worker.join)
        channel.close()


async def _batches_in_thread(
    detected: DetectedFile, max_value: float, batch_rows: int
) -> AsyncGenerator[_Message, None]:
    collector = IngestReport(kind=detected.kind)
    progress = [0]

    def count(n: int) -> None:
        progress[0] += n

    batches = _batches(read_rows(detected, max_value, count), batch_rows, collector)
    loop = asyncio.get_running_loop()
    while True:
        batch = await loop.run_in_executor(None, next, batches, None)
        rejections, collector.errors = collector.errors, []
        yield batch, rejections, progress[0]
        if batch is None:
            return


async def ingest_file(
    conn: asyncpg.Connection,
    detected: DetectedFile,
    report: IngestReport,
    *,
    batch_rows: int,
    max_value: float,
    on_bytes: Callable[[int], None] | None = None,
) -> None:
    """Ingest one detected file into ``report`` (shared across the files of one command).

    Files above :data:`PARSE_IN_PROCESS_BYTES` are parsed in a child process that works one batch ahead
    while Postgres stores the current one (a parsing thread would fight the event loop for the GIL);
    smaller files are parsed in a thread, without the child's start-up cost.
    """
    started = time.perf_counter()
    await conn.execute(sql.STAGING[detected.kind])
    seen: set[tuple[Any, ...]] = set()
    read_so_far = 0
    big = detected.path.stat().st_size >= PARSE_IN_PROCESS_BYTES
    source = _batches_from_process if big else _batches_in_thread
    messages = source(detected, max_value, batch_rows)
    try:
        async for batch, rejections, read in messages:
            for rejection in rejections:
                report.add_rejection(rejection)
            if on_bytes is not None and read > read_so_far:
                on_bytes(read - read_so_far)
            read_so_far = read
            if batch is None:
                break
            try:
                inserted, updated = await _store_batch(
                    conn, detected.kind, batch, seen, source=str(detected.path), rejected=len(rejections)
                )
            except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                raise IngestError(
                    f"{detected.path}: a batch of {len(batch)} rows could not be stored and was rolled back: {exc}"
                ) from exc
            report.accepted += inserted + updated
            report.updated += updated
            if detected.kind == "contracts" and inserted + updated:
                report.organs.update(organs_of(batch))
            report.duplicates += len(batch) - inserted - updated
    finally:
        await messages.aclose()
    report.files.append(str(Path(detected.path)))
    report.seconds += time.perf_counter() - started
