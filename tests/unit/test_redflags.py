"""Each rule on hand-made contracts: positive, negative, near-miss and insufficient-data cases."""

from __future__ import annotations

import itertools
from datetime import date, timedelta
from typing import Any

import pyarrow as pa
import pytest

from cidadao.redflags import ANALYSIS_SCHEMA, FLAGS, SideData, SweepResult, sweep_table
from cidadao.redflags.base import REGISTRY_SCHEMA, SANCTIONS_SCHEMA
from cidadao.redflags.legal import art75_item, ceilings_for, is_renovation

_ids = itertools.count(1)
TUESDAY = date(2024, 3, 5)
COMPANY = "11222333000181"


def contract(**fields: Any) -> dict[str, Any]:
    row = {
        "id": 0, "contract_id": f"c{next(_ids)}", "orgao": "26000", "ug": "150001",
        "object_class": "material_escritorio", "modalidade": "pregao", "signed_on": TUESDAY,
        "initial_value": 1000.0, "final_value": 1000.0, "supplier": COMPANY,
    }  # fmt: skip
    row.update(fields)
    return row


def sweep(rows: list[dict[str, Any]], side: SideData | None = None) -> SweepResult:
    table = pa.Table.from_pylist(rows, schema=ANALYSIS_SCHEMA)
    return sweep_table(table, side or SideData())


def flagged(result: SweepResult, flag: str) -> dict[str, dict[str, Any]]:
    return {f.contract_id: f.evidence for f in result.flags if f.flag == flag}


def agency(result: SweepResult, flag: str) -> dict[str, dict[str, Any]]:
    return {a.orgao: a.evidence for a in result.agency_flags if a.flag == flag}


def test_flag_names_are_the_public_api() -> None:
    assert FLAGS == (
        "price_outlier", "contract_splitting", "amendment_over_limit", "sanctioned_supplier", "new_supplier",
        "weekend_or_holiday_signature", "supplier_concentration", "benford_nonconformity", "year_end_rush",
    )  # fmt: skip


# --- legal thresholds ------------------------------------------------------------------------------


def test_art75_items_and_renovation_from_object_classes() -> None:
    assert art75_item("obras_reforma_edificacao") == 1
    assert art75_item("manutencao_veiculos") == 1
    assert art75_item("manutencao_predial") == 1
    assert art75_item("material_construcao") == 2  # goods, not a work
    assert art75_item("manutencao_ar_condicionado") == 2
    assert is_renovation("obras_reforma_edificacao") and not is_renovation("obras_construcao_edificacao")


def test_ceilings_are_keyed_by_fiscal_year() -> None:
    import numpy as np

    got = ceilings_for(np.array([2022, 2024, 2025, 2019, 2026]), np.array([1, 2, 2, 2, 1]))
    assert got[:3].tolist() == [108_040.82, 59_906.02, 62_725.59]
    assert np.isnan(got[3])  # Lei 8.666 years: no ceiling here
    assert got[4] == 130_984.20


# --- price_outlier ---------------------------------------------------------------------------------


def _peers(n: int = 20, klass: str = "material_escritorio") -> list[dict[str, Any]]:
    return [contract(object_class=klass, initial_value=800.0 + 20 * i, final_value=800.0 + 20 * i) for i in range(n)]


def test_price_outlier_positive_with_evidence() -> None:
    rows = [*_peers(), contract(contract_id="big", initial_value=100_000.0, final_value=100_000.0)]
    hits = flagged(sweep(rows), "price_outlier")
    assert list(hits) == ["big"]
    ev = hits["big"]
    assert ev["peers"] == 20 and ev["object_class"] == "material_escritorio"
    assert 950 < ev["peer_median"] < 1050 and ev["ratio_to_median"] > 90 and ev["robust_z"] > 3.5


