"""Sufficient statistics: what each partition contributes to the rules that span partitions.

Price peers span organs, and agency rules span an organ's years, so no task sees every row they need.
Each task returns small partial statistics instead of rows; the driver merges them:

- :class:`PricePartial`: a sparse histogram of log-values per object class (bins of 0.5 % in value), from
  which the merge reads each class's median, MAD and quartiles. Counts are integers, so the merge is exact
  and independent of how the contracts were split into tasks.
- :class:`AgencyPartial`: per (organ, fiscal year) the contracts with spend, the spend, December's spend,
  first-digit counts of the values, and the spend per supplier. Merged per organ in (organ, year) order, so
  floating-point sums come out the same whatever the split.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cidadao.redflags.frame import F64, I64, Frame, encode

__all__ = [
    "LOG_BIN",
    "AgencyPartial",
    "AgencyTotals",
    "PricePartial",
    "PriceThresholds",
    "agency_partial",
    "merge_agencies",
    "merge_prices",
    "price_partial",
]

LOG_BIN: Final = 0.005  # width of a histogram bin in ln(value): values within 0.5 % share a bin


@dataclass(frozen=True, eq=False)
class PricePartial:
    classes: list[str]
    cls: I64  # index into classes
    bins: I64
    counts: I64


@dataclass(frozen=True, eq=False)
class PriceThresholds:
    """Per object class, in ln(value): peers, median, MAD, first and third quartiles."""

    index: dict[str, int]
    n: I64
    median: F64
    mad: F64
    q1: F64
    q3: F64


def price_partial(frame: Frame) -> PricePartial:
    value = frame.value()
    ok = (frame.cls >= 0) & (value > 0)
    bins = np.floor(np.log(value[ok]) / LOG_BIN).astype(np.int64)
    key = frame.cls[ok] * (1 << 32) + (bins + (1 << 31))
    uniq, counts = np.unique(key, return_counts=True)
    return PricePartial(frame.cls_names, uniq >> 32, (uniq & 0xFFFFFFFF) - (1 << 31), counts.astype(np.int64))


def _weighted_quantile(centers: F64, counts: I64, q: float) -> float:
    cum = np.cumsum(counts)
    return float(centers[int(np.searchsorted(cum, q * cum[-1], side="left"))])


def merge_prices(partials: list[PricePartial]) -> PriceThresholds:
    """Merge histograms and read each class's robust statistics off them (bin centres)."""
    names = sorted({c for p in partials for c in p.classes})
    index = {c: i for i, c in enumerate(names)}
    if not partials or not names:
        e = np.zeros(0)
        return PriceThresholds(index, np.zeros(0, np.int64), e, e, e, e)
    cls = np.concatenate([np.array([index[c] for c in p.classes], np.int64)[p.cls] for p in partials])
    key = cls * (1 << 32) + (np.concatenate([p.bins for p in partials]) + (1 << 31))
    uniq, inverse = np.unique(key, return_inverse=True)
    counts = np.bincount(inverse, weights=np.concatenate([p.counts for p in partials])).astype(np.int64)
    k, centers = uniq >> 32, ((uniq & 0xFFFFFFFF) - (1 << 31) + 0.5) * LOG_BIN
    starts = np.searchsorted(k, np.arange(len(names)))
    ends = np.searchsorted(k, np.arange(len(names)), side="right")
    n, med, mad, q1, q3 = (np.zeros(len(names)) for _ in range(5))
    for i, (s, e) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
        if s == e:
            continue
        c, w = centers[s:e], counts[s:e]
        n[i], med[i] = w.sum(), _weighted_quantile(c, w, 0.5)
        q1[i], q3[i] = _weighted_quantile(c, w, 0.25), _weighted_quantile(c, w, 0.75)
        dev = np.abs(c - med[i])
        order = np.argsort(dev, kind="stable")
        mad[i] = _weighted_quantile(dev[order], w[order], 0.5)
    return PriceThresholds(index, n.astype(np.int64), med, mad, q1, q3)


@dataclass(frozen=True, eq=False)
class AgencyPartial:
    """Rows are (organ, year) partitions; ``sup_*`` rows are (partition, supplier) spend."""

    orgao: list[str]
    year: I64
    contracts: I64  # contracts with a positive spend
    spend: F64
    december: F64
    digits: I64  # (partitions, 9): first digits 1..9 of initial values >= 1
    sup_partition: I64
    sup_key: pa.Array  # string
    sup_spend: F64


def _spend(frame: Frame) -> F64:
    out: F64 = np.where(np.isnan(frame.final), frame.initial, frame.final)
    return np.where(out > 0, out, 0.0)


