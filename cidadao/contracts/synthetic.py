"""Seeded, streaming generator of realistic synthetic contracts with planted red flags.

``generate`` writes contracts (Portal, PNCP or CSV shape), a CEIS file, a supplier registry, a ground-truth
``labels.csv`` and a ``manifest.json``; the targets are the DOMAIN notes' "Realistic synthetic data". Organs
are drawn whole, in chunks of about ``CHUNK`` contracts, so agency-level anomalies are planted and checked
inside one chunk and memory stays flat whatever the number of contracts.

Label policy: a rule that can be read off the data labels every clean contract or agency that meets it,
planted or not — weekend/holiday signature, amendment > 25 %, barring sanction in force, new (< 365 days)
or non-ATIVA supplier, supplier concentration (≥ 10 contracts, one supplier ≥ 70 % of spend), year-end
rush (≥ 10 contracts, December spend > 3x the mean month) and Benford (≥ 300 values, first-digit MAD >
0.015). Price outliers and splitting label what was planted, and the background is built not to meet
them: values stay within about 6x their class's level, natural dispensa groups under the ceiling.
Dirty rows carry only their ``dirty:<reason>`` label.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from statistics import NormalDist
from typing import IO, Any, Literal, cast

import numpy as np
import numpy.typing as npt

from cidadao.contracts import _synthetic_catalogue as cat
from cidadao.contracts.identifiers import cnpj_check_digits

__all__ = ["GenerationSummary", "generate"]

Arr = npt.NDArray[Any]
Format = Literal["portal", "pncp", "csv"]

CHUNK = 50_000
CONTRACT_FILES = {"portal": "contracts.jsonl", "pncp": "contracts.pncp.jsonl", "csv": "contracts.csv"}
DIRTY = ("", "bad_cnpj", "missing_date", "negative_value", "absurd_value", "bad_date")
STATUSES = ("ATIVA", "BAIXADA", "SUSPENSA", "INAPTA", "NULA")
PREGAO, DISPENSA = 0, 1  # indexes into cat.MODALITIES
CONC, BENFORD, YEAR_END = 1, 2, 3  # agency plans
NC = len(cat.CLASSES)
TYPICAL = np.array([c.typical for c in cat.CLASSES])
ITEM_I = np.array([c.item == "I" for c in cat.CLASSES])
SPLIT_CLASSES = np.flatnonzero(~ITEM_I & (TYPICAL >= 15e3) & (TYPICAL <= 15e4))
RENOVATION = next(i for i, c in enumerate(cat.CLASSES) if c.key == "obras_reforma")
CEIL_I = np.array([cat.CEILING_I[y] for y in range(2022, 2026)])
CEIL_II = np.array([cat.CEILING_II[y] for y in range(2022, 2026)])
BENFORD_P = np.log10(1 + 1 / np.arange(1, 10))
RATES = {
    "outlier": 0.001,
    "amend": 0.003,
    "split": 0.0006,
    "split_near": 0.0006,
    "holiday": 0.002,
    "new": 0.002,
    "new_near": 0.002,
    "inactive": 0.0008,
    "sanction": 0.0015,
    "expired": 0.001,
    "fine": 0.001,
    "dirty": 0.005,
}  # per contract
P_NATIONAL, P_REGULAR = 0.07, 0.60  # the rest go to one-off suppliers


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
    """Organs, their unidades gestoras and plans, the national supplier pool: all drawn up front."""

    def __init__(self, rng: np.random.Generator, n: int) -> None:
        n_org = max(3, min(n // 150, 16_000))
        z = np.array([NormalDist().inv_cdf((i + 0.5) / n_org) for i in range(n_org)])
        self.size = rng.multinomial(n, (w := rng.permutation(np.exp(1.58 * z))) / w.sum())  # median ~45, p90 ~340
        self.ministry = rng.permutation(np.arange(n_org) % len(cat.MINISTRIES))
        suffix = np.zeros(n_org, np.int64)
        for m in range(len(cat.MINISTRIES)):
            idx = np.flatnonzero(self.ministry == m)
            suffix[idx] = rng.choice(899, idx.size, replace=False) + 101
        kind, self.place = rng.integers(len(cat.ORGAN_KINDS), size=n_org), rng.integers(len(cat.PLACES), size=n_org)
        self.code = [cat.MINISTRIES[m][0][:2] + f"{s:03d}" for m, s in zip(self.ministry, suffix, strict=True)]
        self.cnpj = [(b := f"{394_000 + 37 * i:08d}0001") + cnpj_check_digits(b) for i in range(n_org)]
        self.sigla = [cat.ORGAN_KINDS[k][1] + cat.PLACES[p][1] for k, p in zip(kind, self.place, strict=True)]
        self.name = [f"{cat.ORGAN_KINDS[k][0]} {cat.PLACES[p][0]}" for k, p in zip(kind, self.place, strict=True)]
        self.ug_count = 1 + np.minimum(4, rng.poisson(0.3 + self.size / 250))
        self.ug_start = np.concatenate([[0], np.cumsum(self.ug_count)[:-1]])
        n_ug = int(self.ug_count.sum())
        self.ug_code = (rng.choice(900_000, n_ug, replace=False) + 100_000).astype(str).tolist()
        self.ug_org = np.repeat(np.arange(n_org), self.ug_count)
        self.ug_kind = (
            rng.integers(len(cat.UG_KINDS), size=n_org)[self.ug_org] + np.arange(n_ug) - self.ug_start[self.ug_org]
        ) % len(cat.UG_KINDS)
        # class mix: small organs buy around their own price level, big ones a bit of everything
        f = 1 / np.sqrt(1 + self.size / 300)
        self.center = np.clip(18.5 + f * rng.normal(0.0, 8.0, n_org), 0, NC - 1)
        self.spread = np.sqrt(3.5**2 + 8.0**2 * (1 - f**2))
        self.offset = rng.normal(0.0, 0.35, n_org)
        self.k_reg = np.maximum(1, np.ceil(self.size * 0.14)).astype(np.int64)  # regular suppliers per organ
        self.plan = np.zeros(n_org, np.int64)
        for plan, min_size, rate in ((BENFORD, 400, 0.03), (CONC, 10, 0.02), (YEAR_END, 60, 0.02)):
            eligible = np.flatnonzero((self.size >= min_size) & (self.plan == 0))
            if eligible.size:
                self.plan[rng.choice(eligible, max(1, round(rate * eligible.size)), replace=False)] = plan
        self.n_nat = max(30, n // 1000)
        self.nat_p = (p := np.arange(1, self.n_nat + 1) ** -0.6) / p.sum()
        self.nat_open = _old_openings(rng, self.n_nat)
        self.nat_used = np.zeros(self.n_nat, bool)
        self.salt = int(rng.integers(90_000_000))
        self._nat: dict[int, cat.Party] = {}

    def chunks(self) -> Iterator[tuple[int, int]]:
        start, acc = 0, 0
        for i, s in enumerate(self.size.tolist()):
            acc += s
            if acc >= CHUNK:
                yield start, i + 1
                start, acc = i + 1, 0
        if start < self.size.size:
            yield start, self.size.size

    def unit(self, u: int) -> cat.Unit:
        o = int(self.ug_org[u])
        place = cat.PLACES[int(self.place[o])]
        return cat.Unit(
            self.ug_code[u],
            f"{cat.UG_KINDS[int(self.ug_kind[u])]} - {self.sigla[o]}",
            self.code[o],
            self.sigla[o],
            self.name[o],
            self.cnpj[o],
            cat.MINISTRIES[int(self.ministry[o])],
            place[1],
            place[2],
        )

    def party(self, sid: int, pf: bool) -> cat.Party:
        if sid >= self.n_nat:
            return cat.person(sid, self.salt) if pf else cat.company(sid, self.salt)
        if sid not in self._nat:
            self._nat[sid] = cat.company(sid, self.salt)
        return self._nat[sid]


def _old_openings(rng: np.random.Generator, n: int) -> Arr:
    """Opening days (since 1970) of established companies: before 2021, so > 1 year before any signing."""
    out: Arr = 18_627 - np.minimum(rng.exponential(4_000, n).astype(np.int64), 18_000)
    return out


def _first_digit(v: Arr) -> Arr:
    e = 10.0 ** np.floor(np.log10(v))
    d = np.floor(v / e)
    out: Arr = np.where(d >= 10, 1, np.where(d < 1, np.floor(v * 10 / e), d)).astype(np.int64)
    return out


def _iso(days: Arr) -> list[str]:
    return cast("list[str]", np.datetime_as_string(days.astype("datetime64[D]")).tolist())


class _Chunk:
    """The contracts of organs ``o0 .. o1``, drawn, planted and labelled; ``a`` holds one array per column."""

    def __init__(self, w: _World, cal: cat.Calendar, rng: np.random.Generator, o0: int, o1: int, next_sup: int) -> None:
        self.w, self.cal, self.rng, self.o0 = w, cal, rng, o0
        org = np.repeat(np.arange(o0, o1), w.size[o0:o1])
        n = self.n = org.size
        plan = w.plan[org]
        year = rng.integers(2022, 2026, n)
        mon = rng.choice(12, n, p=np.array(cat.MONTH_WEIGHTS) / sum(cat.MONTH_WEIGHTS))
        mon[(plan == YEAR_END) & (rng.random(n) < 0.5)] = 11
        ra = rng.random(n)  # amendments: most none, some small, 3 % near misses (20-24 %), 5 % reductions
        ratio = np.select(
            [ra < 0.2, ra < 0.23, ra < 0.28],
            [rng.uniform(0.01, 0.18, n), rng.uniform(0.20, 0.24, n), -rng.uniform(0.01, 0.25, n)],
            0.0,
        )
        cls = np.clip(np.rint(w.center[org] + w.spread[org] * rng.normal(0.0, 1.0, n)), 0, NC - 1).astype(np.int64)
        top = np.where(plan == BENFORD, 1.0, 1.8)  # log-deviation from the class level is capped
        self.a: dict[str, Arr] = {
            "org": org,
            "year": year,
            "day": cal.draw(rng, year, mon),
            "ratio": ratio,
            "cls": cls,
            "ug": w.ug_start[org] + np.floor(w.ug_count[org] * rng.random(n) ** 1.6).astype(np.int64),
            "value": TYPICAL[cls] * np.exp(np.clip(w.offset[org] + rng.normal(0.0, 0.7, n), -2.2, top)),
            "mod": rng.choice(4, n, p=[0.43, 0.40, 0.12, 0.05]),  # dispensa excess becomes pregão later
            "group": np.full(n, -1),
            "split": np.zeros(n, bool),
            "outlier": np.zeros(n, bool),
            "dirty": np.zeros(n, np.int64),
        }
        self._suppliers(o0, o1, next_sup)
        self.taken = plan != 0  # planned agencies' rows get no contract-level plant and no dirt
        self.sanctions: list[tuple[int, int, int, str]] = []  # supplier, start, end (-1 = open), tipoSancao
        for o in np.flatnonzero(w.plan[o0:o1]) + o0:
            self._plant_agency(int(o))
        self._plant_contracts()
        self._calm_december()
        self._fix_dispensa_cells()
        order = np.lexsort((self.a["day"], self.a["org"]))
        self.a = {k: v[order] for k, v in self.a.items()}

    def _suppliers(self, o0: int, o1: int, next_sup: int) -> None:
        """National (Zipf over all organs), regular (Zipf-like within the organ) or one-off suppliers."""
        w, rng, a, n, org = self.w, self.rng, self.a, self.n, self.a["org"] - o0
        u = rng.random(n)
        kind = (u >= P_NATIONAL).astype(np.int64) + (u >= P_NATIONAL + P_REGULAR)  # 0 national, 1 regular, 2 one-off
        k = w.k_reg[o0:o1]
        kk, s = k[org], 0.45
        rank = np.floor((1 + rng.random(n) * ((kk + 1.0) ** (1 - s) - 1)) ** (1 / (1 - s))).astype(np.int64) - 1
        base = next_sup + np.concatenate([[0], np.cumsum(k)[:-1]])
        sup = np.where(kind == 0, rng.choice(w.n_nat, n, p=w.nat_p), base[org] + np.minimum(rank, kk - 1))
        fresh = kind == 2
        n_reg, n_fresh = int(k.sum()), int(fresh.sum())
        sup[fresh] = next_sup + n_reg + np.arange(n_fresh)
        self.local0, self.next_sup = next_sup, next_sup + n_reg + n_fresh
        self.pf = np.r_[np.zeros(n_reg, bool), rng.random(n_fresh) < 0.04]  # a few one-offs are people
        self.opening, self.status = _old_openings(rng, self.pf.size), np.zeros(self.pf.size, np.int64)
        a["kind"], a["sup"] = kind, sup

    def local(self, sup: Arr) -> Arr:
        out: Arr = np.clip(sup - self.local0, 0, self.pf.size - 1)
        return out

    def row_pf(self) -> Arr:
        out: Arr = (self.a["sup"] >= self.local0) & self.pf[self.local(self.a["sup"])]
        return out

    def party(self, sid: int) -> cat.Party:
        return self.w.party(sid, sid >= self.local0 and bool(self.pf[sid - self.local0]))

    def pick(self, mask: Arr, rate: float) -> Arr:
        """About ``rate * n`` rows not yet taken where ``mask`` holds; they become taken."""
        cand = np.flatnonzero(mask & ~self.taken)
        k = min(cand.size, int(self.rng.binomial(self.n, rate)))
        rows = np.sort(self.rng.choice(cand, k, replace=False)) if k else cand[:0]
        self.taken[rows] = True
        return rows

    def _plant_agency(self, o: int) -> None:
        a, rng, plan = self.a, self.rng, int(self.w.plan[o])
        rows = np.flatnonzero(a["org"] == o)
        spend = a["value"][rows] * (1 + a["ratio"][rows])
        if plan == CONC:  # the organ's first regular supplier takes its biggest contracts, 78-92 % of spend
            order = np.argsort(-spend, kind="stable")
            k = int(np.searchsorted(np.cumsum(spend[order]) / spend.sum(), rng.uniform(0.78, 0.92))) + 1
            a["sup"][rows[order[:k]]] = self.local0 + int(self.w.k_reg[self.o0 : o].sum())
            a["kind"][rows[order[:k]]] = 1
        elif plan == BENFORD:  # most values get a first digit 4-6, moved the shorter way in log terms
            rows = rows[rng.random(rows.size) < 0.65]
            v, e = a["value"][rows], 10.0 ** np.floor(np.log10(a["value"][rows]))
            up = rng.uniform(4.0, 7.0, rows.size) * e
            a["value"][rows] = np.where(np.abs(np.log(up / v)) < np.abs(np.log(up / 10 / v)), up, up / 10)
            a["ratio"][rows] = 0.0
        elif plan == YEAR_END:  # half the contracts were drawn in December; make it ≥ 35 % of spend
            dec = cat.month(a["day"][rows]) == 11
            late = np.flatnonzero(~dec)[np.argsort(-spend[~dec], kind="stable")]
            need = 0.35 * spend.sum() - spend[dec].sum()
            for r in rows[late[: int(np.searchsorted(np.cumsum(spend[late]), need)) + 1]] if need > 0 else []:
                a["day"][r] = rng.choice(self.cal.december[int(a["year"][r])])

    def _plant_contracts(self) -> None:
        a, rng, cal, free = self.a, self.rng, self.cal, np.ones(self.n, bool)
        self._plant_splitting()
        for r in self.pick(free, RATES["holiday"]):
            a["day"][r] = rng.choice(cal.holidays[int(a["year"][r])])
        one_off = (a["kind"] == 2) & ~self.row_pf()
        for key, lo, hi in (("new", 15, 365), ("new_near", 400, 501)):  # opened lo..hi days before signing
            rows = self.pick(one_off, RATES[key])
            self.opening[self.local(a["sup"][rows])] = a["day"][rows] - rng.integers(lo, hi, rows.size)
        rows = self.pick(one_off, RATES["inactive"])
        self.status[self.local(a["sup"][rows])] = rng.integers(1, len(STATUSES), rows.size)
        local_pj = (a["kind"] >= 1) & ~self.row_pf()  # organ-local suppliers: all their contracts are here
        for key in ("sanction", "expired", "fine"):
            for r in self.pick(local_pj, RATES[key]).tolist():
                d, t = int(a["day"][r]), cat.BARRING_SANCTIONS[int(rng.integers(len(cat.BARRING_SANCTIONS)))]
                if key == "sanction":  # in force at signing, a quarter open-ended
                    start, end = d - int(rng.integers(10, 700)), d + int(rng.integers(1, 1500))
                    end = -1 if rng.random() < 0.25 else end
                elif key == "expired":  # ended before signing
                    end = d - int(rng.integers(1, 400))
                    start = end - int(rng.integers(180, 1800))
                else:  # a fine in force at signing: does not bar contracting
                    start, end, t = d - int(rng.integers(10, 300)), d + int(rng.integers(30, 700)), cat.FINE_SANCTION
                self.sanctions.append((int(a["sup"][r]), start, end, t))
        rows = self.pick(cat.month(a["day"]) != 11, RATES["outlier"])
        a["value"][rows] = TYPICAL[a["cls"][rows]] * np.exp(rng.uniform(np.log(50), np.log(300), rows.size))
        a["ratio"][rows], a["outlier"][rows] = 0.0, True
        rows = self.pick(free, RATES["amend"])
        a["ratio"][rows] = rng.uniform(np.where(a["cls"][rows] == RENOVATION, 0.55, 0.30), 1.0)  # art. 125
        nice = ~self.taken & (rng.random(self.n) < 0.12)  # round amounts, as people write them
        e = 10.0 ** (np.floor(np.log10(a["value"][nice])) - 1)
        a["value"][nice] = np.round(a["value"][nice] / e) * e
        a["initial"] = np.round(a["value"], 2)
        a["final"] = np.round(a["initial"] * (1 + a["ratio"]), 2)
        rows = self.pick(free, RATES["dirty"])
        reason = rng.integers(1, len(DIRTY), rows.size)
        reason[(reason == 1) & self.row_pf()[rows]] = 2  # people have no CNPJ to spoil
        a["dirty"][rows] = reason
        neg, absurd = rows[reason == 3], rows[reason == 4]
        a["initial"][neg], a["final"][neg] = -a["initial"][neg], -a["final"][neg]
        a["initial"][absurd] = a["final"][absurd] = 2.1e13 * rng.integers(1, 5, absurd.size)

    def _plant_splitting(self) -> None:
        """Groups of 3-6 dispensas (same UG, class, year) each under the art. 75 II ceiling, sum over it;
        and near-miss groups of 3-4 whose sum stays under it."""
        a, rng = self.a, self.rng
        n_pos, n_near = rng.binomial(self.n, RATES["split"]), rng.binomial(self.n, RATES["split_near"])
        cells: set[tuple[int, int, int]] = set()
        for g in range(n_pos + n_near):
            near, cand = g >= n_pos, np.flatnonzero(~self.taken)
            k = int(rng.integers(3, 5 if near else 7))
            if cand.size == 0:
                return
            anchor = int(rng.choice(cand))
            same = np.flatnonzero((a["ug"] == a["ug"][anchor]) & ~self.taken)
            year, c = int(a["year"][anchor]), int(rng.choice(SPLIT_CLASSES))
            if same.size < k or (int(a["ug"][anchor]), c, year) in cells:
                continue
            cells.add((int(a["ug"][anchor]), c, year))
            rows, days = np.sort(rng.choice(same, k, replace=False)), self.cal.working[year]
            share = rng.uniform(0.75, 0.97) * rng.dirichlet(np.ones(k)) if near else rng.uniform(0.80, 0.995, k)
            a["value"][rows] = np.floor(CEIL_II[year - 2022] * share * 100) / 100
            a["day"][rows] = days[int(rng.integers(0, days.size - 45)) + np.sort(rng.choice(45, k, replace=False))]
            a["year"][rows], a["cls"][rows], a["mod"][rows], a["ratio"][rows] = year, c, DISPENSA, 0.0
            a["group"][rows] = g
            a["split"][rows], self.taken[rows] = not near, True

    def _calm_december(self) -> None:
        """Unplanned organs whose December spend tops 2.7x their mean month get their biggest unplanted
        December contracts moved earlier in the same year."""
        a, o0 = self.a, self.o0
        spend = np.where((a["dirty"] == 0) & (a["final"] > 0), a["final"], 0.0)
        dec = cat.month(a["day"]) == 11
        total = np.bincount(a["org"] - o0, weights=spend)
        december = np.bincount(a["org"] - o0, weights=spend * dec, minlength=total.size)
        for o in np.flatnonzero((december > 2.7 * total / 12) & (self.w.plan[o0 : o0 + total.size] == 0)):
            rows = np.flatnonzero((a["org"] == o + o0) & dec & ~self.taken)
            rows = rows[np.argsort(-spend[rows], kind="stable")]
            k = int(np.searchsorted(np.cumsum(spend[rows]), december[o] - 2.7 * total[o] / 12)) + 1
            for r in rows[:k].tolist():
                a["day"][r] = self.rng.choice(self.cal.earlier[int(a["year"][r])])

    def _fix_dispensa_cells(self) -> None:
        """Keep each (UG, class, year)'s unplanted dispensas under the ceiling in total: the excess, and any
        sharing a planted group's cell, become pregão."""
        a, y = self.a, self.a["year"] - 2022
        vmax = np.maximum(a["initial"], a["final"])
        cand = np.flatnonzero((a["mod"] == DISPENSA) & (vmax > 0) & (vmax < CEIL_I[y]))
        cell = (a["ug"][cand] * NC + a["cls"][cand]) * 4 + y[cand]
        grouped = a["group"][cand] >= 0
        with_group = np.isin(cell, cell[grouped]) & ~grouped
        rest = ~grouped & ~with_group
        order = np.lexsort((vmax[cand][rest], cell[rest]))
        c, v, rows = cell[rest][order], vmax[cand][rest][order], cand[rest][order]
        cum = np.cumsum(v)
        starts = np.flatnonzero(np.r_[True, c[1:] != c[:-1]])
        cum -= np.repeat(np.r_[0.0, cum[starts[1:] - 1]], np.diff(np.r_[starts, c.size]))
        a["mod"][np.r_[cand[with_group], rows[cum > CEIL_II[y[rows]]]]] = PREGAO

    def labels(self) -> tuple[dict[str, Arr], dict[str, Arr]]:
        """Row masks of contract flags, and masks over organs ``o0 ..`` of agency flags."""
        a, w, cal, clean = self.a, self.w, self.cal, self.a["dirty"] == 0
        sup, day, ini, fin = a["sup"], a["day"], a["initial"], a["final"]
        loc = sup >= self.local0
        opening = np.where(loc, self.opening[self.local(sup)], w.nat_open[np.minimum(sup, w.n_nat - 1)])
        status = np.where(loc, self.status[self.local(sup)], 0)
        barred, order = np.zeros(self.n, bool), np.argsort(sup, kind="stable")
        for s, start, end, t in self.sanctions:
            rows = order[np.searchsorted(sup[order], s) : np.searchsorted(sup[order], s, "right")]
            barred[rows[(t != cat.FINE_SANCTION) & (day[rows] >= start) & ((end < 0) | (day[rows] <= end))]] = True
        with np.errstate(divide="ignore", invalid="ignore"):
            amended = (ini > 0) & (fin / ini - 1 > 0.25)
        contract = {
            "price_outlier": a["outlier"],
            "contract_splitting": a["split"],
            "amendment_over_limit": amended,
            "sanctioned_supplier": barred,
            "new_supplier": ~self.row_pf() & ((day - opening < 365) | (status != 0)),
            "weekend_or_holiday_signature": cal.off[day - cal.day0],
        }
        n_org = int(a["org"][-1]) - self.o0 + 1 if self.n else 0
        m, mb = clean & (fin > 0), clean & (ini >= 1)
        org, spend = a["org"][m] - self.o0, fin[m]
        pairs, inv = np.unique(org * (1 << 32) + sup[m], return_inverse=True)
        top = np.zeros(n_org)
        np.maximum.at(top, pairs >> 32, np.bincount(inv, weights=spend))
        total, count = np.bincount(org, spend, n_org), np.bincount(org, minlength=n_org)
        december = np.bincount(org, spend * (cat.month(day[m]) == 11), n_org)
        digits = np.zeros((n_org, 10))
        np.add.at(digits, (a["org"][mb] - self.o0, _first_digit(ini[mb])), 1.0)
        n_b = digits.sum(axis=1)
        mad = np.abs(digits[:, 1:] / np.maximum(n_b, 1)[:, None] - BENFORD_P).mean(axis=1)
        plan = w.plan[self.o0 : self.o0 + n_org]
        agency = {
            "supplier_concentration": (count >= 10) & (top >= 0.70 * total),
            "benford_nonconformity": (plan == BENFORD) | ((n_b >= 300) & (mad > 0.015)),
            "year_end_rush": (plan == YEAR_END) | ((count >= 10) & (december > 3 * total / 12)),
        }
        return {k: v & clean for k, v in contract.items()}, agency


