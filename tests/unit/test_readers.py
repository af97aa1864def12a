"""Every reader with good, dirty and hostile input."""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cidadao.contracts.readers import Rejection, detect, read_rows
from cidadao.contracts.schema import CONTRACT_COLUMNS, SANCTION_COLUMNS, SUPPLIER_COLUMNS
from cidadao.errors import InputFormatError

MAX = 1e11
TEXT = st.characters(exclude_categories=("Cs",))  # JSON cannot carry lone surrogates
C = {name: i for i, name in enumerate(CONTRACT_COLUMNS)}


def portal(id_: Any = 1, **over: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "id": id_, "numero": "1/2024", "objeto": "Objeto: Aquisição de material de escritório - canetas",
        "numeroProcesso": "23000.1/2024", "fundamentoLegal": "Lei 14.133/2021", "situacaoContrato": "Ativo",
        "modalidadeCompra": "Pregão", "dataAssinatura": "2024-03-05", "dataInicioVigencia": "2024-03-06",
        "dataFimVigencia": "2025-03-05", "dataPublicacaoDOU": "Sem informação", "valorInicialCompra": 1000.5,
        "valorFinalCompra": 1200, "fornecedor": {"id": 9, "cnpjFormatado": "11.222.333/0001-81", "nome": "ACME",
        "razaoSocialReceita": "ACME LTDA"},
        "unidadeGestora": {"codigo": "150001", "nome": "UG", "orgaoVinculado": {"codigoSIAFI": "26000",
        "sigla": "MEC", "nome": "Ministério da Educação", "cnpj": "00.394.445/0001-01"},
        "orgaoMaximo": {"codigo": "26000", "sigla": "MEC", "nome": "MEC"}},
    }  # fmt: skip
    rec.update(over)
    return rec


def pncp(n: int = 1, **over: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "numeroControlePNCP": f"00394445000101-2-{n:06d}/2024", "objetoContrato": "Serviços de limpeza",
        "dataAssinatura": "2024-02-01", "dataVigenciaInicio": "2024-02-02", "dataVigenciaFim": "2025-02-01",
        "valorInicial": 5000, "valorGlobal": 5000, "valorAcumulado": 5000, "niFornecedor": "11222333000181",
        "tipoPessoa": "PJ", "nomeRazaoSocialFornecedor": "ACME LTDA",
        "orgaoEntidade": {"cnpj": "00394445000101", "razaoSocial": "MINISTERIO"},
        "unidadeOrgao": {"codigoUnidade": "150001", "nomeUnidade": "UG", "ufSigla": "DF", "municipioNome": "Brasília"},
        "tipoContrato": {"id": 1, "nome": "Contrato"}, "categoriaProcesso": {"id": 2, "nome": "Dispensa"},
    }  # fmt: skip
    rec.update(over)
    return rec


def ceis(id_: int = 55, **over: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "id": id_, "dataInicioSancao": "01/01/2023", "dataFimSancao": "Sem informação",
        "dataPublicacaoSancao": "02/01/2023",
        "tipoSancao": {"descricaoResumida": "Inidoneidade", "descricaoPortal": "Declaração de Inidoneidade"},
        "orgaoSancionador": {"nome": "CGU", "siglaUf": "DF", "poder": "Executivo", "esfera": "Federal"},
        "sancionado": {"nome": "ACME", "codigoFormatado": "11.222.333/0001-81"},
        "pessoa": {"cnpjFormatado": "11.222.333/0001-81", "razaoSocialReceita": "ACME LTDA"},
        "fundamentacao": [{"codigo": "1", "descricao": "art. 156"}], "valorMulta": "350.000,00",
    }  # fmt: skip
    rec.update(over)
    return rec


