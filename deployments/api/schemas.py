"""The bodies the API sends, as pydantic models: what ``/openapi.json`` promises, checked by schemathesis.

They describe; they do not serialise. The routes answer cached bytes (orjson, kept compressed), so FastAPI
returns those as they are and never validates them against these models: the hot path pays nothing. Extra
members a future version adds are allowed by every model (nothing here says ``additionalProperties: false``).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

__all__ = [
    "BatchResults",
    "Cancelled",
    "ContractChoices",
    "ContractDetail",
    "ContractLocation",
    "ContractPage",
    "FlagPage",
    "Investigation",
    "InvestigationResult",
    "InvestigationStarted",
    "Live",
    "OrganDetail",
    "OrganMonthFlags",
    "OrganPage",
    "Progress",
    "Ready",
    "SupplierDetail",
    "SupplierPage",
]

Severity = Literal["low", "medium", "high"]  # cidadao.redflags.base.SEVERITIES
Status = Literal["queued", "running", "completed", "failed", "cancelled"]
Evidence = dict[str, Any]
NEXT = Field(description="the cursor of the following page (`cursor=`); null on the last page")


class Contract(BaseModel):
    id: int = Field(description="the contract's id here: what `GET /api/v1/contracts/{id}` answers")
    source: Literal["portal", "pncp", "csv"]
    source_id: str = Field(description="the source's own id (Portal `id`, PNCP `numeroControlePNCP`)")
    numero: str | None
    objeto: str | None
    object_class: str | None
    modalidade: str | None
    situacao: str | None
    signed_on: date
    starts_on: date | None
    ends_on: date | None
    initial_value: float | None
    final_value: float | None
    supplier_document: str | None
    supplier_name: str | None
    ug_codigo: str | None
    orgao_codigo: str
    uf: str | None


class ContractFlag(BaseModel):
    """A flag's latest finding on one contract."""

    flag: str
    severity: Severity
    score: float
    evidence: Evidence
    basis: str = Field(description="the legal basis")
    investigation_id: uuid.UUID
    created_at: datetime


class ContractDetail(Contract):
    flags: list[ContractFlag]


class ContractLocation(BaseModel):
    """A contract a source's own id names (a 308's body; its ``Location`` is ``location``)."""

    id: int
    source: Literal["portal", "pncp", "csv"]
    source_id: str
    location: str = Field(description="`/api/v1/contracts/{id}`")


class ContractChoices(BaseModel):
    """A source id that several sources gave (a 300's body): one entry per contract."""

    detail: str
    contracts: list[ContractLocation]


class ContractPage(BaseModel):
    contracts: list[Contract]
    next: str | None = NEXT


class Organ(BaseModel):
    codigo: str = Field(description="SIAFI code (5 digits) or CNPJ (14)")
    sigla: str | None
    nome: str | None
    cnpj: str | None
    orgao_maximo_codigo: str | None
    orgao_maximo_sigla: str | None
    orgao_maximo_nome: str | None


class OrganPage(BaseModel):
    organs: list[Organ]
    next: str | None = NEXT


class ManagementUnit(BaseModel):
    codigo: str
    nome: str | None
    uf: str | None
    municipio: str | None


class OrganDetail(Organ):
    contracts: int
    total_value: float
    first_signed: date | None
    last_signed: date | None
    management_units: list[ManagementUnit] = Field(description="at most 1,000, by code")


class Supplier(BaseModel):
    document: str = Field(description="CNPJ (14 digits) or CPF (11)")
    kind: Literal["PJ", "PF"]
    name: str | None
    legal_name: str | None
    opening_date: date | None
    registry_status: Literal["ATIVA", "BAIXADA", "SUSPENSA", "INAPTA", "NULA"] | None


class SupplierPage(BaseModel):
    suppliers: list[Supplier]
    next: str | None = NEXT


class SupplierTotals(BaseModel):
    contracts: int
    total_value: float
    organs: int


class Sanction(BaseModel):
    registry: Literal["CEIS", "CNEP"]
    source_id: str
    sanction_type: str | None
    sanction_detail: str | None
    bars_contracting: bool
    starts_on: date | None
    ends_on: date | None = Field(description="null: open-ended (still active)")
    sanctioning_body: str | None
    sanctioning_uf: str | None
    fine_value: float | None


