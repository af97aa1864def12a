"""One sweep of every rule over a table of contracts, in two passes over chunks of whole organs.

A partition is an organ × fiscal year; a chunk holds every partition of its organs. Pass 1 (per chunk): the
rules that need only their own partition (splitting, amendments, sanctions, new suppliers, signature days);
the agency rules, over per-partition statistics merged across the organ's years; and the chunk's price
histogram. The driver merges the histograms into price thresholds per object class (peers span organs).
Pass 2 (per chunk): the rules that need those thresholds (price outliers). The functions here are pure and
Ray-free; ``pipelines`` runs them on Ray, :func:`sweep_table` runs them in this process. Both give the same
answer, to the bit: chunks hold whole organs, and statistics merge in a fixed order.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Final, NamedTuple

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from cidadao.redflags.base import SEVERITIES, Hits, SideData
from cidadao.redflags.frame import ANALYSIS_SCHEMA, I64, Frame
from cidadao.redflags.registry import AGENCY_RULES, CONTRACT_RULES, FLAGS
from cidadao.redflags.stats import (
    AgencyPartial,
    PricePartial,
    PriceThresholds,
    agency_partial,
    merge_agencies,
    merge_prices,
    price_partial,
)

__all__ = [
    "FLAG_SCHEMA",
    "AgencyFlag",
    "ContractFlag",
    "PassOne",
    "PassTwo",
    "SweepResult",
    "chunk_table",
    "finish",
    "pass_one",
    "pass_two",
    "sort_partitions",
    "sweep_chunk",
    "sweep_table",
]


class ContractFlag(NamedTuple):
    contract_id: str
    flag: str
    severity: str
    score: float
    evidence: dict[str, Any]
    basis: str
    db_id: int  # contracts.id; 0 for contracts not read from Postgres

    def as_dict(self) -> dict[str, Any]:
        return {"contract_id": self.contract_id, "flag": self.flag, "severity": self.severity,
                "score": self.score, "evidence": self.evidence, "basis": self.basis}  # fmt: skip


class AgencyFlag(NamedTuple):
    orgao: str
    flag: str
    severity: str
    score: float
    evidence: dict[str, Any]
    basis: str

    def as_dict(self) -> dict[str, Any]:
        return {"orgao": self.orgao, "flag": self.flag, "severity": self.severity, "score": self.score,
                "evidence": self.evidence, "basis": self.basis}  # fmt: skip


FLAG_SCHEMA: Final = pa.schema(
    [
        pa.field("contract_id", pa.string()),
        pa.field("flag", pa.string()),
        pa.field("severity", pa.string()),
        pa.field("score", pa.float64()),
        pa.field("evidence", pa.string()),  # one JSON object per flag
        pa.field("basis", pa.string()),
        pa.field("db_id", pa.int64()),
    ]
)


@dataclass(frozen=True, eq=False)
class PassOne:
    rows: int
    flags: pa.Table  # FLAG_SCHEMA
    insufficient: dict[str, int]
    prices: PricePartial
    agency_flags: list[AgencyFlag]
    organs: list[str]


@dataclass(frozen=True, eq=False)
class PassTwo:
    flags: pa.Table
    insufficient: dict[str, int]


@dataclass(eq=False)
class SweepResult:
    """A sweep's answer. Contract flags are kept columnar (``flag_table``, evidence as JSON text): a few
    hundred thousand flags cost tens of MB, not the GB their Python objects would."""

    contracts_analyzed: int
    flag_table: pa.Table
    agency_flags: list[AgencyFlag]
    insufficient: dict[str, int] = field(default_factory=dict)

    @cached_property
    def flags(self) -> list[ContractFlag]:
        """The contract flags as objects (evidence decoded), in (contract_id, flag) order."""
        t = self.flag_table
        return [
            ContractFlag(cid, flag, sev, score, orjson.loads(ev), basis, db)
            for cid, flag, sev, score, ev, basis, db in zip(*(t[c].to_pylist() for c in FLAG_SCHEMA.names), strict=True)
        ]  # fmt: skip

    def as_dict(self) -> dict[str, Any]:
        return {
            "contracts_analyzed": self.contracts_analyzed,
            "flags": [f.as_dict() for f in self.flags],
            "agency_flags": [f.as_dict() for f in self.agency_flags],
            "insufficient": dict(self.insufficient),
        }

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(FLAGS, 0)
        for row in pc.value_counts(self.flag_table["flag"]).to_pylist():
            out[row["values"]] += row["counts"]
        for a in self.agency_flags:
            out[a.flag] += 1
        return out


def _evidence_rows(hits: Hits) -> list[dict[str, Any]]:
    columns = {k: (v.tolist() if isinstance(v, np.ndarray) else list(v)) for k, v in hits.evidence.items()}
    names = list(columns)
    return [dict(zip(names, values, strict=True)) for values in zip(*columns.values(), strict=True)] if names else [
        {} for _ in range(len(hits))]  # fmt: skip


def _contract_flags(frame: Frame, hits: Hits) -> pa.Table:
    n = len(hits)
    take = pa.array(hits.rows)
    return pa.table(
        {
            "contract_id": frame.table["contract_id"].take(take),
            "flag": pa.array([hits.flag] * n, pa.string()),
            "severity": pa.array(np.array(SEVERITIES, dtype=object)[hits.severity], pa.string()),
            "score": pa.array(hits.score, pa.float64()),
            "evidence": pa.array([orjson.dumps(e).decode() for e in _evidence_rows(hits)], pa.string()),
            "basis": pa.array([hits.basis] * n, pa.string()),
            "db_id": pc.fill_null(frame.table["id"].take(take), 0),
        },
        schema=FLAG_SCHEMA,
    )


def _agency_flags(partials: list[AgencyPartial], insufficient: dict[str, int]) -> tuple[list[AgencyFlag], list[str]]:
    totals = merge_agencies(partials)
    out: list[AgencyFlag] = []
    for rule in AGENCY_RULES:
        hits = rule.evaluate(totals)
        insufficient[rule.flag] = hits.insufficient
        organs = [totals.orgao[i] for i in hits.rows.tolist()]
        severity = [SEVERITIES[s] for s in hits.severity.tolist()]
        out.extend(
            AgencyFlag(o, hits.flag, sev, score, ev, hits.basis)
            for o, sev, score, ev in zip(organs, severity, hits.score.tolist(), _evidence_rows(hits), strict=True)
        )
    return out, totals.orgao


def _contract_rules(frame: Frame, side: SideData, phase: int, stats: Any) -> tuple[pa.Table, dict[str, int]]:
    flags: list[pa.Table] = []
    insufficient: dict[str, int] = {}
    for rule in CONTRACT_RULES:
        if rule.phase == phase:
            hits = rule.evaluate(frame, side, stats)
            flags.append(_contract_flags(frame, hits))
            insufficient[rule.flag] = hits.insufficient
    return _concat(flags), insufficient


def pass_one(table: pa.Table | Frame, side: SideData) -> PassOne:
    """The partition-local rules, the agency rules and the chunk's price histogram (whole organs only)."""
    frame = table if isinstance(table, Frame) else Frame(table)
    flags, insufficient = _contract_rules(frame, side, 1, None)
    agency, organs = _agency_flags([agency_partial(frame)], insufficient)
    return PassOne(frame.n, flags, insufficient, price_partial(frame), agency, organs)


