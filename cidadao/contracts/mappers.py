"""Map one source record (Portal, PNCP, CSV, CEIS/CNEP, supplier registry) to a canonical row.

Each mapper returns a tuple in the column order of :mod:`cidadao.contracts.schema`, or a
:class:`Problem` (field, reason) when the record is rejected. Mappers never raise on bad data.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any, Final, NamedTuple

import orjson

from cidadao.contracts.fields import (
    Invalid,
    normalize_modality,
    object_class,
    parse_date,
    parse_money,
    strip_objeto,
    text_or_none,
)
from cidadao.contracts.identifiers import is_valid_cnpj, normalize_document

__all__ = [
    "Problem",
    "csv_contract",
    "pncp_contract",
    "portal_contract",
    "registry_supplier",
    "sanction",
]

Row = tuple[Any, ...]
_REGISTRY_STATUS: Final = frozenset({"ATIVA", "BAIXADA", "SUSPENSA", "INAPTA", "NULA"})
_MAX_ID_LENGTH: Final = 120


class Problem(NamedTuple):
    """Why a record was rejected: the source field and the reason."""

    field: str
    reason: str


def _obj(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _source_id(value: Any, field: str) -> str | Problem:
    if value is None or isinstance(value, bool | dict | list):
        return Problem(field, "missing or not a scalar identifier")
    s = str(value).strip()
    if not s or s.lower() == "sem informação":
        return Problem(field, "missing identifier")
    if len(s) > _MAX_ID_LENGTH:
        return Problem(field, f"identifier longer than {_MAX_ID_LENGTH} characters")
    return s


def _code(value: Any) -> str | None:
    if value is None or isinstance(value, bool | dict | list):
        return None
    return text_or_none(value)


def _dates(rec: Mapping[str, Any], fields: tuple[str, ...]) -> list[date | None] | Problem:
    out: list[date | None] = []
    for f in fields:
        d = parse_date(rec.get(f))
        if isinstance(d, Invalid):
            return Problem(f, d)
        out.append(d)
    return out


def _supplier(raw_doc: Any, field: str) -> tuple[str | None, str | None] | Problem:
    """(document, kind) of a supplier; masked or absent documents give (None, None)."""
    doc = text_or_none(raw_doc) if isinstance(raw_doc, str | int) else None
    if doc is None:
        return (None, None)
    parsed = normalize_document(str(doc))
    if isinstance(parsed, tuple):
        return parsed
    if parsed.startswith("masked"):
        return (None, None)
    return Problem(field, parsed)


def _contract_row(
    ord_: int, source: str, source_id: str, rec: Mapping[str, Any], *, objeto_raw: Any, modality_raw: Any,
    dates: list[date | None], values: tuple[Any, Any], value_fields: tuple[str, str], max_value: float,
    supplier: tuple[str | None, str | None], supplier_name: Any, supplier_legal: Any,
    ug: tuple[str | None, Any], orgao: tuple[str | None, Any, Any, Any], orgao_max: tuple[Any, Any, Any],
    place: tuple[Any, Any], raw: str,
) -> Row | Problem:  # fmt: skip
    money = []
    for v, f in zip(values, value_fields, strict=True):
        m = parse_money(v, max_value)
        if isinstance(m, Invalid):
            return Problem(f, m)
        money.append(m)
    objeto = strip_objeto(objeto_raw) if isinstance(objeto_raw, str) else None
    modal_text = text_or_none(modality_raw) if isinstance(modality_raw, str) else None
    return (
        ord_, source, source_id, _code(rec.get("numero")), objeto, object_class(objeto) if objeto else None,
        _code(rec.get("numeroProcesso")), text_or_none(rec.get("fundamentoLegal")) if isinstance(
            rec.get("fundamentoLegal"), str) else None,
        text_or_none(rec.get("situacaoContrato")) if isinstance(rec.get("situacaoContrato"), str) else None,
        normalize_modality(modal_text) if modal_text else None, modal_text,
        dates[0], dates[1], dates[2], dates[3], money[0], money[1],
        supplier[0], supplier[1], _text(supplier_name), _text(supplier_legal),
        ug[0], _text(ug[1]), orgao[0], _text(orgao[1]), _text(orgao[2]), orgao[3],
        _code(orgao_max[0]), _text(orgao_max[1]), _text(orgao_max[2]), _text(place[0]), _text(place[1]), raw,
    )  # fmt: skip


def _text(value: Any) -> str | None:
    return text_or_none(value) if isinstance(value, str | int | float) and not isinstance(value, bool) else None


def portal_contract(rec: Mapping[str, Any], ord_: int, raw: str, max_value: float) -> Row | Problem:
    """A Portal da Transparência ``/contratos`` record."""
    sid = _source_id(rec.get("id"), "id")
    if isinstance(sid, Problem):
        return sid
    dates = _dates(rec, ("dataAssinatura", "dataInicioVigencia", "dataFimVigencia", "dataPublicacaoDOU"))
    if isinstance(dates, Problem):
        return dates
    if dates[0] is None:
        return Problem("dataAssinatura", "missing signing date")
    forn = _obj(rec.get("fornecedor"))
    doc_field = "fornecedor.cnpjFormatado" if forn.get("cnpjFormatado") else "fornecedor.cpfFormatado"
    supplier = _supplier(forn.get("cnpjFormatado") or forn.get("cpfFormatado"), doc_field)
    if isinstance(supplier, Problem):
        return supplier
    ug = _obj(rec.get("unidadeGestora"))
    org = _obj(ug.get("orgaoVinculado"))
    orgao = _code(org.get("codigoSIAFI"))
    if orgao is None:
        return Problem("unidadeGestora.orgaoVinculado.codigoSIAFI", "missing organ (SIAFI) code")
    omax = _obj(ug.get("orgaoMaximo"))
    org_cnpj = _text(org.get("cnpj"))
    org_cnpj_digits = None
    if org_cnpj:
        parsed = normalize_document(org_cnpj)
        org_cnpj_digits = parsed[0] if isinstance(parsed, tuple) else None
    return _contract_row(
        ord_, "portal", sid, rec, objeto_raw=rec.get("objeto"), modality_raw=rec.get("modalidadeCompra"),
        dates=dates, values=(rec.get("valorInicialCompra"), rec.get("valorFinalCompra")),
        value_fields=("valorInicialCompra", "valorFinalCompra"), max_value=max_value, supplier=supplier,
        supplier_name=forn.get("nome"), supplier_legal=forn.get("razaoSocialReceita"),
        ug=(_code(ug.get("codigo")), ug.get("nome")),
        orgao=(orgao, org.get("sigla"), org.get("nome"), org_cnpj_digits),
        orgao_max=(omax.get("codigo"), omax.get("sigla"), omax.get("nome")), place=(None, None), raw=raw,
    )  # fmt: skip


def pncp_contract(rec: Mapping[str, Any], ord_: int, raw: str, max_value: float) -> Row | Problem:
    """A PNCP ``/contratos`` record. PNCP organs are keyed by their CNPJ (PNCP has no SIAFI code)."""
    sid = _source_id(rec.get("numeroControlePNCP"), "numeroControlePNCP")
    if isinstance(sid, Problem):
        return sid
    dates = _dates(rec, ("dataAssinatura", "dataVigenciaInicio", "dataVigenciaFim", "dataPublicacaoPncp"))
    if isinstance(dates, Problem):
        return dates
    if dates[0] is None:
        return Problem("dataAssinatura", "missing signing date")
    if rec.get("tipoPessoa") == "PE":  # foreign supplier: no Brazilian document to check
        supplier: tuple[str | None, str | None] | Problem = (None, None)
    else:
        supplier = _supplier(rec.get("niFornecedor"), "niFornecedor")
    if isinstance(supplier, Problem):
        return supplier
    org = _obj(rec.get("orgaoEntidade"))
    org_cnpj = _text(org.get("cnpj"))
    if org_cnpj is None or not is_valid_cnpj(org_cnpj):
        return Problem("orgaoEntidade.cnpj", "missing or invalid organ CNPJ")
    org_digits = "".join(ch for ch in org_cnpj if ch.isdigit())
    unit = _obj(rec.get("unidadeOrgao"))
    unit_code = _code(unit.get("codigoUnidade"))
    modality = rec.get("modalidadeNome") or _obj(rec.get("categoriaProcesso")).get("nome")
    return _contract_row(
        ord_, "pncp", sid, {"numero": rec.get("numeroContratoEmpenho"), "numeroProcesso": rec.get("processo")},
        objeto_raw=rec.get("objetoContrato"), modality_raw=modality, dates=dates,
        values=(rec.get("valorInicial"), rec.get("valorGlobal")), value_fields=("valorInicial", "valorGlobal"),
        max_value=max_value, supplier=supplier, supplier_name=rec.get("nomeRazaoSocialFornecedor"),
        supplier_legal=rec.get("nomeRazaoSocialFornecedor"),
        ug=(f"{org_digits}:{unit_code}" if unit_code else None, unit.get("nomeUnidade")),
        orgao=(org_digits, None, org.get("razaoSocial"), org_digits), orgao_max=(None, None, None),
        place=(unit.get("ufSigla"), unit.get("municipioNome")), raw=raw,
    )  # fmt: skip


def csv_contract(rec: Mapping[str, Any], ord_: int, raw: str, max_value: float) -> Row | Problem:
    """A row of the contracts CSV (columns in docs/formats.md)."""
    sid = _source_id(rec.get("id"), "id")
    if isinstance(sid, Problem):
        return sid
    dates = _dates(rec, ("data_assinatura", "data_inicio_vigencia", "data_fim_vigencia", "data_publicacao"))
    if isinstance(dates, Problem):
        return dates
    if dates[0] is None:
        return Problem("data_assinatura", "missing signing date")
    supplier = _supplier(rec.get("fornecedor_documento"), "fornecedor_documento")
    if isinstance(supplier, Problem):
        return supplier
    orgao = _code(rec.get("orgao_codigo"))
    if orgao is None:
        return Problem("orgao_codigo", "missing organ code")
    mapped = {"numero": rec.get("numero"), "numeroProcesso": rec.get("numero_processo"),
              "fundamentoLegal": rec.get("fundamento_legal"), "situacaoContrato": rec.get("situacao")}  # fmt: skip
    return _contract_row(
        ord_, "csv", sid, mapped, objeto_raw=rec.get("objeto"), modality_raw=rec.get("modalidade"), dates=dates,
        values=(rec.get("valor_inicial"), rec.get("valor_final")), value_fields=("valor_inicial", "valor_final"),
        max_value=max_value, supplier=supplier, supplier_name=rec.get("fornecedor_nome"), supplier_legal=None,
        ug=(_code(rec.get("ug_codigo")), rec.get("ug_nome")),
        orgao=(orgao, rec.get("orgao_sigla"), rec.get("orgao_nome"), None), orgao_max=(None, None, None),
        place=(None, None), raw=raw,
    )  # fmt: skip


def sanction(rec: Mapping[str, Any], ord_: int, raw: str, register: str, max_value: float) -> Row | Problem:
    """A CEIS/CNEP record. Fines (``Multa``) are stored as not barring contracting."""
    sid = _source_id(rec.get("id"), "id")
    if isinstance(sid, Problem):
        return sid
    pessoa = _obj(rec.get("pessoa"))
    sancionado = _obj(rec.get("sancionado"))
    raw_doc = pessoa.get("cnpjFormatado") or pessoa.get("cpfFormatado") or sancionado.get("codigoFormatado")
    doc = _supplier(raw_doc, "pessoa.cnpjFormatado")
    if isinstance(doc, Problem):
        return doc
    if doc[0] is None:
        return Problem("pessoa.cnpjFormatado", "missing or masked sanctioned document")
    dates = _dates(rec, ("dataInicioSancao", "dataFimSancao", "dataPublicacaoSancao"))
    if isinstance(dates, Problem):
        return dates
    if dates[0] is not None and dates[1] is not None and dates[1] < dates[0]:
        return Problem("dataFimSancao", "sanction ends before it starts")
    tipo = _obj(rec.get("tipoSancao"))
    sanction_type = _text(tipo.get("descricaoResumida")) or _text(tipo.get("descricaoPortal"))
    bars = sanction_type is None or "multa" not in sanction_type.lower()
    fine = parse_money(rec.get("valorMulta"), max_value)
    if isinstance(fine, Invalid):
        return Problem("valorMulta", fine)
    body = _obj(rec.get("orgaoSancionador"))
    basis = rec.get("fundamentacao")
    return (
        ord_, register, sid, doc[0], _text(pessoa.get("razaoSocialReceita")) or _text(sancionado.get("nome")),
        sanction_type, _text(tipo.get("descricaoPortal")), bars, dates[0], dates[1], dates[2],
        _text(body.get("nome")), _text(body.get("siglaUf")), fine,
        orjson.dumps(basis).decode() if isinstance(basis, list) else None, raw,
    )  # fmt: skip


def registry_supplier(rec: Mapping[str, Any], ord_: int) -> Row | Problem:
    """A row of the supplier registry CSV (``cnpj, razao_social, data_abertura, situacao_cadastral``)."""
    raw_doc = text_or_none(rec.get("cnpj"))
    if raw_doc is None:
        return Problem("cnpj", "missing CNPJ")
    parsed = normalize_document(raw_doc)
    if not isinstance(parsed, tuple):
        return Problem("cnpj", parsed)
    if parsed[1] != "PJ":
        return Problem("cnpj", "the registry lists companies: a CNPJ has 14 digits")
    opened = parse_date(rec.get("data_abertura"))
    if isinstance(opened, Invalid):
        return Problem("data_abertura", opened)
    status = text_or_none(rec.get("situacao_cadastral"))
    if status is not None:
        status = status.upper()
        if status not in _REGISTRY_STATUS:
            return Problem("situacao_cadastral", f"unknown status {status[:30]!r}; expected one of "
                           + ", ".join(sorted(_REGISTRY_STATUS)))  # fmt: skip
    return (ord_, parsed[0], "PJ", text_or_none(rec.get("razao_social")), opened, status)
