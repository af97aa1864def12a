"""``/api/v1``: contracts, organs, suppliers and flags — reads, through the tiered cache, sent precompressed.

Routes are thin: parse (FastAPI and :mod:`cidadao.queries` refuse bad input naming the field), read through
:class:`~cidadao.cache.service.CachedReads`, answer the cached entry as it is kept.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BeforeValidator
from starlette.responses import Response

from cidadao import queries
from cidadao.cache.entry import Entry
from cidadao.cache.tiered import Uncacheable
from cidadao.web.problems import Problem
from deployments.api.gate import require
from deployments.api.responses import JSONBody, entry_response
from deployments.api.schemas import (
    ContractChoices,
    ContractDetail,
    ContractLocation,
    ContractPage,
    FlagPage,
    OrganDetail,
    OrganMonthFlags,
    OrganPage,
    SupplierDetail,
    SupplierPage,
)

__all__ = ["cached_record", "internal_id", "record_key", "router"]

router = APIRouter(prefix="/api/v1", dependencies=[Depends(require("read"))])

Organ = Annotated[str, Query(pattern=r"^(\d{5}|\d{14})$", description="SIAFI code (5 digits) or CNPJ (14)")]
Document = Annotated[str, Query(pattern=r"^(\d{11}|\d{14})$", description="CNPJ (14 digits) or CPF (11)")]
Cursor = Annotated[str | None, Query(max_length=200, description="`next` of the previous page")]
# one limit, the settings': stated in /openapi.json (deployments.api.openapi) and enforced by _limit, one message
Limit = Annotated[int | None, Query(description="page size, 1 to CIDADAO_API_MAX_PAGE_SIZE")]
SourceId = Annotated[str | None, Query(
    min_length=1, max_length=queries.SOURCE_ID_MAX,
    description="the contract's id at its source (Portal `id`, PNCP `numeroControlePNCP`); one contract per source",
)]  # fmt: skip
Severity = Literal["low", "medium", "high"]  # cidadao.redflags.base.SEVERITIES


def _iso_day(value: object) -> object:
    """A date as the schema says, ``YYYY-MM-DD`` (pydantic alone would also take ``0`` as 1970-01-01)."""
    if isinstance(value, str) and _DAY.fullmatch(value) is None:
        raise ValueError("must be a date, YYYY-MM-DD")
    return value


_DAY: Final = re.compile(r"\d{4}-\d{2}-\d{2}")
Day = Annotated[date | None, BeforeValidator(_iso_day), Query(description="YYYY-MM-DD")]


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


@router.get("/contracts", summary="Search contracts, newest signed first (cursor pages)", response_model=ContractPage)
async def contracts(
    request: Request,
    orgao: Organ | None = None,
    ug: Annotated[str | None, Query(pattern=r"^\d{1,14}$", description="unidade gestora code")] = None,
    supplier: Document | None = None,
    object_class: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    flag: Annotated[str | None, Query(pattern=r"^[a-z_]{1,64}$", description="contracts with this flag")] = None,
    date_from: Day = None,
    date_to: Day = None,
    value_min: Annotated[float | None, Query(ge=0, le=1e13)] = None,
    value_max: Annotated[float | None, Query(ge=0, le=1e13)] = None,
    source_id: SourceId = None,
    cursor: Cursor = None,
    limit: Limit = None,
) -> Response:
    search = queries.ContractSearch(orgao, ug, supplier, object_class, flag, date_from, date_to, value_min, value_max,
                                    source_id)  # fmt: skip
    search.check(request.app.state.settings.api_max_date_range_days)
    n = _limit(request, limit)
    if cursor is not None:
        queries.decode_cursor(cursor, (str, int))  # refused before any work
    key = record_key("search", orgao, ug, supplier, object_class, flag, date_from, date_to, value_min, value_max,
                     cursor, n, source_id)  # fmt: skip
    return await _cached(request, key, lambda c: queries.search_contracts(c, search, limit=n, cursor=cursor))


ContractRef = Annotated[str, Path(
    min_length=1, max_length=queries.SOURCE_ID_MAX,
    description="The contract's id: the integer `id` every answer gives (`contracts.id`). A source's own id "
    "(Portal `id`, PNCP `numeroControlePNCP` with its `/` as `%2F`) is answered by a 308 to the contract it names; "
    "a number that is a contract's id is that contract, even when it is also some source's id.",
)]  # fmt: skip
_CONTRACT_RESPONSES: Final[dict[int | str, dict[str, Any]]] = {  # its 404's body: the Problem (openapi.py)
    300: {"description": "the source id names contracts of several sources: `contracts` lists each one's URL",
          "model": ContractChoices},
    308: {"description": "a source's own id of exactly one contract: `Location` is the contract's URL",
          "model": ContractLocation,
          "headers": {"Location": {"required": True, "schema": {"type": "string"},
                                   "description": "`/api/v1/contracts/{id}`"}}},
    404: {"description": "no contract has this id, nor any source this id"},
}  # fmt: skip
_INTERNAL_ID: Final = re.compile(r"[1-9]\d{0,18}")


def internal_id(ref: str) -> int | None:
    """``ref`` as a contract's id (``contracts.id``): a canonical decimal in bigint's range; else None."""
    if _INTERNAL_ID.fullmatch(ref) is None:
        return None
    value = int(ref)
    return value if value <= 2**63 - 1 else None


@router.get("/contracts/{contract_id:path}", summary="One contract with its flags", response_model=ContractDetail,
            responses=_CONTRACT_RESPONSES)  # fmt: skip
async def contract(request: Request, contract_id: ContractRef) -> Response:
    """The contract whose `id` is `contract_id`; a source's own id answers 308 to it (see the parameter)."""
    services, settings = request.app.state.services, request.app.state.settings
    as_id = internal_id(contract_id)
    if as_id is not None:
        entry = await cached_record(services, record_key("contract", as_id), lambda c: queries.contract(c, as_id))
        if entry is not None:
            return entry_response(request.scope, entry, minimum_size=settings.compression_min_size)
    # not a contract's id: perhaps a source's own id (the form results gave before ids were one)
    entry = await cached_record(services, record_key("contract_source", contract_id),
                                lambda c: _named_by_source(c, contract_id))  # fmt: skip
    found: list[dict[str, Any]] = entry.value() if entry is not None else []
    where = [{**f, "location": f"/api/v1/contracts/{f['id']}"} for f in found]
    if len(where) == 1:
        return JSONBody(where[0], status_code=308, headers={"Location": where[0]["location"]})
    if where:
        return JSONBody({"detail": f"{len(where)} contracts have the source id {contract_id}: choose one",
                         "contracts": where}, status_code=300)  # fmt: skip
    raise Problem(
        404,
        f"no contract {contract_id}: it is neither a contract's id nor a source's id of one. A contract's id is the "
        "integer `id` of GET /api/v1/contracts (`contract_id` in flags and results); to find a contract by its "
        "source's own id (Portal `id`, PNCP `numeroControlePNCP`): GET /api/v1/contracts?source_id=...",
        field="path.contract_id",
    )