def _write_chunk(ch: _Chunk, fmt: Format, next_id: int, out: dict[str, IO[bytes]], counts: Counter[str]) -> int:
    """Serialise a chunk's contracts, labels, registry rows and sanctions. Returns the last id used."""
    a, w, rng, n = ch.a, ch.w, ch.rng, ch.n
    ids = (next_id + np.cumsum(rng.integers(1, 40, n))).tolist()
    _, first, inv = np.unique(a["org"] * 4 + a["year"] - 2022, return_index=True, return_inverse=True)
    seq = (np.arange(n) - first[inv] + 1).tolist()  # contract number within (organ, year)
    years = a["year"].tolist()
    starts = a["day"] + rng.integers(0, 16, n)
    ends = starts + rng.choice([90, 180, 365, 365, 730, 1095, 1825], n)
    situation = np.where(rng.random(n) < 0.02, 2, ends < 20_269)  # 20269 = 2025-06-30
    variant = 27 * (rng.random(n) < 0.3) + 9 * rng.choice(3, n, p=[0.75, 0.15, 0.10])
    variant += np.where(rng.random(n) < 0.45, rng.integers(1, 9, n), 0)
    process = [
        f"{p:05d}.{q:06d}/{y}-{c:02d}"
        for p, q, y, c in zip(
            rng.integers(10_000, 99_999, n).tolist(),
            rng.integers(0, 999_999, n).tolist(),
            years,
            rng.integers(0, 99, n).tolist(),
            strict=True,
        )
    ]
    for r in np.flatnonzero(rng.random(n) < 0.01).tolist():
        process[r] = "Sem informação"
    y, vmax = a["year"] - 2022, np.maximum(a["initial"], a["final"])
    item_i = ITEM_I[a["cls"]]  # dispensa by value: art. 75 I or II under the ceiling, else VIII (emergency)
    fund = np.where(
        a["mod"] != DISPENSA,
        a["mod"],
        np.select([item_i & (vmax < CEIL_I[y]), ~item_i & (vmax < CEIL_II[y])], [4, 1], 5),
    )
    signed, dirty, sups = _iso(a["day"]), a["dirty"].tolist(), a["sup"].tolist()
    parties = {s: ch.party(s) for s in set(sups)}
    docs = [parties[s].digits for s in sups]
    for r in np.flatnonzero(a["dirty"]).tolist():
        reason = DIRTY[dirty[r]]
        if reason == "bad_cnpj":
            docs[r] = cat.bad_check_digit(docs[r], sups[r])
        elif reason == "missing_date":
            signed[r] = "Sem informação"
        elif reason == "bad_date":
            signed[r] = f"31/02/{signed[r][:4]}" if r % 2 else f"{signed[r][:4]}-13-45"
    units = {u: w.unit(u) for u in set(a["ug"].tolist())}
    control = [f"{w.cnpj[o]}-2-{q:06d}/{yr}" for o, q, yr in zip(a["org"].tolist(), seq, years, strict=True)]
    rows = zip(
        ids,
        [f"{q:05d}/{yr}" for q, yr in zip(seq, years, strict=True)],
        [cat.OBJETOS[i] for i in (a["cls"] * (len(cat.OBJETOS) // NC) + variant).tolist()],
        process,
        a["mod"].tolist(),
        fund.tolist(),
        situation.tolist(),
        signed,
        _iso(starts),
        _iso(ends),
        _iso(a["day"] + rng.integers(1, 21, n)),
        a["initial"].tolist(),
        a["final"].tolist(),
        docs,
        sups,
        a["ug"].tolist(),
        control,
        seq,
        strict=True,
    )
    out["contracts"].write(cat.contract_lines(fmt, rows, units, parties))

    source_ids, organ_ids = (control, w.cnpj) if fmt == "pncp" else ([str(i) for i in ids], w.code)
    contract, agency = ch.labels()
    lines = [f"contract,{source_ids[r]},dirty:{DIRTY[dirty[r]]}" for r in np.flatnonzero(a["dirty"]).tolist()]
    for flag, mask in contract.items():
        lines += [f"contract,{source_ids[r]},{flag}" for r in np.flatnonzero(mask).tolist()]
    for flag, mask in agency.items():
        lines += [f"agency,{organ_ids[o + ch.o0]},{flag}" for o in np.flatnonzero(mask).tolist()]
    counts.update(line.rsplit(",", 1)[1] for line in lines)
    out["labels"].write("".join(line + "\n" for line in lines).encode())

    local = sorted(s for s in parties if s >= ch.local0 and not ch.pf[s - ch.local0])
    w.nat_used[[s for s in parties if s < w.n_nat]] = True
    idx = np.array(local, np.int64) - ch.local0
    _registry(
        out,
        [
            (parties[s], op, STATUSES[st])
            for s, op, st in zip(local, _iso(ch.opening[idx]), ch.status[idx].tolist(), strict=True)
        ],
    )
    counts["_suppliers"] += sum(1 for s in parties if s >= w.n_nat)
    counts["_registry"] += len(local)
    counts["_dirty"] += int(np.count_nonzero(a["dirty"]))
    _sanctions(out, counts, rng, [(st, en, t, ch.party(s)) for s, st, en, t in ch.sanctions])
    return int(ids[-1]) if n else next_id


def _registry(out: dict[str, IO[bytes]], rows: list[tuple[cat.Party, str, str]], bad: bool = False) -> None:
    text = "".join(
        f"{cat.bad_check_digit(p.digits, j) if bad else p.digits},{p.legal_name},{op},{st}\n"
        for j, (p, op, st) in enumerate(rows)
    )
    out["suppliers"].write(text.encode())


def _sanctions(
    out: dict[str, IO[bytes]],
    counts: Counter[str],
    rng: np.random.Generator,
    rows: list[tuple[int, int, str, cat.Party]],
) -> None:
    first = 100_001 + counts["_sanctions"]
    organs = rng.integers(len(cat.SANCTIONING_ORGANS), size=len(rows)).tolist()
    open_end = np.where(rng.random(len(rows)) < 0.7, "", "Sem informação").tolist()
    fines = (1000 * rng.integers(5, 500, len(rows))).tolist()
    out["ceis"].write(
        cat.ceis_lines(
            (first + i, st, en, t, p, o, oe, f)
            for i, ((st, en, t, p), o, oe, f) in enumerate(zip(rows, organs, open_end, fines, strict=True))
        )
    )
    counts["_sanctions"] += len(rows)


def _write_tail(w: _World, rng: np.random.Generator, out: dict[str, IO[bytes]], counts: Counter[str]) -> None:
    """National suppliers' registry rows, bad-CNPJ registry rows, sanctions of companies never seen."""
    used = np.flatnonzero(w.nat_used)
    _registry(
        out, [(w.party(s, False), op, "ATIVA") for s, op in zip(used.tolist(), _iso(w.nat_open[used]), strict=True)]
    )
    counts["_suppliers"] += used.size
    counts["_registry"] += used.size
    n_bad = max(3, counts["_registry"] // 1000)
    bad = [(cat.company(85_000_000 + j, w.salt), op, "ATIVA") for j, op in enumerate(_iso(_old_openings(rng, n_bad)))]
    _registry(out, bad, bad=True)
    out["labels"].write(
        "".join(
            f"supplier,{cat.bad_check_digit(p.digits, j)},dirty:bad_cnpj\n" for j, (p, _, _) in enumerate(bad)
        ).encode()
    )
    counts["dirty:bad_cnpj"] += n_bad
    n = max(5, int(w.size.sum()) // 2_000)
    starts = rng.integers(17_532, 20_089, n)  # 2018-01-01 .. 2024-12-31
    ends = np.where(rng.random(n) < 0.2, -1, starts + rng.integers(90, 1_800, n))
    kinds = (*cat.BARRING_SANCTIONS, cat.FINE_SANCTION)
    _sanctions(
        out,
        counts,
        rng,
        [
            (int(s), int(e), kinds[int(k)], cat.company(80_000_000 + j, w.salt))
            for j, (s, e, k) in enumerate(zip(starts, ends, rng.integers(0, len(kinds), n), strict=True))
        ],
    )


def generate(
    out: Path, contracts: int, seed: int, fmt: Format = "portal", progress: Callable[[int], None] | None = None
) -> GenerationSummary:
    """Write ``contracts`` synthetic contracts in ``fmt`` shape, with sanctions, registry and labels, into ``out``.

    Files (docs/formats.md): ``contracts.jsonl`` (Portal records), ``contracts.pncp.jsonl`` (PNCP records) or
    ``contracts.csv``; ``ceis.jsonl``; ``suppliers.csv``; ``labels.csv`` (``level,id,flag``: the contract's
    source id, the organ's SIAFI code — its CNPJ for PNCP, which has no SIAFI code — or, for
    ``supplier,<cnpj>,dirty:bad_cnpj``, a registry row's raw CNPJ); ``manifest.json``. The same seed gives
    byte-identical files, and the same contracts and labels in every format. Work streams in chunks of
    whole organs (~50,000 contracts); ``progress`` gets the number of contracts written since its last call.
    """
    if fmt not in CONTRACT_FILES:
        raise ValueError(f"unknown format {fmt!r}; expected portal, pncp or csv")
    if contracts < 0:
        raise ValueError("contracts must be >= 0")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    world, cal = _World(rng, contracts), cat.Calendar()
    names = {
        "contracts": CONTRACT_FILES[fmt],
        "ceis": "ceis.jsonl",
        "suppliers": "suppliers.csv",
        "labels": "labels.csv",
    }
    files = {k: out / v for k, v in names.items()}
    counts: Counter[str] = Counter()
    with ExitStack() as stack:
        fh: dict[str, IO[bytes]] = {k: stack.enter_context(p.open("wb")) for k, p in files.items()}
        if fmt == "csv":
            fh["contracts"].write((",".join(cat.CSV_COLUMNS) + "\n").encode())
        fh["suppliers"].write(b"cnpj,razao_social,data_abertura,situacao_cadastral\n")
        fh["labels"].write(b"level,id,flag\n")
        next_sup, next_id = world.n_nat, int(rng.integers(10_000_000, 20_000_000))
        for o0, o1 in world.chunks():
            chunk = _Chunk(world, cal, rng, o0, o1, next_sup)
            next_id, next_sup = _write_chunk(chunk, fmt, next_id, fh, counts), chunk.next_sup
            if progress is not None:
                progress(chunk.n)
        _write_tail(world, rng, fh, counts)
    label_counts = {k: v for k, v in sorted(counts.items()) if not k.startswith("_")}
    files["manifest"] = out / "manifest.json"
    manifest = {
        "seed": seed,
        "format": fmt,
        "contracts": contracts,
        "sanctions": counts["_sanctions"],
        "suppliers": counts["_suppliers"],
        "registry_rows": counts["_registry"],
        "dirty_rows": counts["_dirty"],
        "labels": label_counts,
        "files": [p.name for p in files.values()],
    }
    files["manifest"].write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return GenerationSummary(
        files=files,
        contracts=contracts,
        sanctions=counts["_sanctions"],
        suppliers=counts["_suppliers"],
        labels=sum(label_counts.values()),
        dirty_rows=counts["_dirty"],
        label_counts=label_counts,
    )