def pass_two(table: pa.Table | Frame, side: SideData, thresholds: PriceThresholds) -> PassTwo:
    """The rules that need statistics merged across partitions."""
    frame = table if isinstance(table, Frame) else Frame(table)
    return PassTwo(*_contract_rules(frame, side, 2, thresholds))


def sweep_chunk(table: pa.Table, side: SideData, thresholds: PriceThresholds) -> tuple[PassOne, PassTwo]:
    """Both passes over one chunk of whole organs, when the price thresholds are known beforehand."""
    frame = Frame(sort_partitions(table))
    return pass_one(frame, side), pass_two(frame, side, thresholds)


def _concat(tables: Sequence[pa.Table]) -> pa.Table:
    return pa.concat_tables(tables).combine_chunks() if tables else FLAG_SCHEMA.empty_table()


def merge_pass_one(results: Sequence[PassOne], peers: Iterable[PricePartial] = ()) -> PriceThresholds:
    return merge_prices([r.prices for r in results] + list(peers))


def finish(first: Sequence[PassOne], second: Sequence[PassTwo]) -> SweepResult:
    """Every flag in a stable order; refuses chunks that split an organ (its agency rules would be wrong)."""
    seen: set[str] = set()
    for one in first:
        if seen.intersection(one.organs):
            raise ValueError(f"organs {sorted(seen.intersection(one.organs))[:5]} span chunks: cut between organs")
        seen.update(one.organs)
    insufficient = dict.fromkeys(FLAGS, 0)
    agency: list[AgencyFlag] = []
    parts: list[PassOne | PassTwo] = [*first, *second]
    for part in parts:
        for k, v in part.insufficient.items():
            insufficient[k] += v
    for one in first:
        agency.extend(one.agency_flags)
    flags = _concat([p.flags for p in parts])
    order = pc.sort_indices(
        flags, sort_keys=[("contract_id", "ascending"), ("flag", "ascending"), ("db_id", "ascending")]
    )
    agency.sort(key=lambda f: (f.orgao, f.flag))
    return SweepResult(sum(r.rows for r in first), flags.take(order), agency, insufficient)