async def _named_by_source(conn: Any, source_id: str) -> list[dict[str, Any]] | None:
    found = await queries.contracts_by_source_id(conn, source_id)
    return found or None  # none: not remembered (it may be ingested soon)


@router.get("/organs", summary="Organs by code (cursor pages)", response_model=OrganPage)
async def organs(request: Request, cursor: Cursor = None, limit: Limit = None) -> Response:
    n = _limit(request, limit)
    if cursor is not None:
        queries.decode_cursor(cursor, (str,))
    return await _cached(request, record_key("organs", cursor, n), lambda c: queries.organs(c, limit=n, cursor=cursor))


@router.get("/organs/{codigo}", summary="An organ, its totals and its management units", response_model=OrganDetail)
async def organ(request: Request, codigo: Annotated[str, Path(pattern=r"^(\d{5}|\d{14})$")]) -> Response:
    return await _cached(request, record_key("organ", codigo), lambda c: queries.organ(c, codigo),
                         missing=f"no organ {codigo}")  # fmt: skip


@router.get("/suppliers", summary="Suppliers by document (cursor pages)", response_model=SupplierPage)
async def suppliers(
    request: Request, sanctioned: bool | None = None, cursor: Cursor = None,
    limit: Limit = None,
) -> Response:  # fmt: skip
    n = _limit(request, limit)
    if cursor is not None:
        queries.decode_cursor(cursor, (str,))
    return await _cached(request, record_key("suppliers", sanctioned, cursor, n),
                         lambda c: queries.suppliers(c, limit=n, cursor=cursor, sanctioned=sanctioned))  # fmt: skip


@router.get(
    "/suppliers/{document}",
    summary="A supplier with its newest contracts, totals and sanctions",
    response_model=SupplierDetail,
)
async def supplier(request: Request, document: Annotated[str, Path(pattern=r"^(\d{11}|\d{14})$")]) -> Response:
    return await _cached(request, record_key("supplier", document), lambda c: queries.supplier(c, document),
                         missing=f"no supplier {document}")  # fmt: skip


@router.get("/flags", summary="Flags found by investigations, newest first (cursor pages)", response_model=FlagPage)
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


@router.get(
    "/flags/by-organ-month",
    summary="Flags per organ, signing month and flag (the projection)",
    response_model=list[OrganMonthFlags],
)
async def flags_by_organ_month(request: Request, orgao: Organ | None = None, since: Month = None,
                               until: Month = None) -> Response:  # fmt: skip
    entry = await request.app.state.services.reads.flags_by_organ_month(orgao=orgao, since=since, until=until,
                                                                        compress=True)  # fmt: skip
    return entry_response(request.scope, entry, minimum_size=request.app.state.settings.compression_min_size)