def test_price_outlier_negative_and_near_miss() -> None:
    moderate = contract(contract_id="x2", initial_value=2_500.0, final_value=2_500.0)  # 2.5x the median
    assert flagged(sweep([*_peers(), moderate]), "price_outlier") == {}
    same = [contract(initial_value=1000.0, final_value=1000.0) for _ in range(20)]
    one_percent = contract(contract_id="p1", initial_value=1010.0, final_value=1010.0)  # MAD 0, only 1 % above
    assert flagged(sweep([*same, one_percent]), "price_outlier") == {}


def test_price_outlier_insufficient_peers() -> None:
    rows = [*_peers(5, "livros_periodicos"), contract(object_class="livros_periodicos", initial_value=1e7)]
    result = sweep(rows)
    assert flagged(result, "price_outlier") == {}
    assert result.insufficient["price_outlier"] == 6


# --- contract_splitting ----------------------------------------------------------------------------


def _dispensa(value: float, **fields: Any) -> dict[str, Any]:
    return contract(modalidade="dispensa", initial_value=value, final_value=value, **fields)


def test_splitting_positive_with_evidence() -> None:
    rows = [_dispensa(25_000.0, contract_id=f"s{i}") for i in range(3)]
    hits = flagged(sweep(rows), "contract_splitting")
    assert set(hits) == {"s0", "s1", "s2"}
    ev = hits["s0"]
    assert ev["group_size"] == 3 and ev["group_sum"] == 75_000.0
    assert ev["ceiling"] == 59_906.02 and ev["art75_item"] == "II" and ev["fiscal_year"] == 2024
    assert ev["decree"] == "Decreto 11.871/2023"


def test_splitting_negative_and_near_misses() -> None:
    under = [_dispensa(29_000.0), _dispensa(30_000.0)]  # 59,000 < 59,906.02
    assert flagged(sweep(under), "contract_splitting") == {}
    works = [_dispensa(25_000.0, object_class="obras_reforma_edificacao") for _ in range(3)]  # item I: 119,812.02
    assert flagged(sweep(works), "contract_splitting") == {}
    pregao = [contract(initial_value=25_000.0, final_value=25_000.0) for _ in range(3)]
    assert flagged(sweep(pregao), "contract_splitting") == {}
    other_units = [_dispensa(25_000.0, ug=f"15000{i}") for i in range(3)]
    assert flagged(sweep(other_units), "contract_splitting") == {}
    other_years = [_dispensa(25_000.0, signed_on=date(2022 + i, 3, 8)) for i in range(3)]
    assert flagged(sweep(other_years), "contract_splitting") == {}


def test_splitting_insufficient_data() -> None:
    rows = [_dispensa(25_000.0, signed_on=date(2019, 3, 5)), _dispensa(25_000.0, object_class=None)]
    result = sweep(rows)
    assert flagged(result, "contract_splitting") == {}
    assert result.insufficient["contract_splitting"] == 2


# --- amendment_over_limit --------------------------------------------------------------------------


def test_amendment_positive() -> None:
    rows = [
        contract(contract_id="a30", initial_value=100.0, final_value=130.0),
        contract(contract_id="r60", object_class="obras_reforma_edificacao", initial_value=100.0, final_value=160.0),
    ]
    hits = flagged(sweep(rows), "amendment_over_limit")
    assert hits["a30"] == {"initial_value": 100.0, "final_value": 130.0, "increase": 0.3, "limit": 0.25}
    assert hits["r60"]["limit"] == 0.5


def test_amendment_near_misses_and_negative() -> None:
    rows = [
        contract(initial_value=100.0, final_value=124.0),
        contract(initial_value=100.0, final_value=125.0),  # exactly the limit is allowed
        contract(object_class="obras_reforma_edificacao", initial_value=100.0, final_value=145.0),
        contract(initial_value=100.0, final_value=80.0),  # a reduction
    ]
    assert flagged(sweep(rows), "amendment_over_limit") == {}


def test_amendment_insufficient_data() -> None:
    rows = [contract(initial_value=None, final_value=500.0), contract(initial_value=0.0, final_value=10.0)]
    result = sweep(rows)
    assert flagged(result, "amendment_over_limit") == {}
    assert result.insufficient["amendment_over_limit"] == 2


