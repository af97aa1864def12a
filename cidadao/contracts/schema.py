"""The canonical schema: Arrow for bulk work, pydantic for single records.

Readers turn every source format into rows of these columns (tuples in ``*_COLUMNS`` order, the order
of the staging tables the ingest COPYs into). The shape the red-flag rules read is
:data:`cidadao.redflags.frame.ANALYSIS_SCHEMA`.
"""

from __future__ import annotations

from datetime import date
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "CONTRACT_COLUMNS",
    "SANCTION_COLUMNS",
    "SUPPLIER_COLUMNS",
    "Contract",
    "Sanction",
    "Supplier",
]

CONTRACT_COLUMNS: Final = (
    "ord", "source", "source_id", "numero", "objeto", "object_class", "numero_processo",
    "fundamento_legal", "situacao", "modalidade", "modalidade_texto",
    "signed_on", "starts_on", "ends_on", "published_on", "initial_value", "final_value",
    "supplier_document", "supplier_kind", "supplier_name", "supplier_legal_name",
    "ug_codigo", "ug_nome", "orgao_codigo", "orgao_sigla", "orgao_nome", "orgao_cnpj",
    "orgao_maximo_codigo", "orgao_maximo_sigla", "orgao_maximo_nome", "uf", "municipio", "raw",
)  # fmt: skip

SANCTION_COLUMNS: Final = (
    "ord", "registry", "source_id", "document", "name", "sanction_type", "sanction_detail",
    "bars_contracting", "starts_on", "ends_on", "published_on", "sanctioning_body", "sanctioning_uf",
    "fine_value", "legal_basis", "raw",
)  # fmt: skip

SUPPLIER_COLUMNS: Final = ("ord", "document", "kind", "legal_name", "opening_date", "registry_status")

Modality = Literal[
    "pregao", "dispensa", "inexigibilidade", "concorrencia", "concurso", "leilao", "tomada_de_precos",
    "convite", "outra",
]  # fmt: skip


class Contract(BaseModel):
    """One contract, as stored (the API and notebooks read these)."""

    model_config = ConfigDict(frozen=True)

    source: Literal["portal", "pncp", "csv"]
    source_id: str
    numero: str | None = None
    objeto: str | None = None
    object_class: str | None = None
    modalidade: Modality | None = None
    signed_on: date
    starts_on: date | None = None
    ends_on: date | None = None
    initial_value: float | None = Field(None, ge=0)
    final_value: float | None = Field(None, ge=0)
    supplier_document: str | None = None
    supplier_name: str | None = None
    ug_codigo: str | None = None
    orgao_codigo: str


class Sanction(BaseModel):
    """One CEIS/CNEP sanction. Active on a day between ``starts_on`` and ``ends_on`` (open end = active)."""

    model_config = ConfigDict(frozen=True)

    registry: Literal["CEIS", "CNEP"]
    source_id: str
    document: str
    name: str | None = None
    sanction_type: str | None = None
    bars_contracting: bool
    starts_on: date | None = None
    ends_on: date | None = None

    def active_on(self, day: date) -> bool:
        return (self.starts_on is None or self.starts_on <= day) and (self.ends_on is None or day <= self.ends_on)


class Supplier(BaseModel):
    """One supplier from the registry."""

    model_config = ConfigDict(frozen=True)

    document: str
    kind: Literal["PJ", "PF"]
    legal_name: str | None = None
    opening_date: date | None = None
    registry_status: Literal["ATIVA", "BAIXADA", "SUSPENSA", "INAPTA", "NULA"] | None = None
