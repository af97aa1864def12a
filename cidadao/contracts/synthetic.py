"""Seeded, streaming generator of realistic synthetic contracts with planted red flags.

``generate`` writes the contracts (Portal, PNCP or CSV shape), a CEIS file, a supplier registry, a
ground-truth ``labels.csv`` and a ``manifest.json``. The numbers it aims at are in the team's DOMAIN notes
("Realistic synthetic data"). Contracts are drawn organ by organ in chunks of whole organs, so agency-level
anomalies are planted and checked inside one chunk and memory stays flat whatever ``contracts`` is.

Labels follow one policy: a deterministic contract rule (weekend or holiday, amendment over 25 %, sanction
in force, new or inactive supplier) labels every clean contract that meets it, planted or not; the
statistical flags (price outlier, splitting, agency flags) label what was planted, and the background is
built so it does not meet their rules (values clipped around their class, natural dispensa groups kept
under the ceiling); supplier concentration (≥ 10 contracts, one supplier ≥ 70 % of spend) is also labelled
wherever it occurs, since it is a plain threshold. Dirty rows carry only their ``dirty:<reason>`` label.
"""

from __future__ import annotations

import csv
import io
import json
from contextlib import ExitStack
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

import numpy as np
import numpy.typing as npt
import orjson

from cidadao.contracts import _synthetic_catalogue as cat
from cidadao.contracts.identifiers import cnpj_check_digits, cpf_check_digits, format_cnpj

__all__ = ["GenerationSummary", "generate"]

Arr = npt.NDArray[Any]
Format = Literal["portal", "pncp", "csv"]

CHUNK = 50_000
CSV_COLUMNS = (
    "id,numero,objeto,numero_processo,fundamento_legal,situacao,modalidade,data_assinatura,"
    "data_inicio_vigencia,data_fim_vigencia,data_publicacao,valor_inicial,valor_final,"
    "fornecedor_documento,fornecedor_nome,ug_codigo,ug_nome,orgao_codigo,orgao_sigla,orgao_nome"
).split(",")
CONTRACT_FILES = {"portal": "contracts.jsonl", "pncp": "contracts.pncp.jsonl", "csv": "contracts.csv"}
DIRTY = ("", "bad_cnpj", "missing_date", "negative_value", "absurd_value", "bad_date")
STATUSES = ("ATIVA", "BAIXADA", "SUSPENSA", "INAPTA", "NULA")
PREGAO, DISPENSA = 0, 1
CONC, BENFORD, YEAR_END = 1, 2, 3  # agency plans
NC = len(cat.CLASSES)
TYPICAL = np.array([c.typical for c in cat.CLASSES])
SPLIT_CLASSES = np.array([i for i, c in enumerate(cat.CLASSES) if c.item == "II" and 15e3 <= c.typical <= 15e4])
RENOVATION = cat.CLASSES.index(next(c for c in cat.CLASSES if c.key == "obras_reforma"))
CEIL_I = np.array([cat.CEILING_I[y] for y in range(2022, 2026)])
CEIL_II = np.array([cat.CEILING_II[y] for y in range(2022, 2026)])
# Contract-level planting rates (per contract) and background mix.
RATES = {"outlier": 0.001, "amend": 0.003, "split": 0.0006, "split_near": 0.0006, "holiday": 0.002,
         "new": 0.002, "inactive": 0.0008, "new_near": 0.002, "sanction": 0.0015, "expired": 0.001,
         "fine": 0.001, "dirty": 0.005}
P_NATIONAL, P_REGULAR = 0.07, 0.50  # the rest go to fresh one-off suppliers


@dataclass(frozen=True)
class GenerationSummary:
    """What ``generate`` wrote: file paths by name and the counts also found in ``manifest.json``."""

    files: dict[str, Path]
    contracts: int
    sanctions: int
    suppliers: int
    labels: int
    dirty_rows: int
    label_counts: dict[str, int] = field(default_factory=dict)