def _organ_starts(table: pa.Table) -> I64:
    """Row positions where the organ changes (the table sorted by organ)."""
    if table.num_rows < 2:
        return np.zeros(0, np.int64)
    orgao = table["orgao"].combine_chunks()
    change = pc.not_equal(orgao.slice(1), orgao.slice(0, len(orgao) - 1))
    out: I64 = np.flatnonzero(change.to_numpy(zero_copy_only=False)) + 1
    return out


def sort_partitions(table: pa.Table) -> pa.Table:
    """The contracts with each organ's rows contiguous (so every organ × year partition is whole in a chunk).

    A table already grouped by organ, as Postgres and the generator deliver it, is returned as is; otherwise
    a stable sort by organ code, which keeps the input order inside each organ.
    """
    table = table.select(ANALYSIS_SCHEMA.names).cast(ANALYSIS_SCHEMA)
    if table.num_rows < 2:
        return table
    runs = _organ_starts(table).size + 1
    if runs == pc.count_distinct(table["orgao"]).as_py():
        return table
    return table.take(pc.sort_indices(table["orgao"]))


def chunk_table(table: pa.Table, target_rows: int) -> list[pa.Table]:
    """Zero-copy slices of a partition-sorted table, about ``target_rows`` each, cut only between organs."""
    n = table.num_rows
    if n <= target_rows:
        return [table]
    change = _organ_starts(table)
    wanted = np.arange(target_rows, n, target_rows)
    cuts: Any = np.unique(change[np.minimum(np.searchsorted(change, wanted), change.size - 1)]) if change.size else []
    bounds = [0, *[int(c) for c in cuts if 0 < c < n], n]
    return [table.slice(a, b - a) for a, b in itertools.pairwise(bounds) if b > a]


SINGLE_CHUNK_ROWS: Final = 250_000


def sweep_table(
    table: pa.Table, side: SideData, peers: Iterable[PricePartial] = (), chunk_rows: int = SINGLE_CHUNK_ROWS
) -> SweepResult:
    """Every rule over ``table`` in this process (the single-process baseline).

    The same two passes as on Ray, over chunks of whole organs one after another, so working memory is
    bounded by ``chunk_rows`` however large the table; the answer does not depend on the chunking.
    """
    side = side.prepared()
    chunks = chunk_table(sort_partitions(table), chunk_rows)
    first = [pass_one(c, side) for c in chunks]
    thresholds = merge_pass_one(first, peers)
    return finish(first, [pass_two(c, side, thresholds) for c in chunks])