def write_jsonl(path: Path, records: list[Any]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    return path


def rows_and_rejections(path: Path, **kw: Any) -> tuple[list[tuple[Any, ...]], list[Rejection]]:
    d = detect(path, **kw)
    out = list(read_rows(d, MAX))
    return [r for r in out if not isinstance(r, Rejection)], [r for r in out if isinstance(r, Rejection)]


def test_portal_good_record_maps_every_field(tmp_path: Path) -> None:
    rows, rej = rows_and_rejections(write_jsonl(tmp_path / "p.jsonl", [portal()]))
    assert rej == []
    (row,) = rows
    assert len(row) == len(CONTRACT_COLUMNS)
    assert row[C["source"]] == "portal" and row[C["source_id"]] == "1"
    assert row[C["objeto"]] == "Aquisição de material de escritório - canetas"
    assert row[C["object_class"]] == "material_escritorio"
    assert row[C["modalidade"]] == "pregao"
    assert row[C["signed_on"]] == date(2024, 3, 5) and row[C["published_on"]] is None
    assert (row[C["initial_value"]], row[C["final_value"]]) == (1000.5, 1200.0)
    assert (row[C["supplier_document"]], row[C["supplier_kind"]]) == ("11222333000181", "PJ")
    assert (row[C["orgao_codigo"]], row[C["ug_codigo"]], row[C["orgao_cnpj"]]) == ("26000", "150001", "00394445000101")
    assert orjson.loads(row[C["raw"]])["id"] == 1


def test_portal_page_as_json_array(tmp_path: Path) -> None:
    path = tmp_path / "page.json"
    path.write_bytes(orjson.dumps([portal(i) for i in range(1, 16)]))
    d = detect(path)
    assert (d.kind, d.fmt, d.layout) == ("contracts", "portal", "document")
    rows, rej = rows_and_rejections(path)
    assert len(rows) == 15 and rej == []


@pytest.mark.parametrize(
    ("over", "field", "reason"),
    [
        ({"fornecedor": {"cnpjFormatado": "11.222.333/0001-80"}}, "fornecedor.cnpjFormatado", "check digits"),
        ({"dataAssinatura": "Sem informação"}, "dataAssinatura", "missing signing date"),
        ({"dataAssinatura": "31/02/2024"}, "dataAssinatura", "unparseable date"),
        ({"dataFimVigencia": "2024-13-45"}, "dataFimVigencia", "unparseable date"),
        ({"valorInicialCompra": -1}, "valorInicialCompra", "negative"),
        ({"valorFinalCompra": 2.1e13}, "valorFinalCompra", "absurd"),
        ({"valorInicialCompra": "muito"}, "valorInicialCompra", "not a number"),
        ({"id": None}, "id", "missing"),
        ({"id": {"nested": 1}}, "id", "scalar"),
        ({"unidadeGestora": "Sem informação"}, "unidadeGestora.orgaoVinculado.codigoSIAFI", "missing organ"),
    ],
)
def test_portal_dirty_rows_are_rejected_with_field_and_reason(
    tmp_path: Path, over: dict[str, Any], field: str, reason: str
) -> None:
    path = write_jsonl(tmp_path / "p.jsonl", [portal(1), portal(2, **over), portal(3)])
    rows, rej = rows_and_rejections(path)
    assert [r[C["source_id"]] for r in rows] == ["1", "3"]
    (r,) = rej
    assert r.field == field and reason in r.reason
    assert r.record["line"] == 2
    assert r.source == str(path)


def test_portal_masked_cpf_keeps_the_contract_without_a_document(tmp_path: Path) -> None:
    rec = portal(fornecedor={"cpfFormatado": "***.982.247-**", "nome": "FULANO"})
    rows, rej = rows_and_rejections(write_jsonl(tmp_path / "p.jsonl", [rec]))
    assert rej == [] and rows[0][C["supplier_document"]] is None and rows[0][C["supplier_name"]] == "FULANO"


def test_hostile_jsonl_lines(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    good = orjson.dumps(portal(1))
    path.write_bytes(
        good + b"\n" + b"{not json\n" + b"[1,2]\n" + b'{"id": "x\\u0000y", "valorInicialCompra": 1}\n'
        + b"\n" + orjson.dumps(portal(2, objeto={"a": [1, 2]}, numero=[1])) + b"\n"
    )  # fmt: skip
    rows, rej = rows_and_rejections(path)
    assert [r[C["source_id"]] for r in rows] == ["1", "2"]
    assert rows[1][C["objeto"]] is None  # a non-text objeto is dropped, not stored as garbage
    assert [r.record["line"] for r in rej] == [2, 3, 4]
    assert "invalid JSON" in rej[0].reason and "JSON object" in rej[1].reason and "NUL" in rej[2].reason


def test_pncp_envelope_array_and_lines(tmp_path: Path) -> None:
    env = {"data": [pncp(1), pncp(2)], "totalRegistros": 2, "totalPaginas": 1, "numeroPagina": 1,
           "paginasRestantes": 0}  # fmt: skip
    (tmp_path / "env.json").write_bytes(orjson.dumps(env, option=orjson.OPT_INDENT_2))
    (tmp_path / "arr.json").write_bytes(orjson.dumps([pncp(1), pncp(2)]))
    write_jsonl(tmp_path / "lines.jsonl", [pncp(1), pncp(2)])
    for name in ("env.json", "arr.json", "lines.jsonl"):
        d = detect(tmp_path / name)
        assert (d.kind, d.fmt) == ("contracts", "pncp")
        rows, rej = rows_and_rejections(tmp_path / name)
        assert rej == [] and len(rows) == 2
        row = rows[0]
        assert row[C["orgao_codigo"]] == "00394445000101" and row[C["ug_codigo"]] == "00394445000101:150001"
        assert row[C["modalidade"]] == "dispensa" and row[C["uf"]] == "DF"


def test_pncp_dirty(tmp_path: Path) -> None:
    recs = [pncp(1, niFornecedor="11222333000180"), pncp(2, orgaoEntidade={"cnpj": "123"}), pncp(3, tipoPessoa="PE",
            niFornecedor="ABC-FOREIGN"), pncp(4, valorGlobal=-3)]  # fmt: skip
    rows, rej = rows_and_rejections(write_jsonl(tmp_path / "p.jsonl", recs))
    assert [r[C["source_id"]] for r in rows] == [pncp(3)["numeroControlePNCP"]]
    assert [r.field for r in rej] == ["niFornecedor", "orgaoEntidade.cnpj", "valorGlobal"]


CSV_HEADER = (
    "id,numero,objeto,numero_processo,fundamento_legal,situacao,modalidade,data_assinatura,data_inicio_vigencia,"
    "data_fim_vigencia,data_publicacao,valor_inicial,valor_final,fornecedor_documento,fornecedor_nome,ug_codigo,"
    "ug_nome,orgao_codigo,orgao_sigla,orgao_nome"
)


def test_contracts_csv_good_dirty_and_short_rows(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text(
        CSV_HEADER + "\n"
        + 'c1,1/2024,"Objeto: Manutenção de veículos, frota",p1,Lei,Ativo,Dispensa de Licitação,05/03/2024,,,,'
          '"1.234,56",1234.56,11.222.333/0001-81,ACME,150001,UG,26000,MEC,Ministério\n'
        + "c2,,x,,,,,2024-03-05,,,,-1,,11222333000181,,,,26000,,\n"
        + "c3,too,few\n"
        + "c4,,x,,,,,2024-03-05,,,,10,,,,,,,,\n",
        encoding="utf-8",
    )  # fmt: skip
    d = detect(path)
    assert (d.kind, d.fmt, d.layout) == ("contracts", "csv", "csv")
    rows, rej = rows_and_rejections(path)
    assert [r[C["source_id"]] for r in rows] == ["c1"]
    assert rows[0][C["initial_value"]] == 1234.56 and rows[0][C["modalidade"]] == "dispensa"
    assert rows[0][C["signed_on"]] == date(2024, 3, 5)
    assert [(r.record["line"], r.field) for r in rej] == [(3, "valor_inicial"), (4, ""), (5, "orgao_codigo")]


def test_contracts_csv_semicolon_and_latin1(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    line = "c1;;Aquisição de café;;;;Pregão;2024-01-10;;;;100,50;;11222333000181;Café Ltda;;;26000;;Educação\n"
    path.write_bytes((CSV_HEADER.replace(",", ";") + "\n" + line).encode("cp1252"))
    rows, rej = rows_and_rejections(path)
    assert rej == [] and rows[0][C["objeto"]] == "Aquisição de café" and rows[0][C["initial_value"]] == 100.5


def test_sanctions(tmp_path: Path) -> None:
    recs = [ceis(1), ceis(2, tipoSancao={"descricaoResumida": "Multa"}), ceis(3, pessoa={"cnpjFormatado": "1"},
            sancionado={}), ceis(4, dataFimSancao="01/01/2020"), ceis(5, dataInicioSancao="99/99/2020")]  # fmt: skip
    path = tmp_path / "cnep-2024.json"
    path.write_bytes(orjson.dumps(recs))
    d = detect(path)
    assert (d.kind, d.register) == ("sanctions", "CNEP")
    rows, rej = rows_and_rejections(path)
    s = {name: i for i, name in enumerate(SANCTION_COLUMNS)}
    assert [r[s["source_id"]] for r in rows] == ["1", "2"]
    assert rows[0][s["bars_contracting"]] is True and rows[1][s["bars_contracting"]] is False
    assert rows[0][s["ends_on"]] is None and rows[0][s["starts_on"]] == date(2023, 1, 1)
    assert rows[0][s["fine_value"]] == 350000.0 and rows[0][s["document"]] == "11222333000181"
    assert [r.field for r in rej] == ["pessoa.cnpjFormatado", "dataFimSancao", "dataInicioSancao"]


def test_supplier_registry(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text(
        "cnpj,razao_social,data_abertura,situacao_cadastral\n11.222.333/0001-81,ACME,2020-01-02,ativa\n"
        "11.222.333/0001-80,BAD,2020-01-02,ATIVA\n52998224725,PERSON,2020-01-02,ATIVA\n"
        "11222333000181,ACME,02/30/2020,ATIVA\n11222333000181,ACME,2020-01-02,FECHADA\n",
        encoding="utf-8",
    )
    rows, rej = rows_and_rejections(path)
    assert rows == [(2, "11222333000181", "PJ", "ACME", date(2020, 1, 2), "ATIVA")]
    assert len(rows[0]) == len(SUPPLIER_COLUMNS)
    assert [(r.record["line"], r.field) for r in rej] == [
        (3, "cnpj"), (4, "cnpj"), (5, "data_abertura"), (6, "situacao_cadastral")
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"\x00\x01\x02binary", "binary"),
        (b"hello world\n", "not a recognised file"),
        (b'{"foo": 1}\n', "unknown kind"),
        (b"[1, 2, 3]", "no JSON object records"),
        (b"[{broken", "not valid JSON"),
        (b'"just a string"', "not a recognised file"),
    ],
)
def test_files_that_are_not_what_they_claim_get_one_clear_error(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "f.json"
    path.write_bytes(content)
    with pytest.raises(InputFormatError) as info:
        detect(path)
    assert message in str(info.value) and str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_kind_and_format_are_checked_against_the_content(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "p.jsonl", [portal()])
    with pytest.raises(InputFormatError, match="holds contracts, not sanctions"):
        detect(path, kind="sanctions")
    with pytest.raises(InputFormatError, match="holds portal contracts, not pncp"):
        detect(path, fmt="pncp")
    with pytest.raises(InputFormatError, match="no such file"):
        detect(tmp_path / "missing.json")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=2048))
def test_random_bytes_never_crash_a_reader(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "random.bin"
        path.write_bytes(data)
        try:
            d = detect(path)
        except InputFormatError:
            return
        for item in read_rows(d, MAX):
            assert isinstance(item, Rejection | tuple)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.dictionaries(
            st.sampled_from(list(portal().keys())),
            st.one_of(
                st.none(),
                st.text(TEXT, max_size=20),
                st.integers(-(2**63), 2**63 - 1),
                st.floats(),
                st.booleans(),
                st.dictionaries(st.text(TEXT, max_size=5), st.text(TEXT, max_size=5), max_size=3),
            ),
        ),
        min_size=1,
        max_size=5,
    )
)
def test_random_portal_shaped_records_are_stored_or_rejected(records: list[dict[str, Any]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "r.jsonl"
        write_jsonl(path, [{**portal(), **r} for r in records])
        rows, rej = rows_and_rejections(path)
        assert len(rows) + len(rej) == len(records)
        for row in rows:
            assert row[C["signed_on"]] is not None and row[C["orgao_codigo"]]
