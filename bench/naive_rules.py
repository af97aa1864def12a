"""The naive baseline: every rule as plain per-row Python over dicts (what the vectorised rules replace).

Same thresholds as ``cidadao.redflags``; price quantiles are exact here (the vectorised rule reads them off
0.5 % histogram bins), so counts may differ by a contract at a boundary. Used by ``cidadao bench pipeline``
at 10,000 contracts only.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from datetime import date
from typing import Any

import holidays

from cidadao.redflags.legal import (
    AMENDMENT_LIMIT,
    AMENDMENT_LIMIT_RENOVATION,
    ART75_CEILINGS,
    art75_item,
    is_renovation,
)

__all__ = ["naive_sweep"]

BENFORD = [math.log10(1 + 1 / d) for d in range(1, 10)]


def _value(r: dict[str, Any]) -> float | None:
    v = r["initial_value"] if r["initial_value"] is not None else r["final_value"]
    return float(v) if v is not None else None


def naive_sweep(rows: list[dict[str, Any]], sanctions: list[dict[str, Any]], registry: list[dict[str, Any]]) -> dict[
        str, int]:  # fmt: skip
    """Flag counts per rule, computed row by row."""
    counts: dict[str, int] = defaultdict(int)
    by_class: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        v = _value(r)
        if r["object_class"] and v and v > 0:
            by_class[r["object_class"]].append(math.log(v))
    stats = {}
    for c, xs in by_class.items():
        med = statistics.median(xs)
        q = statistics.quantiles(xs, n=4) if len(xs) > 1 else [xs[0]] * 3
        stats[c] = (len(xs), med, statistics.median([abs(x - med) for x in xs]), q[0], q[2])
    barring: dict[str, list[tuple[date, date | None]]] = defaultdict(list)
    for s in sanctions:
        if s["bars_contracting"] is not False and s["document"]:
            barring[s["document"]].append((s["starts_on"] or date.min, s["ends_on"]))
    reg: dict[str, dict[str, Any]] = {}
    for s in registry:
        reg.setdefault(s["document"], s)
    br = holidays.country_holidays("BR", years=range(2015, 2031))
    groups: dict[tuple[Any, ...], list[float]] = defaultdict(list)
    agencies: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"n": 0, "spend": 0.0, "dec": 0.0, "sup": defaultdict(float), "digits": [0] * 9}
    )
    for i, r in enumerate(rows):
        v, day, klass = _value(r), r["signed_on"], r["object_class"]
        if klass and v and v > 0 and klass in stats:
            n, med, mad, q1, q3 = stats[klass]
            x = math.log(v)
            z = (x - med) / (1.4826 * mad) if mad > 0 else float("nan")
            if n - 1 >= 8 and (z > 3.5 or x > q3 + 3 * (q3 - q1)) and math.exp(x - med) >= 3:
                counts["price_outlier"] += 1
        ini, fin = r["initial_value"], r["final_value"]
        if ini and ini > 0 and fin is not None:
            limit = AMENDMENT_LIMIT_RENOVATION if klass and is_renovation(klass) else AMENDMENT_LIMIT
            if fin / ini - 1 > limit + 1e-9:
                counts["amendment_over_limit"] += 1
        doc = r["supplier"]
        if doc and any(s <= day and (e is None or day <= e) for s, e in barring.get(doc, ())):
            counts["sanctioned_supplier"] += 1
        if doc and len(doc) == 14 and doc in reg:
            entry = reg[doc]
            opened, status = entry["opening_date"], entry["registry_status"]
            if (opened and (day - opened).days < 365) or (status and status != "ATIVA"):
                counts["new_supplier"] += 1
        if day.weekday() >= 5 or day in br:
            counts["weekend_or_holiday_signature"] += 1
        if r["modalidade"] == "dispensa" and klass and r["ug"] and v is not None and day.year in ART75_CEILINGS:
            ceiling = float(ART75_CEILINGS[day.year][art75_item(klass) - 1])
            top = max(x for x in (ini, fin) if x is not None)
            if 0 < top < ceiling:
                groups[(r["orgao"], r["ug"], klass, day.year)].append(top)
                groups[(r["orgao"], r["ug"], klass, day.year, "rows")].append(i)
        a = agencies[r["orgao"]]
        spend = fin if fin is not None else ini
        if spend and spend > 0:
            a["n"] += 1
            a["spend"] += spend
            a["dec"] += spend if day.month == 12 else 0.0
            a["sup"][doc or f"~{r['contract_id']}"] += spend
        if ini and ini >= 1:
            a["digits"][int(str(int(ini))[0]) - 1] += 1
    for key, values in groups.items():
        if len(key) == 4 and len(values) >= 2:
            limit = float(ART75_CEILINGS[key[3]][art75_item(key[2]) - 1])
            if sum(values) > limit:
                counts["contract_splitting"] += len(values)
    for a in agencies.values():
        if a["n"] >= 10 and a["spend"] > 0:
            counts["supplier_concentration"] += max(a["sup"].values()) / a["spend"] >= 0.70
            counts["year_end_rush"] += a["dec"] / (a["spend"] / 12) > 3
        total = sum(a["digits"])
        if total >= 300:
            mad = sum(abs(d / total - p) for d, p in zip(a["digits"], BENFORD, strict=True)) / 9
            counts["benford_nonconformity"] += mad > 0.015
    return dict(counts)
