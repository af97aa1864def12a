"""The Analyst agent's views, checked against the same numbers computed in Python from the stored rows."""

from __future__ import annotations

import statistics
from collections import defaultdict

import asyncpg
import pytest

from actors.analyst import Analyst
from cidadao.settings import Settings
from tests.integration.test_investigation_sweep import _store

pytestmark = pytest.mark.integration


async def test_the_views_match_the_rows(db: asyncpg.Connection, store_settings: Settings) -> None:
    await _store(db, 31, 3000)
    rows = await db.fetch(
        "SELECT supplier_document AS doc, orgao_codigo AS organ, object_class AS cls, signed_on, "
        "COALESCE(final_value, initial_value)::float8 AS spend FROM contracts"
    )
    analyst = Analyst(store_settings, "analyst-test")
    try:
        out = await analyst.analyze({"all": True, "year": None}, top=5, min_organs=3, min_contracts=5)
        one = await analyst.analyze({"orgao": "36000", "year": 2023})
    finally:
        await analyst.close()

    by_supplier: dict[str, float] = defaultdict(float)
    for r in rows:
        if r["doc"] and r["spend"] > 0:
            by_supplier[r["doc"]] += r["spend"]
    best = sorted(by_supplier.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
    assert [s["supplier"] for s in out["top_suppliers"]] == [d for d, _ in best]
    assert out["top_suppliers"][0]["spend"] == pytest.approx(best[0][1], abs=0.01)
    first = out["top_suppliers"][0]["by_year"]
    assert sum(y["spend"] for y in first) == pytest.approx(best[0][1], abs=0.05)
    assert all(0 < y["share"] <= 1 for y in first)

    months: dict[str, int] = defaultdict(int)
    for r in rows:
        months[r["signed_on"].strftime("%Y-%m")] += 1
    assert {m["month"]: m["contracts"] for m in out["spend_by_month"]} == months

    organs: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        if r["doc"]:
            organs[r["doc"]].add(r["organ"])
    wide = {d for d, o in organs.items() if len(o) >= 3}
    assert {s["supplier"] for s in out["suppliers_across_organs"]} <= wide
    assert all(s["organs"] >= 3 for s in out["suppliers_across_organs"])

    medians: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        if r["cls"] and r["spend"] > 0:
            medians[r["cls"]][r["organ"]].append(r["spend"])
    ratios = {}
    for cls, per_organ in medians.items():
        kept = [statistics.median(v) for v in per_organ.values() if len(v) >= 5]
        if len(kept) >= 2:
            ratios[cls] = max(kept) / min(kept)
    top_cls = max(ratios, key=lambda c: ratios[c])
    assert out["price_dispersion"][0]["object_class"] == top_cls
    assert out["price_dispersion"][0]["ratio"] == pytest.approx(ratios[top_cls], rel=1e-3)

    assert one["scope"] == {"orgao": "36000", "year": 2023}
    assert sum(m["contracts"] for m in one["spend_by_month"]) == sum(
        1 for r in rows if r["organ"] == "36000" and r["signed_on"].year == 2023
    )
    assert one["suppliers_across_organs"] == []  # one organ: no supplier spans three
