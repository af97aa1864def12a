"""The synthetic-data generator: determinism, file shapes, realism, and labels that the data bears out."""

from __future__ import annotations

import csv
import json
import math
import statistics
from collections import Counter, defaultdict
from datetime import date
from pathlib import Path
from typing import Literal

import holidays
import orjson
import pytest

from cidadao.contracts.identifiers import is_valid_cnpj, is_valid_cpf
from cidadao.contracts.synthetic import GenerationSummary, generate

CEILING_II = {2022: 54_020.41, 2023: 57_208.33, 2024: 59_906.02, 2025: 62_725.59}
BENFORD = [math.log10(1 + 1 / d) for d in range(1, 10)]
HOLIDAYS = holidays.Brazil(years=range(2022, 2027))
PORTAL_FIELDS = {
    "id",
    "numero",
    "objeto",
    "numeroProcesso",
    "fundamentoLegal",
    "situacaoContrato",
    "modalidadeCompra",
    "dataAssinatura",
    "dataInicioVigencia",
    "dataFimVigencia",
    "dataPublicacaoDOU",
    "valorInicialCompra",
    "valorFinalCompra",
    "fornecedor",
    "unidadeGestora",
}
PNCP_FIELDS = {
    "numeroControlePNCP",
    "objetoContrato",
    "dataAssinatura",
    "dataVigenciaInicio",
    "dataVigenciaFim",
    "valorInicial",
    "valorGlobal",
    "valorAcumulado",
    "niFornecedor",
    "tipoPessoa",
    "nomeRazaoSocialFornecedor",
    "orgaoEntidade",
    "unidadeOrgao",
    "tipoContrato",
    "categoriaProcesso",
}
CSV_COLUMNS = [
    "id",
    "numero",
    "objeto",
    "numero_processo",
    "fundamento_legal",
    "situacao",
    "modalidade",
    "data_assinatura",
    "data_inicio_vigencia",
    "data_fim_vigencia",
    "data_publicacao",
    "valor_inicial",
    "valor_final",
    "fornecedor_documento",
    "fornecedor_nome",
    "ug_codigo",
    "ug_nome",
    "orgao_codigo",
    "orgao_sigla",
    "orgao_nome",
]


class Row:
    """One contract in source-neutral terms."""

    def __init__(
        self,
        sid: str,
        signed: str,
        initial: float,
        final: float,
        doc: str,
        ug: str,
        organ: str,
        modality: str,
        objeto: str,
    ) -> None:
        self.sid, self.signed, self.initial, self.final = sid, signed, initial, final
        self.doc, self.ug, self.organ, self.modality, self.objeto = doc, ug, organ, modality, objeto

    @property
    def day(self) -> date:
        return date.fromisoformat(self.signed)

    @property
    def cls(self) -> str:
        text = self.objeto.removeprefix("Objeto: ").removeprefix("OBJETO: ").removeprefix("objeto: ")
        return text.split(" - ")[0].lower()

    @property
    def digits(self) -> str:
        return "".join(c for c in self.doc if c.isdigit())


