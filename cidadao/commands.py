"""Commands: the one write path (CQRS). Each is validated, then persisted and announced in one transaction.

A command is a frozen pydantic model. :func:`parse` turns untrusted input (a CLI's options, an HTTP body) into
one, or raises :class:`~cidadao.errors.CommandError` naming the field, before anything changes. Its handler
writes the state and the events that announce it in the same transaction (the outbox,
:mod:`cidadao.events.outbox`): the queue (:mod:`cidadao.storage.queue`) emits ``investigation.*``, ingestion
(:mod:`cidadao.storage.ingest`) one ``contracts.ingested`` per stored batch.

=========================  =======================================================================
``StartInvestigation``     plan (organs and their sizes → partitions), queue one investigation or a
                           parent and one child per organ; the same idempotency key → the same one
``CancelInvestigation``    cancel it (and its children); running work stops at its next lease renewal
``IngestFiles``            detect every file first (a wrong file stops all before anything is stored),
                           then load them; rejected rows are reported, valid rows stored
=========================  =======================================================================

Reads never come through here: they go to the projections and the cache (:mod:`cidadao.queries`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Final, Literal, TypeVar

import asyncpg
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from cidadao.cache.service import Caches
from cidadao.contracts.readers import DetectedFile, detect
from cidadao.errors import CommandError
from cidadao.settings import Settings
from cidadao.storage import queue
from cidadao.storage.analysis import Scope, no_contracts, organ_counts
from cidadao.storage.ingest import IngestReport, ingest_file

__all__ = [
    "CancelInvestigation",
    "Command",
    "IngestFiles",
    "Split",
    "StartInvestigation",
    "cancel_investigation",
    "detect_files",
    "ingest_files",
    "parse",
    "plan_investigation",
    "start_investigation",
]

Split = Literal["auto", "organ", "none"]
MAX_PARTITIONS: Final = 5000
# Suppliers and sanctions first: the contracts that follow then find their suppliers described.
_KIND_ORDER: Final = {"suppliers": 0, "sanctions": 1, "contracts": 2}
_Key = Annotated[str, Field(min_length=1, max_length=200)]


class Command(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StartInvestigation(Command):
    orgao: str | None = None  # None: every organ in the database
    year: int | None = Field(None, ge=1990, le=2100)
    split: Split = "auto"
    user_id: _Key | None = None
    idempotency_key: _Key | None = None

    @field_validator("orgao")
    @classmethod
    def _organ_code(cls, v: str | None) -> str | None:
        if v is not None and not (v.isdigit() and len(v) in (5, 14)):
            raise ValueError("must be a 5-digit SIAFI code or a 14-digit CNPJ")
        return v

    @property
    def scope(self) -> Scope:
        return Scope(self.orgao, self.year)

    @classmethod
    def of(cls, scope: dict[str, Any], **options: Any) -> StartInvestigation:
        """The command for a scope as the queue stores it (``{"orgao": ..., "year": ...}`` or ``{"all": true,
        "year": ...}``) and options (``split``, ``user_id``, ``idempotency_key``); :class:`CommandError` if
        invalid."""
        return parse(cls, {"orgao": scope.get("orgao"), "year": scope.get("year"), **options})


class CancelInvestigation(Command):
    investigation_id: uuid.UUID


class IngestFiles(Command):
    paths: list[Path] = Field(min_length=1)
    kind: Literal["contracts", "sanctions", "suppliers"] | None = None  # None: detect
    format: Literal["auto", "portal", "pncp", "csv"] = "auto"


C = TypeVar("C", bound=Command)


def parse(command: type[C], payload: dict[str, Any]) -> C:
    """``payload`` as a ``command``; :class:`CommandError` naming the first field that is wrong."""
    try:
        return command.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(body)"
        raise CommandError(where, first["msg"].removeprefix("Value error, ")) from None


async def plan_investigation(
    conn: asyncpg.Connection, cmd: StartInvestigation, *, max_partitions: int = MAX_PARTITIONS
) -> dict[str, Any]:
    """The partitions of the command's scope: ``split="organ"`` one per organ, ``"none"`` one for all,
    ``"auto"`` by organ when the scope spans several. :class:`~cidadao.errors.EmptyScope` when it holds no
    contracts."""
    s = cmd.scope
    counts = await organ_counts(conn, s)
    if not counts:
        raise await no_contracts(conn, s)
    by_organ = cmd.split == "organ" or (cmd.split == "auto" and 1 < len(counts) <= max_partitions)
    if by_organ and len(counts) > max_partitions:
        raise CommandError("split", f"{len(counts)} organs is more than {max_partitions} partitions; use 'none'")
    if by_organ and len(counts) > 1:
        partitions = [{"scope": Scope(organ, s.year).as_dict(), "contracts": n} for organ, n in counts]
    else:
        partitions = [{"scope": s.as_dict(), "contracts": sum(n for _, n in counts)}]
    return {
        "scope": s.as_dict(), "split": "organ" if len(partitions) > 1 else "none", "organs": len(counts),
        "contracts": sum(n for _, n in counts), "partitions": partitions,
    }  # fmt: skip


async def start_investigation(
    conn: asyncpg.Connection, cmd: StartInvestigation, *, reads: asyncpg.Connection | None = None,
    max_partitions: int = MAX_PARTITIONS,
) -> dict[str, Any]:  # fmt: skip
    """Plan (on ``reads``, a replica if there is one) and queue; ``investigation.created`` for each row, in the
    queueing transaction. Its id, whether it is new, its status and how it was split."""
    plan = await plan_investigation(reads or conn, cmd, max_partitions=max_partitions)
    parts = plan["partitions"]
    if len(parts) == 1:
        submitted = await queue.submit(conn, plan["scope"], user_id=cmd.user_id, idempotency_key=cmd.idempotency_key)
    else:
        submitted = await queue.submit_partitioned(
            conn, plan["scope"], [p["scope"] for p in parts], user_id=cmd.user_id, idempotency_key=cmd.idempotency_key
        )
    return {
        "id": str(submitted.id), "created": submitted.created, "status": submitted.status,
        "split": plan["split"], "partitions": len(parts), "contracts": plan["contracts"],
    }  # fmt: skip


async def cancel_investigation(conn: asyncpg.Connection, cmd: CancelInvestigation) -> str | None:
    """``cancelled``, ``cancel_requested`` (running work stops at its next lease renewal), the status it already
    ended with, or None if there is no such investigation; ``investigation.cancelled`` in the same transaction."""
    return await queue.cancel(conn, cmd.investigation_id)


def detect_files(cmd: IngestFiles) -> list[DetectedFile]:
    """Every file detected (kind and format), in load order; :class:`~cidadao.errors.InputFormatError` naming
    the first that is missing or not what it claims — nothing is stored then."""
    return sorted((detect(p, cmd.kind, cmd.format) for p in cmd.paths), key=lambda d: _KIND_ORDER[d.kind])


async def ingest_files(
    conn: asyncpg.Connection, cmd: IngestFiles | list[DetectedFile], settings: Settings,
    on_bytes: Callable[[int], None] | None = None, caches: Caches | None = None,
) -> list[IngestReport]:  # fmt: skip
    """Load the files (a command, or files already detected); per stored batch a ``contracts.ingested`` event
    and a ``cache.invalidate`` of its organs' contract pages. With ``caches``, those pages are forgotten here
    too before this returns (the event reaches the other machines). One report per kind, in load order."""
    detected = detect_files(cmd) if isinstance(cmd, IngestFiles) else cmd
    reports: dict[str, IngestReport] = {}
    for d in detected:
        report = reports.setdefault(d.kind, IngestReport(kind=d.kind))
        await ingest_file(
            conn, d, report, batch_rows=settings.ingest_batch_rows, max_value=settings.max_contract_value,
            on_bytes=on_bytes,
        )  # fmt: skip
    changed = sorted({o for r in reports.values() for o in r.organs})
    stored = any(r.accepted for r in reports.values())
    if caches is not None and (changed or stored):
        await caches.invalidate(prefixes=[f"contracts:{organ}:" for organ in changed] + ["records:"])
    return list(reports.values())