# --- sanctioned_supplier ---------------------------------------------------------------------------


def _sanctions(*rows: tuple[str, date | None, date | None, bool]) -> SideData:
    data = [
        {"document": d, "starts_on": s, "ends_on": e, "bars_contracting": b, "sanction_type": "Impedimento",
         "registry": "CEIS"} for d, s, e, b in rows
    ]  # fmt: skip
    return SideData(sanctions=pa.Table.from_pylist(data, schema=SANCTIONS_SCHEMA))


def test_sanctioned_supplier_positive() -> None:
    side = _sanctions(
        (COMPANY, date(2024, 1, 1), date(2024, 12, 31), True), ("99888777000166", date(2023, 1, 1), None, True)
    )
    rows = [contract(contract_id="in"), contract(contract_id="open", supplier="99888777000166")]
    hits = flagged(sweep(rows, side), "sanctioned_supplier")
    assert set(hits) == {"in", "open"}
    assert hits["in"]["sanction_start"] == "2024-01-01" and hits["open"]["sanction_end"] is None


def test_sanctioned_supplier_negative_and_near_misses() -> None:
    side = _sanctions(
        (COMPANY, date(2023, 1, 1), TUESDAY - timedelta(days=1), True),  # ended the day before
        (COMPANY, TUESDAY + timedelta(days=1), None, True),  # starts the day after
        (COMPANY, date(2024, 1, 1), None, False),  # a fine: does not bar contracting
    )
    assert flagged(sweep([contract()], side), "sanctioned_supplier") == {}


def test_sanctioned_supplier_unknown_document_is_insufficient() -> None:
    side = _sanctions((COMPANY, date(2024, 1, 1), None, True))
    result = sweep([contract(supplier=None), contract()], side)
    assert len(flagged(result, "sanctioned_supplier")) == 1
    assert result.insufficient["sanctioned_supplier"] == 1


# --- new_supplier ----------------------------------------------------------------------------------


def _registry(*rows: tuple[str, date | None, str | None]) -> SideData:
    data = [{"document": d, "opening_date": o, "registry_status": s} for d, o, s in rows]
    return SideData(registry=pa.Table.from_pylist(data, schema=REGISTRY_SCHEMA))


def test_new_supplier_positive() -> None:
    side = _registry((COMPANY, date(2024, 1, 1), "ATIVA"), ("99888777000166", date(2001, 1, 1), "BAIXADA"))
    rows = [contract(contract_id="young"), contract(contract_id="closed", supplier="99888777000166")]
    hits = flagged(sweep(rows, side), "new_supplier")
    assert hits["young"]["days_before_signing"] == 64 and hits["young"]["opened_on"] == "2024-01-01"
    assert hits["closed"]["registry_status"] == "BAIXADA"


def test_new_supplier_near_miss() -> None:
    side = _registry((COMPANY, TUESDAY - timedelta(days=365), "ATIVA"))
    assert flagged(sweep([contract()], side), "new_supplier") == {}


def test_new_supplier_insufficient_for_people_and_unknown_companies() -> None:
    side = _registry((COMPANY, date(2010, 1, 1), "ATIVA"))
    rows = [contract(supplier="12345678909"), contract(supplier="99888777000166"), contract(supplier=None), contract()]
    result = sweep(rows, side)
    assert flagged(result, "new_supplier") == {}
    assert result.insufficient["new_supplier"] == 3


# --- weekend_or_holiday_signature ------------------------------------------------------------------


