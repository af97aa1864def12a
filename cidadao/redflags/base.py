"""What a rule returns, and the shared data rules read.

A rule is pure and vectorised: it gets a :class:`~cidadao.redflags.frame.Frame` (contract rules) or merged
per-agency statistics (agency rules) and returns :class:`Hits`: the positions it flags, a severity and a
score for each, the evidence (the numbers that triggered it, column by column) and the basis, plus how many
contracts or agencies it could not judge (``insufficient_data``) instead of guessing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Final, Literal, Protocol

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from cidadao.redflags.frame import F64, I64, Frame, encode

__all__ = [
    "REGISTRY_SCHEMA",
    "SANCTIONS_SCHEMA",
    "SEVERITIES",
    "AgencyRule",
    "ContractRule",
    "Hits",
    "Level",
    "RegistryIndex",
    "SanctionIndex",
    "SideData",
    "document_keys",
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

    @cached_property
    def barring(self) -> SanctionIndex:
        """Sanctions that bar contracting, sorted by document key then start (built once, then shipped)."""
        t = self.sanctions.filter(pc.fill_null(self.sanctions["bars_contracting"], True))
        keys = document_keys(t["document"])
        t = t.filter(pa.array(keys >= 0))
        keys = keys[keys >= 0]
        start = _days(t["starts_on"], -_FOREVER)
        order = np.lexsort((start, keys))
        t, keys, start = t.take(pa.array(order)), keys[order], start[order]
        unique, first = np.unique(keys, return_index=True)
        return SanctionIndex(t, unique, first, np.diff(np.r_[first, keys.size]), start, _days(t["ends_on"], _FOREVER))

    @cached_property
    def companies(self) -> RegistryIndex:
        """The registry's companies by document key (the first row of a document wins), sorted."""
        keys = document_keys(self.registry["document"])
        ok = np.flatnonzero(keys >= 0)
        unique, first = np.unique(keys[ok], return_index=True)
        rows = pa.array(ok[first])
        t = self.registry.take(rows)
        codes, names = encode(t["registry_status"])
        return RegistryIndex(t, unique, _days(t["opening_date"], -_FOREVER), codes, names.to_pylist())

    def prepared(self) -> SideData:
        """Build the indexes now (before the object is shipped to workers, so they are built once)."""
        _ = self.barring, self.companies
        return self


_FOREVER: Final = 1 << 40


def _days(column: pa.ChunkedArray | pa.Array, fill: int) -> I64:
    out: I64 = pc.fill_null(column.cast(pa.int32()).cast(pa.int64()), fill).to_numpy(zero_copy_only=False)
    return out


def document_keys(column: pa.ChunkedArray | pa.Array) -> I64:
    """CNPJ/CPF digit strings as int64 keys (a CNPJ offset by 10^15 so it never meets a CPF); -1 if absent."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    valid = pc.fill_null(pc.match_substring_regex(array, r"^([0-9]{14}|[0-9]{11})$"), False)
    digits = pc.if_else(valid, array, pa.scalar(None, pa.string()))
    number = pc.fill_null(pc.cast(digits, pa.int64()), -1).to_numpy(zero_copy_only=False)
    company = pc.fill_null(pc.equal(pc.utf8_length(digits), 14), False).to_numpy(zero_copy_only=False)
    out: I64 = np.where(number >= 0, number + company * 10**15, -1)
    return out


@dataclass(frozen=True, eq=False)
class SanctionIndex:
    table: pa.Table  # barring sanctions sorted by (document key, start)
    keys: I64  # distinct document keys, sorted
    first: I64  # their first row in ``table``
    count: I64
    start: I64  # per row, days since 1970 (open start: far past)
    end: I64  # per row (open end: far future)


@dataclass(frozen=True, eq=False)
class RegistryIndex:
    table: pa.Table  # one row per company, sorted by key
    keys: I64
    opening: I64  # days since 1970 (unknown: far past)
    status: I64  # code into status_names; -1 unknown
    status_names: list[str]


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
