"""``/api/v1``: contracts, organs, suppliers and flags — reads, through the tiered cache, sent precompressed.

Routes are thin: parse (FastAPI and :mod:`cidadao.queries` refuse bad input naming the field), read through
:class:`~cidadao.cache.service.CachedReads`, answer the cached entry as it is kept.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.responses import Response

from cidadao import queries
from cidadao.cache.entry import Entry
from cidadao.cache.tiered import Uncacheable
from cidadao.web.problems import Problem
from deployments.api.gate import require
from deployments.api.responses import entry_response

__all__ = ["cached_record", "record_key", "router"]

router = APIRouter(prefix="/api/v1", dependencies=[Depends(require("read"))])

Organ = Annotated[str, Query(pattern=r"^(\d{5}|\d{14})$", description="SIAFI code (5 digits) or CNPJ (14)")]
Document = Annotated[str, Query(pattern=r"^(\d{11}|\d{14})$", description="CNPJ (14 digits) or CPF (11)")]
Cursor = Annotated[str | None, Query(max_length=200, description="`next` of the previous page")]
Limit = Annotated[int | None, Query(ge=1, le=10_000, description="page size (at most CIDADAO_API_MAX_PAGE_SIZE)")]
Severity = Literal["low", "medium", "high"]  # cidadao.redflags.base.SEVERITIES


def _limit(request: Request, limit: int | None) -> int:
    s = request.app.state.settings
    if limit is None:
        return int(min(s.api_default_page_size, s.api_max_page_size))
    if not 1 <= limit <= s.api_max_page_size:
        raise Problem(422, f"limit must be between 1 and {s.api_max_page_size}", field="query.limit")
    return limit


async def cached_record(services: Any, key: str, load: Callable[[Any], Awaitable[Any]]) -> Entry | None:
    """``load(conn)``'s answer under ``records:<key>`` (kept compressed); None when ``load`` found nothing
    (not remembered: an id may exist soon)."""

    async def compute() -> Any:
        async with services.reads_pool.acquire() as conn:
            value = await load(conn)
        if value is None:
            raise Uncacheable(None)
        return value

    entry: Entry = await services.reads.record(key, compute, compress=True)
    return None if entry.body == b"null" else entry


async def _cached(request: Request, key: str, load: Callable[[Any], Awaitable[Any]], *, missing: str = "") -> Response:
    entry = await cached_record(request.app.state.services, key, load)
    if entry is None:
        raise Problem(404, missing or "not found")
    return entry_response(request.scope, entry, minimum_size=request.app.state.settings.compression_min_size)


def record_key(*parts: Any) -> str:
    return ":".join("" if p is None else str(p) for p in parts)


@router.get("/contracts", summary="Search contracts, newest signed first (cursor pages)")
async def contracts(
    request: Request,
    orgao: Organ | None = None,
    ug: Annotated[str | None, Query(pattern=r"^\d{1,14}$", description="unidade gestora code")] = None,
    supplier: Document | None = None,
    object_class: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    flag: Annotated[str | None, Query(pattern=r"^[a-z_]{1,64}$", description="contracts with this flag")] = None,
    date_from: date | None = None,
    date_to: date | None = None,
    value_min: Annotated[float | None, Query(ge=0, le=1e13)] = None,
    value_max: Annotated[float | None, Query(ge=0, le=1e13)] = None,
    cursor: Cursor = None,
    limit: Limit = None,
) -> Response:
    search = queries.ContractSearch(orgao, ug, supplier, object_class, flag, date_from, date_to, value_min, value_max)
    search.check(request.app.state.settings.api_max_date_range_days)
    n = _limit(request, limit)
    if cursor is not None:
        queries.decode_cursor(cursor, (str, int))  # refused before any work
    key = record_key(
        "search", orgao, ug, supplier, object_class, flag, date_from, date_to, value_min, value_max, cursor, n
    )
    return await _cached(request, key, lambda c: queries.search_contracts(c, search, limit=n, cursor=cursor))


@router.get("/contracts/{contract_id}", summary="One contract with its flags")
async def contract(request: Request, contract_id: Annotated[int, Path(ge=1, le=2**63 - 1)]) -> Response:
    return await _cached(request, record_key("contract", contract_id), lambda c: queries.contract(c, contract_id),
                         missing=f"no contract {contract_id}")  # fmt: skip


@router.get("/organs", summary="Organs by code (cursor pages)")
async def organs(request: Request, cursor: Cursor = None, limit: Limit = None) -> Response:
    n = _limit(request, limit)
    if cursor is not None:
        queries.decode_cursor(cursor, (str,))
    return await _cached(request, record_key("organs", cursor, n), lambda c: queries.organs(c, limit=n, cursor=cursor))


@router.get("/organs/{codigo}", summary="An organ, its totals and its management units")
async def organ(request: Request, codigo: Annotated[str, Path(pattern=r"^(\d{5}|\d{14})$")]) -> Response:
    return await _cached(request, record_key("organ", codigo), lambda c: queries.organ(c, codigo),
                         missing=f"no organ {codigo}")  # fmt: skip


@router.get("/suppliers", summary="Suppliers by document (cursor pages)")
async def suppliers(
    request: Request, sanctioned: bool | None = None, cursor: Cursor = None,
    limit: Limit = None,
) -> Response:  # fmt: skip
    n = _limit(request, limit)
    if cursor is not None:
        queries.decode_cursor(cursor, (str,))
    return await _cached(request, record_key("suppliers", sanctioned, cursor, n),
                         lambda c: queries.suppliers(c, limit=n, cursor=cursor, sanctioned=sanctioned))  # fmt: skip


@router.get("/suppliers/{document}", summary="A supplier with its newest contracts, totals and sanctions")
async def supplier(request: Request, document: Annotated[str, Path(pattern=r"^(\d{11}|\d{14})$")]) -> Response:
    return await _cached(request, record_key("supplier", document), lambda c: queries.supplier(c, document),
                         missing=f"no supplier {document}")  # fmt: skip


@router.get("/flags", summary="Flags found by investigations, newest first (cursor pages)")
async def flags(
    request: Request,
    investigation_id: uuid.UUID | None = None,
    flag: Annotated[str | None, Query(pattern=r"^[a-z_]{1,64}$")] = None,
    severity: Severity | None = None,
    orgao: Organ | None = None,
    cursor: Cursor = None,
    limit: Limit = None,
) -> Response:
    n = _limit(request, limit)
    if cursor is not None:
        queries.decode_cursor(cursor, (int,))
    return await _cached(
        request, record_key("flags", investigation_id, flag, severity, orgao, cursor, n),
        lambda c: queries.search_flags(c, limit=n, cursor=cursor, investigation_id=investigation_id, flag=flag,
                                       severity=severity, orgao=orgao),
    )  # fmt: skip


Month = Annotated[str | None, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="YYYY-MM")]


@router.get("/flags/by-organ-month", summary="Flags per organ, signing month and flag (the projection)")
async def flags_by_organ_month(request: Request, orgao: Organ | None = None, since: Month = None,
                               until: Month = None) -> Response:  # fmt: skip
    entry = await request.app.state.services.reads.flags_by_organ_month(orgao=orgao, since=since, until=until,
                                                                        compress=True)  # fmt: skip
    return entry_response(request.scope, entry, minimum_size=request.app.state.settings.compression_min_size)