def read_rows(out: Path, fmt: str) -> list[Row]:
    if fmt == "portal":
        recs = [orjson.loads(line) for line in (out / "contracts.jsonl").read_bytes().splitlines()]
        for r in recs:
            assert r.keys() >= PORTAL_FIELDS
            assert isinstance(r["id"], int)
            assert {"id", "nome", "razaoSocialReceita"} <= r["fornecedor"].keys()
            assert {"codigo", "nome", "orgaoVinculado", "orgaoMaximo"} <= r["unidadeGestora"].keys()
            assert {"codigoSIAFI", "sigla", "nome", "cnpj"} <= r["unidadeGestora"]["orgaoVinculado"].keys()
            assert {"codigo", "sigla", "nome"} <= r["unidadeGestora"]["orgaoMaximo"].keys()
        return [
            Row(
                str(r["id"]),
                r["dataAssinatura"],
                r["valorInicialCompra"],
                r["valorFinalCompra"],
                r["fornecedor"].get("cnpjFormatado") or r["fornecedor"]["cpfFormatado"],
                r["unidadeGestora"]["codigo"],
                r["unidadeGestora"]["orgaoVinculado"]["codigoSIAFI"],
                r["modalidadeCompra"],
                r["objeto"],
            )
            for r in recs
        ]
    if fmt == "pncp":
        recs = [orjson.loads(line) for line in (out / "contracts.pncp.jsonl").read_bytes().splitlines()]
        for r in recs:
            assert r.keys() >= PNCP_FIELDS
            assert r["tipoPessoa"] == ("PJ" if len(r["niFornecedor"]) == 14 else "PF")
            assert is_valid_cnpj(r["orgaoEntidade"]["cnpj"]) and len(r["orgaoEntidade"]["cnpj"]) == 14
        return [
            Row(
                r["numeroControlePNCP"],
                r["dataAssinatura"],
                r["valorInicial"],
                r["valorGlobal"],
                r["niFornecedor"],
                r["unidadeOrgao"]["codigoUnidade"],
                r["orgaoEntidade"]["cnpj"],
                r["categoriaProcesso"]["nome"],
                r["objetoContrato"],
            )
            for r in recs
        ]
    with (out / "contracts.csv").open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        assert reader.fieldnames == CSV_COLUMNS
        return [
            Row(
                r["id"],
                r["data_assinatura"],
                float(r["valor_inicial"]),
                float(r["valor_final"]),
                r["fornecedor_documento"],
                r["ug_codigo"],
                r["orgao_codigo"],
                r["modalidade"],
                r["objeto"],
            )
            for r in reader
        ]


def read_labels(out: Path) -> list[tuple[str, str, str]]:
    with (out / "labels.csv").open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        assert next(reader) == ["level", "id", "flag"]
        return [(a, b, c) for a, b, c in reader]


def dmy(text: str) -> date | None:
    if not text or text == "Sem informação":
        return None
    d, m, y = text.split("/")
    return date(int(y), int(m), int(d))


class Data:
    def __init__(self, out: Path, fmt: str, summary: GenerationSummary) -> None:
        self.out, self.fmt, self.summary = out, fmt, summary
        self.rows = read_rows(out, fmt)
        self.labels = read_labels(out)
        self.flags: dict[str, set[str]] = defaultdict(set)  # contract id -> flags
        self.agency: dict[str, set[str]] = defaultdict(set)
        for level, ident, flag in self.labels:
            if level != "supplier":
                (self.flags if level == "contract" else self.agency)[ident].add(flag)
        self.dirty = {i for i, f in self.flags.items() if any(x.startswith("dirty:") for x in f)}
        self.clean = [r for r in self.rows if r.sid not in self.dirty]

    def labelled(self, flag: str) -> set[str]:
        return {i for i, f in self.flags.items() if flag in f}


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Data:
    out = tmp_path_factory.mktemp("big")
    calls: list[int] = []
    summary = generate(out, 20_000, 11, "portal", progress=calls.append)
    assert sum(calls) == 20_000
    return Data(out, "portal", summary)