def agency_partial(frame: Frame) -> AgencyPartial:
    year0 = int(frame.year.min()) if frame.n else 0
    span = int(frame.year.max()) - year0 + 1 if frame.n else 1
    group = frame.orgao * span + (frame.year - year0)
    parts, part = np.unique(group, return_inverse=True)
    p = parts.size
    spend = _spend(frame)
    has = spend > 0
    ini = frame.initial
    ok = ini >= 1
    first = (ini[ok] / 10.0 ** np.floor(np.log10(ini[ok]))).astype(np.int64)
    digits = np.zeros((p, 9), np.int64)
    np.add.at(digits, (part[ok], np.clip(first, 1, 9) - 1), 1)
    # suppliers by code; a contract without a supplier document is a supplier of its own ("~contract id")
    sup, names = encode(frame.column("supplier"))
    missing = np.flatnonzero(sup < 0)
    if missing.size:
        sup[missing] = len(names) + np.arange(missing.size)
        ids = frame.column("contract_id").take(pa.array(missing))
        names = pa.concat_arrays([names, pc.binary_join_element_wise("~", ids, "")])
    width = len(names) + 1
    pair = part[has].astype(np.int64) * width + sup[has]
    pairs, inv = np.unique(pair, return_inverse=True)
    sup_spend = np.bincount(inv, weights=spend[has], minlength=pairs.size)
    return AgencyPartial(
        orgao=[frame.orgao_names[int(g) // span] for g in parts.tolist()],
        year=parts % span + year0,
        contracts=np.bincount(part, weights=has, minlength=p).astype(np.int64),
        spend=np.bincount(part, weights=spend, minlength=p),
        december=np.bincount(part, weights=spend * (frame.month == 11), minlength=p),
        digits=digits,
        sup_partition=pairs // width,
        sup_key=names.take(pa.array(pairs % width)),
        sup_spend=sup_spend,
    )


@dataclass(frozen=True, eq=False)
class AgencyTotals:
    """Per organ, every partition merged."""

    orgao: list[str]
    contracts: I64
    spend: F64
    december: F64
    digits: I64
    top_supplier: list[str]
    top_spend: F64
    hhi: F64  # Herfindahl-Hirschman index of suppliers' shares of spend, 0..10,000
    suppliers: I64


def merge_agencies(partials: list[AgencyPartial]) -> AgencyTotals:
    """Merge (organ, year) partials into per-organ totals, summing in (organ, year) order."""
    organs = sorted({o for p in partials for o in p.orgao})
    m = len(organs)
    if not m:
        z, e = np.zeros(0, np.int64), np.zeros(0)
        return AgencyTotals([], z, e, e, np.zeros((0, 9), np.int64), [], e, e, z)
    o_index = {o: i for i, o in enumerate(organs)}
    org = np.concatenate([np.array([o_index[o] for o in p.orgao], np.int64) for p in partials])
    year = np.concatenate([p.year for p in partials])
    rank = np.empty(org.size, np.int64)
    order = np.lexsort((year, org))
    rank[order] = np.arange(org.size)  # a partition's place in (organ, year) order
    org_o = org[order]
    contracts = np.bincount(org_o, weights=np.concatenate([p.contracts for p in partials])[order], minlength=m)
    spend = np.bincount(org_o, weights=np.concatenate([p.spend for p in partials])[order], minlength=m)
    december = np.bincount(org_o, weights=np.concatenate([p.december for p in partials])[order], minlength=m)
    digits = np.zeros((m, 9), np.int64)
    np.add.at(digits, org_o, np.concatenate([p.digits for p in partials])[order])
    offsets = np.cumsum([0] + [len(p.orgao) for p in partials])[:-1]
    sup_part = rank[np.concatenate([p.sup_partition + off for p, off in zip(partials, offsets, strict=True)])]
    sup_order = np.argsort(sup_part, kind="stable")
    keys = pa.concat_arrays([p.sup_key for p in partials]).take(pa.array(sup_order))
    sup_val = np.concatenate([p.sup_spend for p in partials])[sup_order]
    sup_org = org_o[sup_part[sup_order]]
    top_supplier, top_spend, n_sup = [""] * m, np.zeros(m), np.zeros(m, np.int64)
    hhi: F64 = np.zeros(m)
    if len(keys):
        codes, first_seen = encode(keys)
        by_name = pc.sort_indices(first_seen).to_numpy()  # codes in key order: ties break the same way
        names = first_seen.take(pa.array(by_name))
        recode = np.empty(by_name.size, np.int64)
        recode[by_name] = np.arange(by_name.size)
        codes = recode[codes]
        pairs, inv = np.unique(sup_org * len(names) + codes, return_inverse=True)
        total = np.bincount(inv, weights=sup_val, minlength=pairs.size)
        p_org = pairs // len(names)
        share = total / np.where(spend[p_org] > 0, spend[p_org], 1.0)
        hhi = np.bincount(p_org, weights=(100 * share) ** 2, minlength=m)
        n_sup = np.bincount(p_org, minlength=m).astype(np.int64)
        best = np.lexsort((pairs, -total, p_org))  # per organ: biggest spend first, ties by supplier
        firsts = best[np.r_[True, p_org[best][1:] != p_org[best][:-1]]]
        for j in firsts.tolist():
            top_supplier[int(p_org[j])] = str(names[int(pairs[j] % len(names))].as_py())
            top_spend[int(p_org[j])] = total[j]
    return AgencyTotals(
        organs, contracts.astype(np.int64), spend, december, digits, top_supplier, top_spend, hhi, n_sup
    )