class _World:
    """Organs, their unidades gestoras and plans, the national supplier pool: everything drawn up front."""

    def __init__(self, rng: np.random.Generator, n: int) -> None:
        n_org = max(3, min(n // 150, 16_000))
        self.size = rng.multinomial(n, (w := rng.lognormal(0.0, 1.58, n_org)) / w.sum())
        mins = rng.permutation(np.arange(n_org) % len(cat.MINISTRIES))
        suffix = np.zeros(n_org, np.int64)
        for m in range(len(cat.MINISTRIES)):
            idx = np.flatnonzero(mins == m)
            suffix[idx] = rng.choice(899, idx.size, replace=False) + 101
        kind, place = rng.integers(len(cat.ORGAN_KINDS), size=n_org), rng.integers(len(cat.PLACES), size=n_org)
        self.place = place
        self.code = [cat.MINISTRIES[m][0][:2] + f"{s:03d}" for m, s in zip(mins.tolist(), suffix.tolist())]
        self.cnpj = [_cnpj(f"{394_000 + 37 * i:08d}0001") for i in range(n_org)]
        self.sigla = [cat.ORGAN_KINDS[k][1] + cat.PLACES[p][1] for k, p in zip(kind.tolist(), place.tolist())]
        self.name = [f"{cat.ORGAN_KINDS[k][0]} {cat.PLACES[p][0]}" for k, p in zip(kind.tolist(), place.tolist())]
        self.ministry = mins
        self.ug_count = 1 + np.minimum(4, rng.poisson(0.3 + self.size / 250))
        self.ug_start = np.concatenate([[0], np.cumsum(self.ug_count)[:-1]])
        n_ug = int(self.ug_count.sum())
        self.ug_code = (rng.choice(900_000, n_ug, replace=False) + 100_000).astype(str).tolist()
        self.ug_kind = rng.integers(len(cat.UG_KINDS), size=n_ug)
        self.ug_org = np.repeat(np.arange(n_org), self.ug_count)
        self.center = np.clip(rng.normal(19.0, 7.0, n_org), 0, NC - 1)
        self.offset = rng.normal(0.0, 0.45, n_org)
        self.k_reg = np.maximum(1, np.ceil(self.size * 0.14)).astype(np.int64)
        self.plan = np.zeros(n_org, np.int64)
        for plan, min_size, rate in ((BENFORD, 400, 0.12), (CONC, 10, 0.02), (YEAR_END, 60, 0.02)):
            eligible = np.flatnonzero((self.size >= min_size) & (self.plan == 0))
            if eligible.size:
                k = max(1, round(rate * eligible.size))
                self.plan[rng.choice(eligible, k, replace=False)] = plan
        self.n_nat = max(30, n // 1000)
        self.nat_p = (p := np.arange(1, self.n_nat + 1) ** -0.8) / p.sum()
        self.nat_open = _old_openings(rng, self.n_nat)
        self.salt = int(rng.integers(90_000_000))
        self.nat_used = np.zeros(self.n_nat, bool)
        self._ug_dicts: dict[int, dict[str, Any]] = {}
        self.nat_cache: dict[int, tuple[str, str, str]] = {}

    def chunks(self) -> Iterator[tuple[int, int]]:
        start, acc = 0, 0
        for i, s in enumerate(self.size.tolist()):
            acc += s
            if acc >= CHUNK:
                yield start, i + 1
                start, acc = i + 1, 0
        if start < self.size.size:
            yield start, self.size.size

    def ug_dict(self, u: int) -> dict[str, Any]:
        """The Portal ``unidadeGestora`` object of UG ``u`` (shared between records)."""
        d = self._ug_dicts.get(u)
        if d is None:
            o, m = int(self.ug_org[u]), cat.MINISTRIES[int(self.ministry[self.ug_org[u]])]
            d = {"codigo": self.ug_code[u], "nome": self.ug_name(u),
                 "orgaoVinculado": {"codigoSIAFI": self.code[o], "sigla": self.sigla[o], "nome": self.name[o],
                                    "cnpj": self.cnpj[o]},
                 "orgaoMaximo": {"codigo": m[0], "sigla": m[1], "nome": m[2]}}
            self._ug_dicts[u] = d
        return d

    def ug_name(self, u: int) -> str:
        return f"{cat.UG_KINDS[int(self.ug_kind[u])]} - {self.sigla[int(self.ug_org[u])]}"


def _cnpj(base12: str) -> str:
    return base12 + cnpj_check_digits(base12)


def _bad(digits: str, h: int) -> str:
    """The same document with a wrong last check digit."""
    return digits[:-1] + str((int(digits[-1]) + 1 + h % 9) % 10)


def _old_openings(rng: np.random.Generator, n: int) -> Arr:
    """Opening days (days since 1970) of established companies: all before 2021, so ≥ 1 year before 2022."""
    return np.int64(18_627) - np.minimum(rng.exponential(4_000, n).astype(np.int64), 18_000)


def _objeto_table() -> list[str]:
    out = []
    for c in cat.CLASSES:
        for prefix in ("", "Objeto: "):
            for case in range(3):
                for d in ("", *cat.DETAILS):
                    s = f"{prefix}{c.text}{' - ' + d if d else ''}"
                    out.append(s.upper() if case == 1 else s.lower() if case == 2 else s)
    return out


OBJETOS = _objeto_table()
N_VARIANTS = len(OBJETOS) // NC


class _Days:
    """Calendar tables over 2022-01-01 .. early 2026, indexed by days since ``DAY0``."""

    def __init__(self) -> None:
        import holidays

        self.day0 = int(np.datetime64("2022-01-01", "D").astype(np.int64))
        days = np.arange(self.day0, self.day0 + 1_520)
        hol = np.array(sorted(d.toordinal() - 719_163 for d in holidays.Brazil(years=range(2022, 2027))))
        self.off = ((days + 3) % 7 >= 5) | np.isin(days, hol)
        nxt = np.empty(days.size, np.int64)
        j = days.size - 1
        for i in range(days.size - 1, -1, -1):
            j = i if not self.off[i] else j
            nxt[i] = days[j]
        self.next_business = nxt
        year = days.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970
        self.business = {y: days[(year == y) & ~self.off] for y in range(2022, 2026)}
        self.holiday = {y: hol[(hol >= days[year == y][0]) & (hol <= days[year == y][-1])] for y in range(2022, 2026)}

    def draw(self, rng: np.random.Generator, year: Arr, month: Arr) -> Arr:
        """A signing day per contract: Sat 3 %, Sun 2 %, otherwise a working day (holidays moved on)."""
        ym = (year - 1970) * 12 + month
        first = ym.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)
        dim = (ym + 1).astype("datetime64[M]").astype("datetime64[D]").astype(np.int64) - first
        u = rng.random(year.size)
        target = np.where(u < 0.03, 5, np.where(u < 0.05, 6, np.floor((u - 0.05) / 0.95 * 5))).astype(np.int64)
        d1 = (target - (first + 3) % 7) % 7
        day = first + d1 + 7 * np.floor(rng.random(year.size) * ((dim - 1 - d1) // 7 + 1)).astype(np.int64)
        weekday = target < 5
        day[weekday] = self.next_business[day[weekday] - self.day0]
        return day


def _iso(days: Arr) -> list[str]:
    return np.datetime_as_string(days.astype("datetime64[D]")).tolist()  # type: ignore[no-any-return]


def _dmy(day: int) -> str:
    s = str(np.datetime64(day, "D"))
    return f"{s[8:10]}/{s[5:7]}/{s[:4]}"


def _brl(v: float) -> str:
    return f"{v:,.2f}".replace(",", "X").replace(".", ",").replace("X", ".")


class _Chunk:
    """The contracts of organs ``o0 .. o1``: drawn, planted, labelled; arrays indexed by row."""

    def __init__(self, w: _World, days: _Days, rng: np.random.Generator, o0: int, o1: int, next_sup: int) -> None:
        self.w, self.days, self.rng, self.o0 = w, days, rng, o0
        org = np.repeat(np.arange(o0, o1), w.size[o0:o1])
        n = self.n = org.size
        plan = w.plan[org]
        clip = np.where(plan == BENFORD, 1.4, 2.5)
        year = rng.integers(2022, 2026, n)
        month = rng.choice(12, n, p=np.array(cat.MONTH_WEIGHTS) / sum(cat.MONTH_WEIGHTS))
        month[(plan == YEAR_END) & (rng.random(n) < 0.5)] = 11
        ra = rng.random(n)
        ratio = np.where(ra < 0.2, rng.uniform(0.01, 0.18, n), 0.0)
        ratio = np.where((ra >= 0.2) & (ra < 0.23), rng.uniform(0.20, 0.24, n), ratio)
        ratio = np.where((ra >= 0.23) & (ra < 0.28), -rng.uniform(0.01, 0.25, n), ratio)
        cls = np.clip(np.rint(w.center[org] + rng.normal(0.0, 6.0, n)), 0, NC - 1).astype(np.int64)
        self.a: dict[str, Arr] = {
            "org": org, "year": year, "day": days.draw(rng, year, month), "ratio": ratio, "cls": cls,
            "ug": w.ug_start[org] + np.floor(w.ug_count[org] * rng.random(n) ** 1.6).astype(np.int64),
            "value": TYPICAL[cls] * np.exp(np.clip(w.offset[org] + rng.normal(0.0, 0.75, n), -clip, clip)),
            "mod": rng.choice(4, n, p=[0.48, 0.35, 0.12, 0.05]),
            "group": np.full(n, -1), "split": np.zeros(n, bool), "outlier": np.zeros(n, bool),
            "dirty": np.zeros(n, np.int64),
        }
        self._suppliers(o0, o1, next_sup)
        self.taken = plan != 0  # rows of planned agencies are left alone by contract-level planting
        self.sanctions: list[tuple[int, int, int, str]] = []  # supplier, start, end (-1 open), type
        for o in np.flatnonzero(w.plan[o0:o1]) + o0:
            self._plant_agency(int(o))
        self._plant_contracts()
        self._fix_dispensa_cells()
        order = np.lexsort((self.a["day"], self.a["org"]))
        self.a = {k: v[order] for k, v in self.a.items()}

    def _suppliers(self, o0: int, o1: int, next_sup: int) -> None:
        w, rng, a, n = self.w, self.rng, self.a, self.n
        u, org = rng.random(n), a["org"]
        kind = (u >= P_NATIONAL).astype(np.int64) + (u >= P_NATIONAL + P_REGULAR)  # 0 national, 1 regular, 2 fresh
        k = w.k_reg[o0:o1]
        base = next_sup + np.concatenate([[0], np.cumsum(k)[:-1]])
        kk, s = k[org - o0], 0.45
        rank = np.floor((1 + rng.random(n) * ((kk + 1.0) ** (1 - s) - 1)) ** (1 / (1 - s))).astype(np.int64) - 1
        sup = np.where(kind == 0, rng.choice(w.n_nat, n, p=w.nat_p), base[org - o0] + np.minimum(rank, kk - 1))
        fresh = kind == 2
        sup[fresh] = next_sup + k.sum() + np.arange(int(fresh.sum()))
        self.local0, n_local = next_sup, int(k.sum() + fresh.sum())
        self.next_sup = next_sup + n_local
        self.pf = np.zeros(n_local, bool)
        self.pf[int(k.sum()):] = rng.random(int(fresh.sum())) < 0.04
        self.opening, self.status = _old_openings(rng, n_local), np.zeros(n_local, np.int64)
        a["kind"], a["sup"] = kind, sup

    def local(self, sup: Arr) -> Arr:
        return np.clip(sup - self.local0, 0, self.pf.size - 1)

    def row_pf(self) -> Arr:
        return (self.a["sup"] >= self.local0) & self.pf[self.local(self.a["sup"])]

    def pick(self, mask: Arr, rate: float) -> Arr:
        cand = np.flatnonzero(mask & ~self.taken)
        k = min(cand.size, int(self.rng.binomial(self.n, rate)))
        rows = np.sort(self.rng.choice(cand, k, replace=False)) if k else cand[:0]
        self.taken[rows] = True
        return rows

    def _plant_agency(self, o: int) -> None:
        a, rng, plan = self.a, self.rng, int(self.w.plan[o])
        rows = np.flatnonzero(a["org"] == o)
        if plan == CONC:  # the agency's first regular supplier takes its biggest contracts, ≥ 78 % of spend
            spend = a["value"][rows] * (1 + a["ratio"][rows])
            top = rows[np.argsort(-spend, kind="stable")]
            share = np.cumsum(np.sort(spend)[::-1]) / spend.sum()
            k = int(np.searchsorted(share, rng.uniform(0.78, 0.92))) + 1
            a["sup"][top[:k]] = self.local0 + int(self.w.k_reg[self.o0 : o].sum())
            a["kind"][top[:k]] = 1
        elif plan == BENFORD:  # most values get a first digit 4-6, moved the shorter way in log terms
            rows = rows[rng.random(rows.size) < 0.65]
            v = a["value"][rows]
            e = 10.0 ** np.floor(np.log10(v))
            m = rng.uniform(4.0, 7.0, rows.size)
            up, down = m * e, m * e / 10
            a["value"][rows] = np.where(np.abs(np.log(up / v)) < np.abs(np.log(down / v)), up, down)
            a["ratio"][rows] = 0.0

    def _plant_contracts(self) -> None:
        a, rng, days, n = self.a, self.rng, self.days, self.n
        free = np.ones(n, bool)
        self._plant_splitting()
        for r in self.pick(free, RATES["holiday"]):
            a["day"][r] = rng.choice(days.holiday[int(a["year"][r])])
        fresh_pj = (a["kind"] == 2) & ~self.row_pf()
        for key, lo, hi in (("new", 15, 365), ("new_near", 400, 501)):
            rows = self.pick(fresh_pj, RATES[key])
            self.opening[self.local(a["sup"][rows])] = a["day"][rows] - rng.integers(lo, hi, rows.size)
        rows = self.pick(fresh_pj, RATES["inactive"])
        self.status[self.local(a["sup"][rows])] = rng.integers(1, len(STATUSES), rows.size)
        local_pj = (a["kind"] >= 1) & ~self.row_pf()
        for key in ("sanction", "expired", "fine"):
            for r in self.pick(local_pj, RATES[key]).tolist():
                d, t = int(a["day"][r]), cat.BARRING_SANCTIONS[int(rng.integers(3))]
                if key == "sanction":
                    start, end = d - int(rng.integers(10, 700)), d + int(rng.integers(1, 1500))
                    end = -1 if rng.random() < 0.25 else end
                elif key == "expired":
                    end = d - int(rng.integers(1, 400))
                    start = end - int(rng.integers(180, 1800))
                else:
                    start, end, t = d - int(rng.integers(10, 300)), d + int(rng.integers(30, 700)), cat.FINE_SANCTION
                self.sanctions.append((int(a["sup"][r]), start, end, t))
        rows = self.pick(free, RATES["outlier"])
        a["value"][rows] = TYPICAL[a["cls"][rows]] * rng.uniform(30, 200, rows.size)
        a["ratio"][rows], a["outlier"][rows] = 0.0, True
        rows = self.pick(free, RATES["amend"])
        low = np.where(a["cls"][rows] == RENOVATION, 0.55, 0.30)  # art. 125 allows 50 % for renovation
        a["ratio"][rows] = rng.uniform(low, 1.0)
        a["initial"] = np.round(a["value"], 2)
        a["final"] = np.round(a["initial"] * (1 + a["ratio"]), 2)
        rows = self.pick(free, RATES["dirty"])
        reason = rng.integers(1, len(DIRTY), rows.size)
        reason[(reason == 1) & self.row_pf()[rows]] = 2
        a["dirty"][rows] = reason
        neg, absurd = rows[reason == 3], rows[reason == 4]
        a["initial"][neg], a["final"][neg] = -a["initial"][neg], -a["final"][neg]
        a["initial"][absurd] = a["final"][absurd] = 2.1e13 * rng.integers(1, 5, absurd.size)

    def _plant_splitting(self) -> None:
        """Groups of 3-6 dispensas (same UG, class, year) each under the art. 75 II ceiling, sum over it;
        near-miss groups of 3-4 whose sum stays under it."""
        a, rng, n = self.a, self.rng, self.n
        n_pos, n_near = rng.binomial(n, RATES["split"]), rng.binomial(n, RATES["split_near"])
        cells: set[tuple[int, int, int]] = set()
        for g in range(n_pos + n_near):
            near = g >= n_pos
            k = int(rng.integers(3, 5 if near else 7))
            cand = np.flatnonzero(~self.taken)
            if cand.size == 0:
                return
            anchor = int(rng.choice(cand))
            same = np.flatnonzero((a["ug"] == a["ug"][anchor]) & ~self.taken)
            year, c = int(a["year"][anchor]), int(rng.choice(SPLIT_CLASSES))
            cell = (int(a["ug"][anchor]), c, year)
            if same.size < k or cell in cells:
                continue
            cells.add(cell)
            rows = np.sort(rng.choice(same, k, replace=False))
            bd = self.days.business[year]
            i0 = int(rng.integers(0, bd.size - 45))
            ceil = CEIL_II[year - 2022]
            share = rng.uniform(0.75, 0.97) * rng.dirichlet(np.ones(k)) if near else rng.uniform(0.80, 0.995, k)
            a["value"][rows] = np.floor(ceil * share * 100) / 100
            a["day"][rows] = bd[i0 + np.sort(rng.choice(45, k, replace=False))]
            a["year"][rows], a["cls"][rows], a["mod"][rows], a["ratio"][rows] = year, c, DISPENSA, 0.0
            a["group"][rows], a["split"][rows] = g, not near
            self.taken[rows] = True

    def _fix_dispensa_cells(self) -> None:
        """Keep unplanted dispensas of one (UG, class, year) under the ceiling in total: convert the excess
        (and every unplanted one sharing a planted group's cell) to pregão."""
        a = self.a
        y = a["year"] - 2022
        vmax = np.maximum(a["initial"], a["final"])
        cand = np.flatnonzero((a["mod"] == DISPENSA) & (vmax > 0) & (vmax < CEIL_I[y]))
        cell = (a["ug"][cand] * NC + a["cls"][cand]) * 4 + y[cand]
        grouped = a["group"][cand] >= 0
        in_planted = np.isin(cell, cell[grouped]) & ~grouped
        rest = ~grouped & ~in_planted
        c, v, rows = cell[rest], vmax[cand][rest], cand[rest]
        order = np.lexsort((v, c))
        c, v, rows = c[order], v[order], rows[order]
        cum = np.cumsum(v)
        starts = np.flatnonzero(np.r_[True, c[1:] != c[:-1]])
        cum -= np.repeat(np.r_[0.0, cum[starts[1:] - 1]], np.diff(np.r_[starts, c.size]))
        over = rows[cum > CEIL_II[y[rows]]]
        a["mod"][np.r_[cand[in_planted], over]] = PREGAO

    def labels(self) -> tuple[dict[str, Arr], dict[str, Arr]]:
        """Per-row masks of contract flags and per-organ masks (over ``o0 ..``) of agency flags."""
        a, w, clean = self.a, self.w, self.a["dirty"] == 0
        sup, day, ini, fin = a["sup"], a["day"], a["initial"], a["final"]
        is_local = sup >= self.local0
        opening = np.where(is_local, self.opening[self.local(sup)], w.nat_open[np.minimum(sup, w.n_nat - 1)])
        status = np.where(is_local, self.status[self.local(sup)], 0)
        sanctioned = np.zeros(self.n, bool)
        order = np.argsort(sup, kind="stable")
        for s, start, end, t in self.sanctions:
            if t != cat.FINE_SANCTION:
                rows = order[np.searchsorted(sup[order], s) : np.searchsorted(sup[order], s, "right")]
                sanctioned[rows[(day[rows] >= start) & ((end < 0) | (day[rows] <= end))]] = True
        with np.errstate(divide="ignore", invalid="ignore"):
            amended = (ini > 0) & (fin / ini - 1 > 0.25)
        contract = {
            "price_outlier": a["outlier"], "contract_splitting": a["split"], "amendment_over_limit": amended,
            "sanctioned_supplier": sanctioned,
            "new_supplier": ~self.row_pf() & ((day - opening < 365) | (status != 0)),
            "weekend_or_holiday_signature": self.days.off[day - self.days.day0],
        }
        contract = {k: v & clean for k, v in contract.items()}
        n_org = int(a["org"].max()) - self.o0 + 1 if self.n else 0
        m = clean & (fin > 0)
        org, spend = a["org"][m] - self.o0, fin[m]
        uk, inv = np.unique(org * (1 << 32) + sup[m], return_inverse=True)
        top = np.zeros(n_org)
        np.maximum.at(top, uk >> 32, np.bincount(inv, weights=spend))
        total = np.bincount(org, weights=spend, minlength=n_org)
        plan = w.plan[self.o0 : self.o0 + n_org]
        agency = {
            "supplier_concentration": (np.bincount(org, minlength=n_org) >= 10) & (top >= 0.70 * total),
            "benford_nonconformity": plan == BENFORD,
            "year_end_rush": plan == YEAR_END,
        }
        return contract, agency

    def supplier(self, sid: int) -> tuple[str, str, str]:
        return _supplier_info(self.w, sid, sid >= self.local0 and bool(self.pf[sid - self.local0]))


def _supplier_info(w: _World, sid: int, pf: bool) -> tuple[str, str, str]:
    """Document digits, name and registry name (upper case) of supplier ``sid``: a function of the id."""
    if sid in w.nat_cache:
        return w.nat_cache[sid]
    h = (sid * 2_654_435_761 + w.salt) % 4_294_967_296
    if pf:
        base9 = f"{100_000_000 + (sid * 48_271 + w.salt) % 900_000_000:09d}"
        name = f"{cat.FIRST_NAMES[h % 20]} {cat.SURNAMES[(h >> 5) % 36]} {cat.SURNAMES[(h >> 11) % 36]}"
        return base9 + cpf_check_digits(base9), name, name.upper()
    root = 10_000_000 + (sid * 48_271 + w.salt) % 90_000_000
    digits = _cnpj(f"{root:08d}{'0002' if h % 13 == 0 else '0001'}")
    s1, act = cat.SURNAMES[h % 36], cat.ACTIVITIES[(h >> 6) % 20]
    pair = f"{s1} & {cat.SURNAMES[(h >> 16) % 36]}" if (h >> 14) & 1 else s1
    name = f"{pair} {act} {cat.COMPANY_SUFFIXES[(h >> 11) % 7]}"
    if sid < w.n_nat:
        w.nat_cache[sid] = (digits, name, name.upper())
    return digits, name, name.upper()


def _doc(digits: str, portal: bool) -> str:
    if len(digits) == 14:
        return format_cnpj(digits)
    if portal:  # the Portal masks CPFs
        return f"***.{digits[3:6]}.{digits[6:9]}-**"
    return f"{digits[:3]}.{digits[3:6]}.{digits[6:9]}-{digits[9:]}"


def _write_chunk(ch: _Chunk, fmt: Format, next_id: int, out: dict[str, IO[bytes]], counts: Counter[str]) -> int:
    """Serialise chunk ``ch``: contracts, registry rows, sanctions, labels. Returns the last id used."""
    a, w, rng, n = ch.a, ch.w, ch.rng, ch.n
    ids = next_id + np.cumsum(rng.integers(1, 40, n))
    _, first, inv = np.unique(a["org"] * 4 + a["year"] - 2022, return_index=True, return_inverse=True)
    seq = (np.arange(n) - first[inv] + 1).tolist()
    starts = a["day"] + rng.integers(0, 16, n)
    ends = starts + rng.choice([90, 180, 365, 365, 730, 1095, 1825], n)
    pubs = a["day"] + rng.integers(1, 21, n)
    situ = np.where(rng.random(n) < 0.02, 2, (ends < 20_269).astype(np.int64))  # 20269 = 2025-06-30
    variant = (rng.random(n) < 0.3) * 27 + rng.choice(3, n, p=[0.75, 0.15, 0.10]) * 9
    variant += np.where(rng.random(n) < 0.45, rng.integers(1, 9, n), 0)
    objeto = [OBJETOS[i] for i in (a["cls"] * N_VARIANTS + variant).tolist()]
    proc = [f"{p5:05d}.{p6:06d}/{y}-{p2:02d}" for p5, p6, y, p2 in zip(
        rng.integers(10_000, 99_999, n).tolist(), rng.integers(0, 999_999, n).tolist(),
        a["year"].tolist(), rng.integers(0, 99, n).tolist(), strict=True)]
    for r in np.flatnonzero(rng.random(n) < 0.01).tolist():
        proc[r] = "Sem informação"
    signed = _iso(a["day"])
    dirty = a["dirty"].tolist()
    for r in np.flatnonzero(a["dirty"]).tolist():
        reason, y = DIRTY[dirty[r]], signed[r][:4]
        if reason == "missing_date":
            signed[r] = "Sem informação"
        elif reason == "bad_date":
            signed[r] = f"31/02/{y}" if r % 2 else f"{y}-13-45"
    sup_list, org_list, ug_list, year_list = (a[k].tolist() for k in ("sup", "org", "ug", "year"))
    info = {s: ch.supplier(s) for s in np.unique(a["sup"]).tolist()}
    docs = [info[s][0] if d != 1 else _bad(info[s][0], s) for s, d in zip(sup_list, dirty, strict=True)]
    numero = [f"{q:05d}/{y}" for q, y in zip(seq, year_list, strict=True)]
    mod = a["mod"].tolist()
    cols = (ids.tolist(), numero, objeto, proc, mod, signed, _iso(starts), _iso(ends), _iso(pubs),
            a["initial"].tolist(), a["final"].tolist(), docs, sup_list, org_list, ug_list, situ.tolist())
    sid_text: list[str]
    buf: list[bytes] = []
    if fmt == "pncp":
        sid_text = [f"{w.cnpj[o]}-2-{q:06d}/{y}" for o, q, y in zip(org_list, seq, year_list, strict=True)]
        for (i, num, obj, pr, md, sg, st, en, pb, vi, vf, doc, s, o, u, _), ctl, q in zip(
                zip(*cols, strict=True), sid_text, seq, strict=True):
            mtext, mid = cat.MODALITIES[md]
            buf.append(orjson.dumps({
                "numeroControlePNCP": ctl, "numeroContratoEmpenho": num, "anoContrato": int(ctl[-4:]),
                "sequencialContrato": q, "processo": pr, "tipoContrato": {"id": 1, "nome": "Contrato (termo inicial)"},
                "categoriaProcesso": {"id": mid, "nome": mtext}, "objetoContrato": obj, "dataAssinatura": sg,
                "dataVigenciaInicio": st, "dataVigenciaFim": en, "dataPublicacaoPncp": f"{pb}T10:00:00",
                "valorInicial": vi, "valorGlobal": vf, "valorAcumulado": vf, "niFornecedor": doc,
                "tipoPessoa": "PJ" if len(doc) == 14 else "PF", "nomeRazaoSocialFornecedor": info[s][2],
                "orgaoEntidade": {"cnpj": w.cnpj[o], "razaoSocial": w.name[o].upper(), "poderId": "E", "esferaId": "F"},
                "unidadeOrgao": {"codigoUnidade": w.ug_code[u], "nomeUnidade": w.ug_name(u),
                                 "ufSigla": cat.PLACES[int(w.place[o])][1], "municipioNome": cat.PLACES[int(w.place[o])][2]},
                "informacaoComplementar": None}) + b"\n")
        agency_ids = w.cnpj
    elif fmt == "portal":
        sid_text = [str(i) for i in cols[0]]
        forn: dict[int, dict[str, Any]] = {}
        for i, num, obj, pr, md, sg, st, en, pb, vi, vf, doc, s, o, u, si in zip(*cols, strict=True):
            f = forn.get(s) if doc == info[s][0] else None
            if f is None:
                key = "cnpjFormatado" if len(doc) == 14 else "cpfFormatado"
                f = {"id": s + 1, key: _doc(doc, True), "nome": info[s][1], "razaoSocialReceita": info[s][2]}
                if doc == info[s][0]:
                    forn[s] = f
            buf.append(orjson.dumps({
                "id": i, "numero": num, "objeto": obj, "numeroProcesso": pr, "fundamentoLegal": cat.FUNDAMENTOS[md],
                "situacaoContrato": ("Ativo", "Encerrado", "Rescindido")[si], "modalidadeCompra": cat.MODALITIES[md][0],
                "dataAssinatura": sg, "dataInicioVigencia": st, "dataFimVigencia": en, "dataPublicacaoDOU": pb,
                "valorInicialCompra": vi, "valorFinalCompra": vf, "fornecedor": f, "unidadeGestora": w.ug_dict(u),
            }) + b"\n")
        agency_ids = w.code
    else:
        sid_text = [str(i) for i in cols[0]]
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        for i, num, obj, pr, md, sg, st, en, pb, vi, vf, doc, s, o, u, si in zip(*cols, strict=True):
            writer.writerow((i, num, obj, pr, cat.FUNDAMENTOS[md], ("Ativo", "Encerrado", "Rescindido")[si],
                             cat.MODALITIES[md][0], sg, st, en, pb, f"{vi:.2f}", f"{vf:.2f}", _doc(doc, False),
                             info[s][1], w.ug_code[u], w.ug_name(u), w.code[o], w.sigla[o], w.name[o]))
        buf.append(text.getvalue().encode())
        agency_ids = w.code
    out["contracts"].write(b"".join(buf))

    contract, agency = ch.labels()
    lines = [f"contract,{sid_text[r]},dirty:{DIRTY[dirty[r]]}\n" for r in np.flatnonzero(a["dirty"]).tolist()]
    for flag, mask in contract.items():
        lines += [f"contract,{sid_text[r]},{flag}\n" for r in np.flatnonzero(mask).tolist()]
    for flag, mask in agency.items():
        lines += [f"agency,{agency_ids[o + ch.o0]},{flag}\n" for o in np.flatnonzero(mask).tolist()]
    counts.update(line.rsplit(",", 1)[1].strip() for line in lines)
    out["labels"].write("".join(lines).encode())

    reg = io.StringIO()
    writer = csv.writer(reg, lineterminator="\n")
    local = [s for s in info if s >= ch.local0 and len(info[s][0]) == 14]
    w.nat_used[[s for s in info if s < w.n_nat]] = True
    opening = _iso(ch.opening[np.array(local, np.int64) - ch.local0]) if local else []
    for s, op in zip(local, opening, strict=True):
        writer.writerow((info[s][0], info[s][2], op, STATUSES[int(ch.status[s - ch.local0])]))
    out["suppliers"].write(reg.getvalue().encode())
    counts["_suppliers"] += len(info) - sum(1 for s in info if s < w.n_nat)
    counts["_registry"] += len(local)
    counts["_dirty"] += int(np.count_nonzero(a["dirty"]))
    _write_sanctions(rng, [(st, en, t, ch.supplier(s)) for s, st, en, t in ch.sanctions], out, counts)
    return int(ids[-1]) if n else next_id


def _write_sanctions(rng: np.random.Generator, rows: list[tuple[int, int, str, tuple[str, str, str]]],
                     out: dict[str, IO[bytes]], counts: Counter[str]) -> None:
    buf = []
    for start, end, t, (digits, _, razao) in rows:
        counts["_sanctions"] += 1
        org = cat.SANCTIONING_ORGANS[int(rng.integers(len(cat.SANCTIONING_ORGANS)))]
        code, ground = cat.CEIS_GROUNDS[t]
        buf.append(orjson.dumps({
            "id": 100_000 + counts["_sanctions"], "dataInicioSancao": _dmy(start),
            "dataFimSancao": _dmy(end) if end >= 0 else ("" if rng.random() < 0.7 else "Sem informação"),
            "dataPublicacaoSancao": _dmy(start + int(rng.integers(0, 20))),
            "tipoSancao": {"descricaoResumida": t, "descricaoPortal": t},
            "orgaoSancionador": {"nome": org[0], "siglaUf": org[1], "poder": org[2], "esfera": org[3]},
            "sancionado": {"nome": razao, "codigoFormatado": format_cnpj(digits)},
            "pessoa": {"cnpjFormatado": format_cnpj(digits), "cpfFormatado": "", "razaoSocialReceita": razao},
            "fundamentacao": [{"codigo": code, "descricao": ground}],
            "valorMulta": _brl(float(rng.integers(5, 500)) * 1000) if t == cat.FINE_SANCTION else "0,00",
        }) + b"\n")
    out["ceis"].write(b"".join(buf))


def _write_tail(w: _World, rng: np.random.Generator, out: dict[str, IO[bytes]], counts: Counter[str]) -> None:
    """National suppliers' registry rows, bad-CNPJ registry rows and sanctions of absent companies."""
    reg = io.StringIO()
    writer = csv.writer(reg, lineterminator="\n")
    used = np.flatnonzero(w.nat_used)
    for s, op in zip(used.tolist(), _iso(w.nat_open[used]), strict=True):
        digits, _, razao = _supplier_info(w, s, False)
        writer.writerow((digits, razao, op, "ATIVA"))
    counts["_suppliers"] += used.size
    counts["_registry"] += used.size
    n_bad = max(3, counts["_registry"] // 1000)
    bad = [_supplier_info(w, 85_000_000 + j, False) for j in range(n_bad)]
    for j, (digits, _, razao), op in zip(range(n_bad), bad, _iso(_old_openings(rng, n_bad)), strict=True):
        writer.writerow((_bad(digits, j), razao, op, "ATIVA"))
    out["suppliers"].write(reg.getvalue().encode())
    out["labels"].write("".join(f"supplier,{_bad(d, j)},dirty:bad_cnpj\n" for j, (d, _, _) in enumerate(bad)).encode())
    counts["dirty:bad_cnpj"] += n_bad
    n_noise = max(5, int(w.size.sum()) // 2_000)
    starts = rng.integers(17_532, 20_089, n_noise)  # 2018-01-01 .. 2024-12-31
    ends = np.where(rng.random(n_noise) < 0.2, -1, starts + rng.integers(90, 1_800, n_noise))
    kinds = rng.integers(0, 4, n_noise)
    _write_sanctions(rng, [
        (int(st), int(en), (*cat.BARRING_SANCTIONS, cat.FINE_SANCTION)[k], _supplier_info(w, 80_000_000 + j, False))
        for j, (st, en, k) in enumerate(zip(starts.tolist(), ends.tolist(), kinds.tolist(), strict=True))], out, counts)


def generate(out: Path, contracts: int, seed: int, fmt: Format = "portal",
             progress: Callable[[int], None] | None = None) -> GenerationSummary:
    """Write ``contracts`` synthetic contracts in ``fmt`` shape, with sanctions, registry and labels, into ``out``.

    Files (see docs/formats.md): ``contracts.jsonl`` (Portal records), ``contracts.pncp.jsonl`` (PNCP records)
    or ``contracts.csv``; ``ceis.jsonl``; ``suppliers.csv``; ``labels.csv`` (``level,id,flag``; the id is the
    contract's source id, the organ's SIAFI code — its CNPJ for PNCP, which has no SIAFI code — or a raw
    registry CNPJ); ``manifest.json``. The same ``seed`` gives byte-identical files, and the same contracts
    in every format. Work is streamed in chunks of whole organs (~50,000 contracts); ``progress`` is called
    with the number of contracts written since its previous call.
    """
    if fmt not in CONTRACT_FILES:
        raise ValueError(f"unknown format {fmt!r}; expected portal, pncp or csv")
    if contracts < 0:
        raise ValueError("contracts must be >= 0")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    world, days = _World(rng, contracts), _Days()
    names = {"contracts": CONTRACT_FILES[fmt], "ceis": "ceis.jsonl", "suppliers": "suppliers.csv",
             "labels": "labels.csv"}
    files = {k: out / v for k, v in names.items()}
    counts: Counter[str] = Counter()
    with ExitStack() as stack:
        fh = {k: stack.enter_context(p.open("wb")) for k, p in files.items()}
        if fmt == "csv":
            fh["contracts"].write((",".join(CSV_COLUMNS) + "\n").encode())
        fh["suppliers"].write(b"cnpj,razao_social,data_abertura,situacao_cadastral\n")
        fh["labels"].write(b"level,id,flag\n")
        next_sup, next_id = world.n_nat, int(rng.integers(10_000_000, 20_000_000))
        for o0, o1 in world.chunks():
            chunk = _Chunk(world, days, rng, o0, o1, next_sup)
            next_id, next_sup = _write_chunk(chunk, fmt, next_id, fh, counts), chunk.next_sup
            if progress is not None:
                progress(chunk.n)
        _write_tail(world, rng, fh, counts)
    label_counts = {k: v for k, v in sorted(counts.items()) if not k.startswith("_")}
    files["manifest"] = out / "manifest.json"
    manifest = {"seed": seed, "format": fmt, "contracts": contracts, "sanctions": counts["_sanctions"],
                "suppliers": counts["_suppliers"], "registry_rows": counts["_registry"],
                "dirty_rows": counts["_dirty"], "labels": label_counts,
                "files": [p.name for p in files.values()]}
    files["manifest"].write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return GenerationSummary(files=files, contracts=contracts, sanctions=counts["_sanctions"],
                             suppliers=counts["_suppliers"], labels=sum(label_counts.values()),
                             dirty_rows=counts["_dirty"], label_counts=label_counts)