@pytest.fixture(scope="module", params=["portal", "pncp", "csv"])
def small(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Data:
    out = tmp_path_factory.mktemp(request.param)
    return Data(out, request.param, generate(out, 4_000, 3, request.param))


def test_same_seed_gives_identical_bytes_and_other_seeds_differ(tmp_path: Path) -> None:
    a, b, c = (generate(tmp_path / name, 3_000, seed) for name, seed in (("a", 5), ("b", 5), ("c", 6)))
    for name, path in a.files.items():
        assert path.read_bytes() == b.files[name].read_bytes(), name
    assert a.files["contracts"].read_bytes() != c.files["contracts"].read_bytes()
    assert a.files["labels"].read_bytes() != c.files["labels"].read_bytes()


def test_formats_describe_the_same_contracts(tmp_path: Path) -> None:
    counts = []
    formats: tuple[Literal["portal", "pncp", "csv"], ...] = ("portal", "pncp", "csv")
    for fmt in formats:
        summary = generate(tmp_path / fmt, 2_000, 9, fmt)
        counts.append(summary.label_counts)
        assert (
            summary.files["contracts"].name
            == {"portal": "contracts.jsonl", "pncp": "contracts.pncp.jsonl", "csv": "contracts.csv"}[fmt]
        )
    assert counts[0] == counts[1] == counts[2]


def test_files_counts_and_manifest(small: Data) -> None:
    s, out = small.summary, small.out
    assert {p.name for p in s.files.values()} == {
        s.files["contracts"].name,
        "ceis.jsonl",
        "suppliers.csv",
        "labels.csv",
        "manifest.json",
    }
    assert len(small.rows) == s.contracts == 4_000
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["seed"] == 3 and manifest["format"] == small.fmt and manifest["contracts"] == 4_000
    assert manifest["labels"] == s.label_counts == dict(Counter(f for _, _, f in small.labels))
    assert sorted(manifest["files"]) == sorted(p.name for p in s.files.values())
    sanctions = (out / "ceis.jsonl").read_bytes().splitlines()
    assert manifest["sanctions"] == s.sanctions == len(sanctions) > 0
    assert s.dirty_rows == len(small.dirty) and s.labels == len(small.labels)
    assert len({r.digits for r in small.clean if len(r.digits) == 14}) <= s.suppliers <= len(small.rows)


def test_ids_unique_labels_reference_existing_rows(small: Data) -> None:
    ids = [r.sid for r in small.rows]
    assert len(set(ids)) == len(ids)
    organs = {r.organ for r in small.rows}
    with (small.out / "suppliers.csv").open(encoding="utf-8", newline="") as fh:
        registry = {row["cnpj"] for row in csv.DictReader(fh)}
    for level, ident, flag in small.labels:
        assert level in {"contract", "agency", "supplier"}
        if level == "contract":
            assert ident in set(ids)
        elif level == "agency":
            assert ident in organs and not flag.startswith("dirty:")
        else:
            assert flag == "dirty:bad_cnpj" and ident in registry and not is_valid_cnpj(ident)
    if small.fmt == "pncp":
        assert all(len(o) == 14 for o in organs)
        assert all(r.sid.startswith(f"{r.organ}-2-") and r.sid.endswith(f"/{r.signed[:4]}") for r in small.clean)
    else:
        assert all(len(o) == 5 and o.isdigit() for o in organs)


def test_documents_valid_unless_dirty(small: Data) -> None:
    for r in small.rows:
        if "dirty:bad_cnpj" in small.flags[r.sid]:
            assert not is_valid_cnpj(r.doc)
        elif "*" in r.doc:
            assert small.fmt == "portal" and len(r.doc) == 14  # the Portal masks CPFs
        elif len(r.digits) == 14:
            assert is_valid_cnpj(r.doc)
        else:
            assert is_valid_cpf(r.doc)
    assert sum("*" in r.doc or len(r.digits) == 11 for r in small.rows) > 0  # a few people supply too
    with (small.out / "suppliers.csv").open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        assert reader.fieldnames == ["cnpj", "razao_social", "data_abertura", "situacao_cadastral"]
        rows = list(reader)
    bad = {i for lv, i, _ in small.labels if lv == "supplier"}
    assert len(bad) >= 3
    assert all(is_valid_cnpj(r["cnpj"]) == (r["cnpj"] not in bad) for r in rows)
    registry = {r["cnpj"] for r in rows}
    assert {r.digits for r in small.clean if len(r.digits) == 14} <= registry
    status = Counter(r["situacao_cadastral"] for r in rows)
    assert status["ATIVA"] / len(rows) > 0.97


def test_dirty_rows(small: Data) -> None:
    assert 0.002 < len(small.dirty) / len(small.rows) < 0.01
    reasons: Counter[str] = Counter()
    for r in small.rows:
        flags = small.flags[r.sid]
        dirty = [f for f in flags if f.startswith("dirty:")]
        if not dirty:
            assert r.day.year in range(2022, 2026) and 0 < r.initial < 1e12
            continue
        assert len(flags) == 1, flags  # a dirty row carries no red-flag label
        reason = dirty[0].removeprefix("dirty:")
        reasons[reason] += 1
        if reason == "missing_date":
            assert r.signed == "Sem informação"
        elif reason == "bad_date":
            with pytest.raises(ValueError):
                date.fromisoformat(r.signed)
            assert r.signed in {f"31/02/{y}" for y in range(2022, 2026)} or r.signed.endswith("-13-45")
        elif reason == "negative_value":
            assert r.initial < 0
        elif reason == "absurd_value":
            assert r.initial >= 1e12
    assert set(reasons) <= {"bad_cnpj", "missing_date", "negative_value", "absurd_value", "bad_date"}


def test_distribution_is_realistic(big: Data) -> None:
    rows, n = big.clean, len(big.clean)
    mods = Counter(r.modality for r in big.rows)
    for text, share in (
        ("Pregão", 0.48),
        ("Dispensa de Licitação", 0.35),
        ("Inexigibilidade de Licitação", 0.12),
        ("Concorrência", 0.05),
    ):
        assert abs(mods[text] / len(big.rows) - share) < 0.04, (text, mods)
    logs = [math.log(r.initial) for r in rows]
    assert 10.8 < statistics.fmean(logs) < 12.2
    assert 1.9 < statistics.pstdev(logs) < 2.7
    weekday = Counter(r.day.weekday() for r in rows)
    assert 0.015 < weekday[5] / n < 0.05 and 0.01 < weekday[6] / n < 0.035
    months = Counter(r.day.month for r in rows)
    assert 0.10 < months[12] / n < 0.16
    assert all(0.03 < months[m] / n < 0.10 for m in range(1, 12))
    assert {r.day.year for r in rows} == {2022, 2023, 2024, 2025}
    per_supplier = Counter(r.digits for r in rows)
    singles = sum(1 for c in per_supplier.values() if c == 1) / len(per_supplier)
    assert 0.62 < singles < 0.80
    per_organ = Counter(r.organ for r in big.rows)
    sizes = sorted(per_organ.values())
    assert 25 <= statistics.median(sizes) <= 90 and 150 <= sizes[int(0.9 * len(sizes))] <= 700
    organs_of = defaultdict(set)
    for r in rows:
        organs_of[r.digits].add(r.organ)
    assert max(len(o) for o in organs_of.values()) >= 20  # some suppliers win across many organs
    classes = Counter(r.cls for r in rows)
    assert 30 <= len(classes) <= 50
    assert any(r.objeto.startswith("Objeto: ") for r in rows) and any(r.objeto.isupper() for r in rows)


def test_contract_flags_follow_from_the_data(big: Data) -> None:
    sanctions: dict[str, list[tuple[date, date | None]]] = defaultdict(list)
    for line in (big.out / "ceis.jsonl").read_bytes().splitlines():
        s = orjson.loads(line)
        if s["tipoSancao"]["descricaoResumida"] != "Multa":
            digits = "".join(c for c in s["pessoa"]["cnpjFormatado"] if c.isdigit())
            start = dmy(s["dataInicioSancao"])
            assert start is not None
            sanctions[digits].append((start, dmy(s["dataFimSancao"])))
    with (big.out / "suppliers.csv").open(encoding="utf-8", newline="") as fh:
        registry = {r["cnpj"]: r for r in csv.DictReader(fh)}
    for r in big.clean:
        flags = big.flags[r.sid]
        assert ("amendment_over_limit" in flags) == (r.final / r.initial - 1 > 0.25)
        off = r.day.weekday() >= 5 or r.day in HOLIDAYS
        assert ("weekend_or_holiday_signature" in flags) == off
        barred = any(s <= r.day and (e is None or r.day <= e) for s, e in sanctions.get(r.digits, []))
        assert ("sanctioned_supplier" in flags) == barred
        if len(r.digits) == 14:
            reg = registry[r.digits]
            new = (r.day - date.fromisoformat(reg["data_abertura"])).days < 365
            assert ("new_supplier" in flags) == (new or reg["situacao_cadastral"] != "ATIVA")
    for flag in ("price_outlier", "contract_splitting", "amendment_over_limit", "sanctioned_supplier", "new_supplier"):
        assert 0 < len(big.labelled(flag)) < 0.01 * len(big.rows), flag
    assert 0.03 < len(big.labelled("weekend_or_holiday_signature")) / len(big.rows) < 0.08
    near_miss = [r for r in big.clean if 0.20 <= r.final / r.initial - 1 <= 0.25]
    assert len(near_miss) > 100


def test_price_outliers_stand_out_from_their_class(big: Data) -> None:
    by_class = defaultdict(list)
    for r in big.clean:
        by_class[r.cls].append(math.log(r.initial))
    stats = {}
    for c, logs in by_class.items():
        med = statistics.median(logs)
        stats[c] = (med, 1.4826 * statistics.median(abs(x - med) for x in logs))
    outliers = big.labelled("price_outlier")
    for r in big.clean:
        med, mad = stats[r.cls]
        z = (math.log(r.initial) - med) / mad
        assert (z > 3.5) == (r.sid in outliers), (r.sid, z)


def test_splitting_groups_cross_the_ceiling_and_nothing_else_does(big: Data) -> None:
    cells = defaultdict(list)
    for r in big.clean:
        if r.modality == "Dispensa de Licitação" and 0 < max(r.initial, r.final) < CEILING_II[r.day.year]:
            cells[(r.ug, r.cls, r.day.year)].append(r)
    split = big.labelled("contract_splitting")
    planted = 0
    for (_, _, year), rows in cells.items():
        marked = [r for r in rows if r.sid in split]
        if marked:
            planted += 1
            assert len(marked) == len(rows) and 3 <= len(rows) <= 6
            assert sum(r.initial for r in rows) > CEILING_II[year]
        else:
            assert sum(max(r.initial, r.final) for r in rows) <= CEILING_II[year]
    assert planted >= 3
    assert {r.sid for rows in cells.values() for r in rows} >= split


def test_agency_flags_follow_from_the_data(big: Data) -> None:
    by_organ = defaultdict(list)
    for r in big.clean:
        by_organ[r.organ].append(r)
    expected: dict[str, set[str]] = defaultdict(set)
    for organ, rows in by_organ.items():
        spend = [r for r in rows if r.final > 0]
        total = sum(r.final for r in spend)
        per_supplier: Counter[str] = Counter()
        for r in spend:
            per_supplier[r.digits] += round(r.final * 100)
        if len(spend) >= 10 and max(per_supplier.values()) / 100 >= 0.70 * total:
            expected[organ].add("supplier_concentration")
        if len(spend) >= 10 and sum(r.final for r in spend if r.day.month == 12) > 3 * total / 12:
            expected[organ].add("year_end_rush")
        digits = Counter(str(int(r.initial))[0] for r in rows if r.initial >= 1)
        count = sum(digits.values())
        if count >= 300:
            mad = statistics.fmean(abs(digits[str(d)] / count - BENFORD[d - 1]) for d in range(1, 10))
            if mad > 0.015:
                expected[organ].add("benford_nonconformity")
    assert dict(big.agency) == dict(expected)
    found = Counter(f for flags in expected.values() for f in flags)
    assert found["supplier_concentration"] >= 1 and found["year_end_rush"] >= 1
    assert found["benford_nonconformity"] >= 1


def test_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="format"):
        generate(tmp_path, 10, 1, "xml")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="contracts"):
        generate(tmp_path, -1, 1)


def test_zero_and_tiny_runs(tmp_path: Path) -> None:
    s = generate(tmp_path / "zero", 0, 1)
    assert s.contracts == 0 and s.files["contracts"].read_bytes() == b""
    s = generate(tmp_path / "tiny", 50, 1, "csv")
    assert len(read_rows(tmp_path / "tiny", "csv")) == 50
