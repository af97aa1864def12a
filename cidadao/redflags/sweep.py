"""One sweep of every rule over a table of contracts, in two passes over chunks of whole partitions.

Pass 1 (per chunk): the rules that need only their own partition (splitting, amendments, sanctions, new
suppliers, signature days) and the chunk's sufficient statistics. The driver merges the statistics: price
thresholds per object class, totals per agency, and runs the agency rules. Pass 2 (per chunk): the rules that
need the merged statistics (price outliers). The functions here are pure and Ray-free; ``pipelines`` runs
them on Ray, :func:`sweep_table` runs them in this process. Both give the same answer, to the bit: a chunk
holds whole partitions, and statistics merge in a fixed order.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cidadao.redflags.base import SEVERITIES, Hits, SideData
from cidadao.redflags.frame import ANALYSIS_SCHEMA, Frame
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


@dataclass(frozen=True, eq=False)
class PassOne:
    rows: int
    flags: list[ContractFlag]
    insufficient: dict[str, int]
    prices: PricePartial
    agencies: AgencyPartial


@dataclass(frozen=True, eq=False)
class PassTwo:
    flags: list[ContractFlag]
    insufficient: dict[str, int]


@dataclass(eq=False)
class SweepResult:
    contracts_analyzed: int
    flags: list[ContractFlag]
    agency_flags: list[AgencyFlag]
    insufficient: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "contracts_analyzed": self.contracts_analyzed,
            "flags": [f.as_dict() for f in self.flags],
            "agency_flags": [f.as_dict() for f in self.agency_flags],
            "insufficient": dict(self.insufficient),
        }

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(FLAGS, 0)
        for f in self.flags:
            out[f.flag] += 1
        for a in self.agency_flags:
            out[a.flag] += 1
        return out


def _evidence_rows(hits: Hits) -> list[dict[str, Any]]:
    columns = {k: (v.tolist() if isinstance(v, np.ndarray) else list(v)) for k, v in hits.evidence.items()}
    names = list(columns)
    return [dict(zip(names, values, strict=True)) for values in zip(*columns.values(), strict=True)] if names else [
        {} for _ in range(len(hits))]  # fmt: skip


def _contract_flags(frame: Frame, hits: Hits) -> list[ContractFlag]:
    if not len(hits):
        return []
    take = pa.array(hits.rows)
    ids = frame.table["contract_id"].take(take).to_pylist()
    db_ids = pc.fill_null(frame.table["id"].take(take), 0).to_pylist()
    severity = [SEVERITIES[s] for s in hits.severity.tolist()]
    return [
        ContractFlag(cid, hits.flag, sev, score, ev, hits.basis, dbid)
        for cid, sev, score, ev, dbid in zip(
            ids, severity, hits.score.tolist(), _evidence_rows(hits), db_ids, strict=True)
    ]  # fmt: skip


def pass_one(table: pa.Table, side: SideData) -> PassOne:
    """The partition-local rules and the chunk's sufficient statistics."""
    frame = Frame.from_table(table)
    flags: list[ContractFlag] = []
    insufficient: dict[str, int] = {}
    for rule in CONTRACT_RULES:
        if rule.phase == 1:
            hits = rule.evaluate(frame, side, None)
            flags.extend(_contract_flags(frame, hits))
            insufficient[rule.flag] = hits.insufficient
    return PassOne(frame.n, flags, insufficient, price_partial(frame), agency_partial(frame))


def pass_two(table: pa.Table, side: SideData, thresholds: PriceThresholds) -> PassTwo:
    """The rules that need statistics merged across partitions."""
    frame = Frame.from_table(table)
    flags: list[ContractFlag] = []
    insufficient: dict[str, int] = {}
    for rule in CONTRACT_RULES:
        if rule.phase == 2:
            hits = rule.evaluate(frame, side, thresholds)
            flags.extend(_contract_flags(frame, hits))
            insufficient[rule.flag] = hits.insufficient
    return PassTwo(flags, insufficient)


def merge_pass_one(results: Sequence[PassOne], peers: Iterable[PricePartial] = ()) -> PriceThresholds:
    return merge_prices([r.prices for r in results] + list(peers))


def finish(first: Sequence[PassOne], second: Sequence[PassTwo]) -> SweepResult:
    """Agency rules over merged totals, and every flag in a stable order."""
    totals = merge_agencies([r.agencies for r in first])
    agency: list[AgencyFlag] = []
    insufficient = dict.fromkeys(FLAGS, 0)
    for rule in AGENCY_RULES:
        hits = rule.evaluate(totals)
        insufficient[rule.flag] += hits.insufficient
        organs = [totals.orgao[i] for i in hits.rows.tolist()]
        severity = [SEVERITIES[s] for s in hits.severity.tolist()]
        agency.extend(
            AgencyFlag(o, hits.flag, sev, score, ev, hits.basis)
            for o, sev, score, ev in zip(organs, severity, hits.score.tolist(), _evidence_rows(hits), strict=True)
        )
    flags: list[ContractFlag] = []
    parts: list[PassOne | PassTwo] = [*first, *second]
    for part in parts:
        flags.extend(part.flags)
        for k, v in part.insufficient.items():
            insufficient[k] += v
    flags.sort(key=lambda f: (f.contract_id, f.flag, f.db_id))
    agency.sort(key=lambda f: (f.orgao, f.flag))
    return SweepResult(sum(r.rows for r in first), flags, agency, insufficient)


def sort_partitions(table: pa.Table) -> pa.Table:
    """Contracts in (organ, fiscal year) order, stable: every partition contiguous."""
    table = table.select(ANALYSIS_SCHEMA.names).cast(ANALYSIS_SCHEMA)
    if table.num_rows < 2:
        return table
    orgao = table["orgao"].combine_chunks()
    year = pc.year(table["signed_on"]).to_numpy(zero_copy_only=False).astype(np.int64)
    rank = pc.rank(orgao, sort_keys="ascending", tiebreaker="dense").to_numpy().astype(np.int64)
    key = rank * 10_000 + year
    if bool(np.all(key[1:] >= key[:-1])):
        return table  # already in partition order (Postgres and the generator deliver it so)
    return table.take(pa.array(np.argsort(key, kind="stable")))


def chunk_table(table: pa.Table, target_rows: int) -> list[pa.Table]:
    """Zero-copy slices of a partition-sorted table, about ``target_rows`` each, cut only between partitions."""
    n = table.num_rows
    if n <= target_rows:
        return [table]
    orgao = pc.dictionary_encode(table["orgao"].combine_chunks()).indices.to_numpy().astype(np.int64)
    year = pc.year(table["signed_on"]).to_numpy(zero_copy_only=False).astype(np.int64)
    change = np.flatnonzero((orgao[1:] != orgao[:-1]) | (year[1:] != year[:-1])) + 1  # partition starts
    wanted = np.arange(target_rows, n, target_rows)
    cuts: Any = np.unique(change[np.minimum(np.searchsorted(change, wanted), change.size - 1)]) if change.size else []
    bounds = [0, *[int(c) for c in cuts if 0 < c < n], n]
    return [table.slice(a, b - a) for a, b in itertools.pairwise(bounds) if b > a]


def sweep_table(table: pa.Table, side: SideData, peers: Iterable[PricePartial] = ()) -> SweepResult:
    """Every rule over ``table`` in this process (the single-process baseline)."""
    ordered = sort_partitions(table)
    first = pass_one(ordered, side)
    thresholds = merge_pass_one([first], peers)
    return finish([first], [pass_two(ordered, side, thresholds)])