def test_weekend_and_holiday_signatures() -> None:
    rows = [
        contract(contract_id="sat", signed_on=date(2024, 3, 2)),
        contract(contract_id="sun", signed_on=date(2024, 3, 3)),
        contract(contract_id="may1", signed_on=date(2024, 5, 1)),  # a Wednesday
        contract(contract_id="fri", signed_on=date(2024, 3, 1)),
        contract(contract_id="may2", signed_on=date(2024, 5, 2)),  # the day after a holiday
    ]
    hits = flagged(sweep(rows), "weekend_or_holiday_signature")
    assert set(hits) == {"sat", "sun", "may1"}
    assert hits["sat"]["weekday"] == "sábado" and hits["sat"]["holiday"] is None
    assert hits["may1"]["holiday"] == "Dia do Trabalhador"


# --- agency rules ----------------------------------------------------------------------------------


def test_supplier_concentration() -> None:
    big = [contract(supplier=COMPANY, initial_value=1000.0, final_value=1000.0) for _ in range(8)]
    small = [contract(supplier=f"9988877700{i:04d}", initial_value=100.0, final_value=100.0) for i in range(2)]
    hits = agency(sweep(big + small), "supplier_concentration")
    assert hits["26000"]["top_supplier"] == COMPANY and hits["26000"]["top_share"] == pytest.approx(8000 / 8200, 1e-4)
    assert hits["26000"]["contracts"] == 10


def test_supplier_concentration_near_miss_and_insufficient() -> None:
    spread = [contract(supplier=COMPANY, initial_value=690.0, final_value=690.0)] + [
        contract(supplier=f"9988877700{i:04d}", initial_value=310.0 / 9, final_value=310.0 / 9) for i in range(9)
    ]  # top share 0.69
    assert agency(sweep(spread), "supplier_concentration") == {}
    few = [contract(orgao="30000") for _ in range(9)]
    result = sweep(few)
    assert agency(result, "supplier_concentration") == {}
    assert result.insufficient["supplier_concentration"] == 1


def _values(counts: dict[int, int]) -> list[dict[str, Any]]:
    return [
        contract(initial_value=float(d * 1000 + i % 900), final_value=float(d * 1000 + i % 900))
        for d, n in counts.items() for i in range(n)
    ]  # fmt: skip


def test_benford() -> None:
    import math

    conforming = {d: round(1000 * math.log10(1 + 1 / d)) for d in range(1, 10)}
    assert agency(sweep(_values(conforming)), "benford_nonconformity") == {}
    hits = agency(sweep(_values({5: 300})), "benford_nonconformity")
    assert hits["26000"]["values"] == 300 and hits["26000"]["mad"] > 0.015
    result = sweep(_values({5: 299}))
    assert agency(result, "benford_nonconformity") == {}
    assert result.insufficient["benford_nonconformity"] == 1


def test_year_end_rush() -> None:
    months = [contract(signed_on=date(2024, m, 5)) for m in range(1, 12)]  # 1,000 each
    december = contract(signed_on=date(2024, 12, 5), initial_value=1000.0, final_value=1000.0)
    assert agency(sweep([*months, december]), "year_end_rush") == {}
    rush = contract(signed_on=date(2024, 12, 5), initial_value=10_000.0, final_value=10_000.0)
    hits = agency(sweep([*months, rush]), "year_end_rush")
    assert hits["26000"]["ratio"] == pytest.approx(10_000 / (21_000 / 12), 1e-4)
    near = contract(signed_on=date(2024, 12, 5), initial_value=3_600.0, final_value=3_600.0)  # ratio 2.96
    assert agency(sweep([*months, near]), "year_end_rush") == {}
    result = sweep(months[:9])
    assert result.insufficient["year_end_rush"] == 1 and agency(result, "year_end_rush") == {}


def test_every_flag_has_evidence_basis_severity_and_score() -> None:
    side = _sanctions((COMPANY, date(2024, 1, 1), None, True))
    rows = [*_peers(), contract(initial_value=100_000.0, final_value=130_000.0, signed_on=date(2024, 3, 2))]
    result = sweep(rows, side)
    assert {f.flag for f in result.flags} >= {"price_outlier", "amendment_over_limit", "sanctioned_supplier"}
    for f in result.flags:
        assert f.severity in ("low", "medium", "high") and f.score > 0 and f.evidence and f.basis
