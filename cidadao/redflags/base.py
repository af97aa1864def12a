"""What a rule returns, and the shared data rules read.

A rule is pure and vectorised: it gets a :class:`~cidadao.redflags.frame.Frame` (contract rules) or merged
per-agency statistics (agency rules) and returns :class:`Hits`: the positions it flags, a severity and a
score for each, the evidence (the numbers that triggered it, column by column) and the basis, plus how many
contracts or agencies it could not judge (``insufficient_data``) instead of guessing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, Literal, Protocol

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from cidadao.redflags.frame import F64, I64, Frame

__all__ = [
    "REGISTRY_SCHEMA",
    "SANCTIONS_SCHEMA",
    "SEVERITIES",
    "AgencyRule",
    "ContractRule",
    "Hits",
    "Level",
    "SideData",
    "severity_by_score",
]

Level = Literal["contract", "agency"]
SEVERITIES: Final = ("low", "medium", "high")


def severity_by_score(score: F64, medium: float, high: float) -> npt.NDArray[np.int8]:
    """0 (low), 1 (medium) or 2 (high) by score thresholds."""
    out: npt.NDArray[np.int8] = ((score >= medium).astype(np.int8) + (score >= high)).astype(np.int8)
    return out


@dataclass(frozen=True, eq=False)
class Hits:
    """Positions flagged by one rule, with aligned severities (0-2), scores and evidence columns."""

    flag: str
    rows: I64
    severity: npt.NDArray[np.int8]
    score: F64
    evidence: dict[str, Any]  # name -> sequence aligned with rows
    basis: str
    insufficient: int = 0

    @classmethod
    def none(cls, flag: str, basis: str, insufficient: int = 0) -> Hits:
        return cls(flag, np.zeros(0, np.int64), np.zeros(0, np.int8), np.zeros(0), {}, basis, insufficient)

    def __len__(self) -> int:
        return int(self.rows.size)


SANCTIONS_SCHEMA: Final = pa.schema(
    [
        pa.field("document", pa.string()),
        pa.field("starts_on", pa.date32()),
        pa.field("ends_on", pa.date32()),
        pa.field("bars_contracting", pa.bool_()),
        pa.field("sanction_type", pa.string()),
        pa.field("registry", pa.string()),
    ]
)
REGISTRY_SCHEMA: Final = pa.schema(
    [
        pa.field("document", pa.string()),
        pa.field("opening_date", pa.date32()),
        pa.field("registry_status", pa.string()),
    ]
)


@dataclass(frozen=True, eq=False)
class SideData:
    """Reference data every partition needs, put once into the object store by the engine.

    ``sanctions``: document, starts_on, ends_on (null = open-ended), bars_contracting, sanction_type, registry.
    ``registry``: document, opening_date, registry_status (the supplier registry).
    """

    sanctions: pa.Table = field(default_factory=SANCTIONS_SCHEMA.empty_table)
    registry: pa.Table = field(default_factory=REGISTRY_SCHEMA.empty_table)


class ContractRule(Protocol):
    """A contract-level rule. ``phase`` 1 needs only the frame; phase 2 also the merged statistics."""

    @property
    def flag(self) -> str: ...
    @property
    def level(self) -> Level: ...
    @property
    def phase(self) -> int: ...
    @property
    def basis(self) -> str: ...

    def evaluate(self, frame: Frame, side: SideData, stats: Any) -> Hits: ...


class AgencyRule(Protocol):
    """An agency-level rule over merged per-agency statistics."""

    @property
    def flag(self) -> str: ...
    @property
    def level(self) -> Level: ...
    @property
    def basis(self) -> str: ...

    def evaluate(self, agencies: Any) -> Hits: ...