class SupplierDetail(Supplier):
    totals: SupplierTotals
    contracts: list[Contract] = Field(description="the newest 20; the rest through `/api/v1/contracts?supplier=`")
    sanctions: list[Sanction]


class Flag(BaseModel):
    """A contract flag names its contract (``contract_id``, with the source's ``source`` and ``source_id``); an
    agency flag names only its organ."""

    id: int
    investigation_id: uuid.UUID
    level: Literal["contract", "agency"]
    contract_id: int | None
    source: str | None = None
    source_id: str | None = None
    orgao_codigo: str | None
    flag: str
    severity: Severity
    score: float
    evidence: Evidence
    basis: str
    created_at: datetime


class FlagPage(BaseModel):
    flags: list[Flag]
    next: str | None = NEXT


class OrganMonthFlags(BaseModel):
    orgao_codigo: str
    month: str = Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="the signing month, YYYY-MM")
    flag: str
    n: int = Field(ge=0)


class InvestigationScope(BaseModel):
    orgao: str | None = Field(None, description="absent when every organ is investigated")
    all: bool | None = Field(None, description="true when every organ is investigated")
    year: int | None


class Investigation(BaseModel):
    id: uuid.UUID
    status: Status
    user_id: str | None = Field(description="the API key that started it")
    scope: InvestigationScope
    progress: float = Field(ge=0, le=1)
    attempts: int
    error: str | None
    result: dict[str, Any] | None = Field(description="the summary once it ended")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    partitions: int = Field(description="how many child investigations (one per organ) it was split into")
    parent_id: uuid.UUID | None
    flags: int = Field(description="flags found so far")
    children: dict[str, int] | None = Field(None, description="a partitioned one's children, counted by status")


class Progress(BaseModel):
    """What a watcher is told (server-sent events, WebSocket batches): the state now."""

    investigation_id: uuid.UUID
    status: Status
    progress: float = Field(ge=0, le=1)
    attempts: int
    error: str | None
    flags: int = Field(description="flags found so far")
    children: dict[str, int] | None = Field(description="a partitioned one's children, counted by status")


class InvestigationStarted(BaseModel):
    id: uuid.UUID
    created: bool = Field(description="false when an `Idempotency-Key` replayed an earlier start")
    status: Status
    split: Literal["organ", "none"]
    partitions: int
    contracts: int = Field(description="contracts in its scope")
    location: str = Field(description="where to follow it (also the `Location` header)")


class Cancelled(BaseModel):
    id: uuid.UUID
    status: Literal["cancelled", "cancel_requested"] = Field(
        description="`cancelled` (it was queued), `cancel_requested` (it is running: it stops at its next lease "
        "renewal)"
    )


class ResultFlag(BaseModel):
    contract_id: int = Field(description="what `GET /api/v1/contracts/{id}` answers")
    source: str | None = None
    source_id: str | None = None
    flag: str
    severity: Severity
    score: float
    evidence: Evidence
    basis: str


class AgencyFlag(BaseModel):
    orgao: str
    flag: str
    severity: Severity
    score: float
    evidence: Evidence
    basis: str


class InvestigationResult(BaseModel):
    investigation_id: uuid.UUID
    status: Literal["completed"]
    error: str | None
    scope: InvestigationScope
    contracts_analyzed: int
    seconds: float | None
    flags: list[ResultFlag] = Field(description="at most CIDADAO_API_MAX_RESULT_FLAGS (`truncated` says so)")
    agency_flags: list[AgencyFlag]
    insufficient: dict[str, Any] = Field(description="rules that lacked data, with why")
    truncated: bool
    flags_total: int


class BatchResult(BaseModel):
    status: int = Field(description="the operation's HTTP status")
    body: Any = Field(description="its JSON body (a problem when it failed)")
    location: str | None = Field(None, description="its `Location` header, when it had one")


class BatchResults(BaseModel):
    results: list[BatchResult] = Field(description="one per operation, in order")


class Live(BaseModel):
    status: Literal["ok"]


class Ready(BaseModel):
    status: Literal["ok"]
    checks: dict[str, str] = Field(description="`postgres` and `redis`: ok; `agents`: whether any are running")
