"""Tables and record shapes for the synthetic-data generator (:mod:`cidadao.contracts.synthetic`).

Object classes with their typical prices, organs and places, names, sanction types, the calendar, and
the functions that turn generated values into Portal, PNCP, CSV and CEIS records. Randomness comes only
from the generator passed in (``Calendar.draw``); everything else is plain data and pure functions.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any, Final, NamedTuple

import holidays
import numpy as np
import numpy.typing as npt
import orjson

from cidadao.contracts.identifiers import cnpj_check_digits, cpf_check_digits, format_cnpj

__all__ = [
    "ACTIVITIES",
    "BARRING_SANCTIONS",
    "CEILING_I",
    "CEILING_II",
    "CEIS_GROUNDS",
    "CLASSES",
    "COMPANY_SUFFIXES",
    "CSV_COLUMNS",
    "DETAILS",
    "FINE_SANCTION",
    "FIRST_NAMES",
    "FUNDAMENTOS",
    "MINISTRIES",
    "MODALITIES",
    "MONTH_WEIGHTS",
    "OBJETOS",
    "ORGAN_KINDS",
    "PLACES",
    "SANCTIONING_ORGANS",
    "SURNAMES",
    "UG_KINDS",
    "Calendar",
    "ObjectClass",
    "Party",
    "Unit",
    "bad_check_digit",
    "ceis_lines",
    "company",
    "contract_lines",
    "month",
    "person",
]


class ObjectClass(NamedTuple):
    """One kind of purchase: its key, canonical ``objeto`` text, typical price (BRL) and art. 75 item."""

    key: str
    text: str
    typical: float
    item: str  # "I" (works, engineering, vehicle maintenance) or "II" (other goods and services)


CLASSES: Final[tuple[ObjectClass, ...]] = (
    ObjectClass("cafe_agua", "Aquisição de café e água mineral", 1_200, "II"),
    ObjectClass("material_escritorio", "Aquisição de material de escritório", 1_500, "II"),
    ObjectClass("dedetizacao", "Serviços de dedetização e controle de pragas", 1_900, "II"),
    ObjectClass("material_limpeza", "Aquisição de material de limpeza e higiene", 2_500, "II"),
    ObjectClass("livros", "Aquisição de livros e periódicos", 3_200, "II"),
    ObjectClass("grafica", "Serviços gráficos e de impressão", 4_000, "II"),
    ObjectClass("capacitacao", "Serviços de capacitação e treinamento", 5_100, "II"),
    ObjectClass("transporte_mudanca", "Serviços de transporte e mudança", 6_600, "II"),
    ObjectClass("material_construcao", "Aquisição de material de construção", 8_400, "II"),
    ObjectClass("uniformes", "Aquisição de uniformes e EPI", 11_000, "II"),
    ObjectClass("seguros", "Contratação de seguros", 14_000, "II"),
    ObjectClass("generos_alimenticios", "Aquisição de gêneros alimentícios", 17_000, "II"),
    ObjectClass("manutencao_ar", "Manutenção de aparelhos de ar-condicionado", 22_000, "II"),
    ObjectClass("mobiliario", "Aquisição de mobiliário", 28_000, "II"),
    ObjectClass("manutencao_veiculos", "Manutenção de veículos", 36_000, "I"),
    ObjectClass("manutencao_elevadores", "Manutenção de elevadores", 46_000, "II"),
    ObjectClass("material_hospitalar", "Aquisição de material médico-hospitalar", 58_000, "II"),
    ObjectClass("eventos", "Organização de eventos", 74_000, "II"),
    ObjectClass("exames", "Serviços de exames laboratoriais", 94_000, "II"),
    ObjectClass("medicamentos", "Aquisição de medicamentos", 120_000, "II"),
    ObjectClass("agua_esgoto", "Fornecimento de água e esgoto", 150_000, "II"),
    ObjectClass("equip_informatica", "Aquisição de equipamentos de informática", 200_000, "II"),
    ObjectClass("telefonia", "Serviços de telefonia e dados", 250_000, "II"),
    ObjectClass("equip_laboratorio", "Aquisição de equipamentos de laboratório", 320_000, "II"),
    ObjectClass("combustiveis", "Fornecimento de combustíveis", 400_000, "II"),
    ObjectClass("consultoria", "Serviços de consultoria técnica", 520_000, "II"),
    ObjectClass("licencas_software", "Aquisição de licenças de software", 660_000, "II"),
    ObjectClass("manutencao_predial", "Serviços de manutenção predial", 840_000, "I"),
    ObjectClass("obras_reforma", "Obras de reforma de edificação", 1_100_000, "I"),
    ObjectClass("projetos_engenharia", "Elaboração de projetos de engenharia", 1_400_000, "I"),
    ObjectClass("locacao_veiculos", "Locação de veículos", 1_700_000, "II"),
    ObjectClass("locacao_imovel", "Locação de imóvel", 2_200_000, "II"),
    ObjectClass("aquisicao_veiculos", "Aquisição de veículos", 2_800_000, "II"),
    ObjectClass("energia", "Fornecimento de energia elétrica", 3_600_000, "II"),
    ObjectClass("limpeza_conservacao", "Serviços de limpeza e conservação", 4_600_000, "II"),
    ObjectClass("passagens", "Agenciamento de passagens aéreas", 5_800_000, "II"),
    ObjectClass("vigilancia", "Serviços de vigilância patrimonial", 7_400_000, "II"),
    ObjectClass("apoio_administrativo", "Serviços de apoio administrativo terceirizado", 9_500_000, "II"),
    ObjectClass("desenvolvimento_sistemas", "Serviços de desenvolvimento de sistemas", 12_000_000, "II"),
    ObjectClass("publicidade", "Serviços de publicidade institucional", 15_000_000, "II"),
    ObjectClass("pavimentacao", "Obras de pavimentação", 20_000_000, "I"),
    ObjectClass("obras_construcao", "Obras de construção de edificação", 25_000_000, "I"),
)

DETAILS: Final[tuple[str, ...]] = (
    "conforme termo de referência",
    "para atender às necessidades da unidade",
    "exercício corrente",
    "lote único",
    "com fornecimento de materiais",
    "por demanda",
    "sistema de registro de preços",
    "em caráter continuado",
)

# Portal ``modalidadeCompra`` text, PNCP ``categoriaProcesso`` id, ``fundamentoLegal`` (Lei 14.133/2021).
MODALITIES: Final[tuple[tuple[str, int], ...]] = (
    ("Pregão", 6),
    ("Dispensa de Licitação", 8),
    ("Inexigibilidade de Licitação", 9),
    ("Concorrência", 4),
)
FUNDAMENTOS: Final[tuple[str, ...]] = (
    "Lei 14.133/2021, art. 28, I",
    "Lei 14.133/2021, art. 75, II",
    "Lei 14.133/2021, art. 74",
    "Lei 14.133/2021, art. 28, II",
    "Lei 14.133/2021, art. 75, I",
    "Lei 14.133/2021, art. 75, VIII",
)

# Art. 75 dispensa ceilings by fiscal year (Decretos 10.922/2021, 11.317/2022, 11.871/2023, 12.343/2024).
CEILING_I: Final[dict[int, float]] = {2022: 108_040.82, 2023: 114_416.65, 2024: 119_812.02, 2025: 125_451.15}
CEILING_II: Final[dict[int, float]] = {2022: 54_020.41, 2023: 57_208.33, 2024: 59_906.02, 2025: 62_725.59}

# Share of the year's contracts signed in each month (January .. December); December ~12.5 %.
MONTH_WEIGHTS: Final[tuple[float, ...]] = (
    0.050,
    0.065,
    0.080,
    0.080,
    0.085,
    0.085,
    0.080,
    0.085,
    0.085,
    0.090,
    0.090,
    0.125,
)

# Órgãos máximos: SIAFI code, sigla, name.
MINISTRIES: Final[tuple[tuple[str, str, str], ...]] = (
    ("20000", "PR", "Presidência da República"),
    ("22000", "MAPA", "Ministério da Agricultura e Pecuária"),
    ("24000", "MCTI", "Ministério da Ciência, Tecnologia e Inovação"),
    ("25000", "MF", "Ministério da Fazenda"),
    ("26000", "MEC", "Ministério da Educação"),
    ("30000", "MJSP", "Ministério da Justiça e Segurança Pública"),
    ("32000", "MME", "Ministério de Minas e Energia"),
    ("33000", "MPS", "Ministério da Previdência Social"),
    ("35000", "MRE", "Ministério das Relações Exteriores"),
    ("36000", "MS", "Ministério da Saúde"),
    ("39000", "MT", "Ministério dos Transportes"),
    ("40000", "MTE", "Ministério do Trabalho e Emprego"),
    ("41000", "MCOM", "Ministério das Comunicações"),
    ("42000", "MINC", "Ministério da Cultura"),
    ("44000", "MMA", "Ministério do Meio Ambiente e Mudança do Clima"),
    ("52000", "MD", "Ministério da Defesa"),
    ("53000", "MIDR", "Ministério da Integração e do Desenvolvimento Regional"),
    ("54000", "MTUR", "Ministério do Turismo"),
)

# Kinds of organ (name prefix, sigla prefix), picked per ministry by index modulo the list.
ORGAN_KINDS: Final[tuple[tuple[str, str], ...]] = (
    ("Universidade Federal de", "UF"),
    ("Instituto Federal de", "IF"),
    ("Superintendência Regional em", "SR"),
    ("Hospital Universitário de", "HU"),
    ("Fundação Nacional em", "FN"),
    ("Agência Regional de", "AR"),
    ("Comando Regional de", "CR"),
    ("Secretaria Regional de", "SE"),
    ("Instituto Nacional em", "IN"),
    ("Delegacia Federal em", "DF"),
)

# Places: name, UF, municipality used as the PNCP ``municipioNome``.
PLACES: Final[tuple[tuple[str, str, str], ...]] = (
    ("Minas Gerais", "MG", "Belo Horizonte"),
    ("São Paulo", "SP", "São Paulo"),
    ("Rio de Janeiro", "RJ", "Rio de Janeiro"),
    ("Bahia", "BA", "Salvador"),
    ("Pernambuco", "PE", "Recife"),
    ("Ceará", "CE", "Fortaleza"),
    ("Pará", "PA", "Belém"),
    ("Amazonas", "AM", "Manaus"),
    ("Goiás", "GO", "Goiânia"),
    ("Paraná", "PR", "Curitiba"),
    ("Santa Catarina", "SC", "Florianópolis"),
    ("Rio Grande do Sul", "RS", "Porto Alegre"),
    ("Espírito Santo", "ES", "Vitória"),
    ("Mato Grosso", "MT", "Cuiabá"),
    ("Mato Grosso do Sul", "MS", "Campo Grande"),
    ("Maranhão", "MA", "São Luís"),
    ("Piauí", "PI", "Teresina"),
    ("Paraíba", "PB", "João Pessoa"),
    ("Rio Grande do Norte", "RN", "Natal"),
    ("Alagoas", "AL", "Maceió"),
    ("Sergipe", "SE", "Aracaju"),
    ("Tocantins", "TO", "Palmas"),
    ("Rondônia", "RO", "Porto Velho"),
    ("Acre", "AC", "Rio Branco"),
    ("Roraima", "RR", "Boa Vista"),
    ("Amapá", "AP", "Macapá"),
    ("Brasília", "DF", "Brasília"),
    ("Campinas", "SP", "Campinas"),
    ("Juiz de Fora", "MG", "Juiz de Fora"),
    ("Uberlândia", "MG", "Uberlândia"),
    ("Londrina", "PR", "Londrina"),
    ("Pelotas", "RS", "Pelotas"),
    ("Santa Maria", "RS", "Santa Maria"),
    ("Campina Grande", "PB", "Campina Grande"),
    ("Feira de Santana", "BA", "Feira de Santana"),
    ("Petrolina", "PE", "Petrolina"),
    ("Sobral", "CE", "Sobral"),
    ("Santarém", "PA", "Santarém"),
    ("Dourados", "MS", "Dourados"),
    ("Viçosa", "MG", "Viçosa"),
)

UG_KINDS: Final[tuple[str, ...]] = (
    "Coordenação-Geral de Logística",
    "Reitoria",
    "Superintendência de Administração",
    "Diretoria de Orçamento e Finanças",
    "Unidade Descentralizada",
    "Campus Avançado",
    "Coordenação de Compras e Contratos",
)

SURNAMES: Final[tuple[str, ...]] = (
    "Silva",
    "Santos",
    "Oliveira",
    "Souza",
    "Rodrigues",
    "Ferreira",
    "Alves",
    "Pereira",
    "Lima",
    "Gomes",
    "Costa",
    "Ribeiro",
    "Martins",
    "Carvalho",
    "Almeida",
    "Lopes",
    "Soares",
    "Fernandes",
    "Vieira",
    "Barbosa",
    "Rocha",
    "Dias",
    "Nascimento",
    "Andrade",
    "Moreira",
    "Nunes",
    "Marques",
    "Machado",
    "Mendes",
    "Freitas",
    "Cardoso",
    "Ramos",
    "Gonçalves",
    "Santana",
    "Teixeira",
    "Araújo",
)
FIRST_NAMES: Final[tuple[str, ...]] = (
    "Maria",
    "José",
    "Ana",
    "João",
    "Antônio",
    "Francisca",
    "Carlos",
    "Paulo",
    "Adriana",
    "Lucas",
    "Juliana",
    "Marcos",
    "Patrícia",
    "Rafael",
    "Fernanda",
    "Pedro",
    "Aline",
    "Luiz",
    "Camila",
    "Bruno",
)
ACTIVITIES: Final[tuple[str, ...]] = (
    "Comércio e Serviços",
    "Distribuidora",
    "Engenharia",
    "Construções",
    "Tecnologia",
    "Serviços Gerais",
    "Suprimentos",
    "Materiais",
    "Soluções",
    "Consultoria",
    "Informática",
    "Alimentos",
    "Papelaria",
    "Transportes",
    "Médica",
    "Hospitalar",
    "Equipamentos",
    "Empreendimentos",
    "Locações",
    "Segurança",
)
COMPANY_SUFFIXES: Final[tuple[str, ...]] = ("Ltda", "Ltda", "Ltda", "EIRELI", "S.A.", "ME", "EPP")

BARRING_SANCTIONS: Final[tuple[str, ...]] = (
    "Impedimento/proibição de contratar com prazo determinado",
    "Inidoneidade",
    "Suspensão",
)
FINE_SANCTION: Final[str] = "Multa"
CEIS_GROUNDS: Final[dict[str, tuple[str, str]]] = {
    "Impedimento/proibição de contratar com prazo determinado": ("156-III", "Lei 14.133/2021, art. 156, III"),
    "Inidoneidade": ("156-IV", "Lei 14.133/2021, art. 156, IV"),
    "Suspensão": ("87-III", "Lei 8.666/1993, art. 87, III"),
    "Multa": ("156-II", "Lei 14.133/2021, art. 156, II"),
}
SANCTIONING_ORGANS: Final[tuple[tuple[str, str, str, str], ...]] = (
    ("Controladoria-Geral da União", "DF", "Executivo", "Federal"),
    ("Tribunal de Contas da União", "DF", "Legislativo", "Federal"),
    ("Ministério da Saúde", "DF", "Executivo", "Federal"),
    ("Ministério da Educação", "DF", "Executivo", "Federal"),
    ("Comando do Exército", "DF", "Executivo", "Federal"),
    ("Secretaria de Estado da Fazenda", "SP", "Executivo", "Estadual"),
    ("Prefeitura Municipal de Recife", "PE", "Executivo", "Municipal"),
)

CSV_COLUMNS: Final[tuple[str, ...]] = (
    "id", "numero", "objeto", "numero_processo", "fundamento_legal", "situacao", "modalidade", "data_assinatura",
    "data_inicio_vigencia", "data_fim_vigencia", "data_publicacao", "valor_inicial", "valor_final",
    "fornecedor_documento", "fornecedor_nome", "ug_codigo", "ug_nome", "orgao_codigo", "orgao_sigla", "orgao_nome",
)  # fmt: skip
SITUATIONS: Final[tuple[str, ...]] = ("Ativo", "Encerrado", "Rescindido")


def _objetos() -> tuple[str, ...]:
    out = []
    for c in CLASSES:
        for prefix in ("", "Objeto: "):
            for case in range(3):
                for d in ("", *DETAILS):
                    s = f"{prefix}{c.text}{' - ' + d if d else ''}"
                    out.append(s.upper() if case == 1 else s.lower() if case == 2 else s)
    return tuple(out)


# Surface variants of each class's ``objeto``: class ``c`` owns OBJETOS[c * V : (c + 1) * V], V = 54, indexed by
# 27 * prefix ("Objeto: ") + 9 * case (as is, upper, lower) + detail (0 = none, 1..8 = DETAILS).
OBJETOS: Final[tuple[str, ...]] = _objetos()


def month(days: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """Month index (0 = January) of days counted since 1970-01-01."""
    out: npt.NDArray[Any] = days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64) % 12
    return out


class Calendar:
    """Days 2022-01-01 .. early 2026 (counted since 1970): weekends, national holidays, working days."""

    def __init__(self) -> None:
        self.day0 = int(np.datetime64("2022-01-01", "D").astype(np.int64))
        days = np.arange(self.day0, self.day0 + 1_520)
        hol = np.array(sorted(d.toordinal() - 719_163 for d in holidays.Brazil(years=range(2022, 2027))))
        self.off = ((days + 3) % 7 >= 5) | np.isin(days, hol)  # 1970-01-01 was a Thursday
        nxt, j = np.empty(days.size, np.int64), days.size - 1
        for i in range(days.size - 1, -1, -1):
            j = i if not self.off[i] else j
            nxt[i] = days[j]
        self.next_working = nxt
        year = days.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970
        self.working = {y: days[(year == y) & ~self.off] for y in range(2022, 2026)}
        self.december = {y: d[month(d) == 11] for y, d in self.working.items()}
        self.earlier = {y: d[month(d) != 11] for y, d in self.working.items()}
        self.holidays = {y: hol[(hol >= days[year == y][0]) & (hol <= days[year == y][-1])] for y in self.working}

    def draw(self, rng: np.random.Generator, year: npt.NDArray[Any], mon: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """A signing day in each (year, month): Saturday 3 %, Sunday 2 %, else a working day."""
        ym = (year - 1970) * 12 + mon
        first = ym.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)
        length = (ym + 1).astype("datetime64[M]").astype("datetime64[D]").astype(np.int64) - first
        u = rng.random(year.size)
        weekday = np.where(u < 0.03, 5, np.where(u < 0.05, 6, np.floor((u - 0.05) / 0.95 * 5))).astype(np.int64)
        d1 = (weekday - (first + 3) % 7) % 7
        day: npt.NDArray[Any] = (
            first + d1 + 7 * np.floor(rng.random(year.size) * ((length - 1 - d1) // 7 + 1)).astype(np.int64)
        )
        working = weekday < 5
        day[working] = self.next_working[day[working] - self.day0]  # a holiday moves to the next working day
        return day


class Party(NamedTuple):
    """A supplier: document digits (CNPJ 14 or CPF 11), display name, registry (upper-case) name."""

    digits: str
    name: str
    legal_name: str


class Unit(NamedTuple):
    """A unidade gestora with its organ (órgão vinculado) and ministry (órgão máximo)."""

    code: str
    name: str
    organ_code: str
    organ_sigla: str
    organ_name: str
    organ_cnpj: str
    ministry: tuple[str, str, str]
    uf: str
    city: str


def _hash(sid: int, salt: int) -> int:
    return (sid * 2_654_435_761 + salt) % 4_294_967_296


def company(sid: int, salt: int) -> Party:
    """Company number ``sid``: a CNPJ unique per id below 90 million (an affine bijection of the root)."""
    h = _hash(sid, salt)
    base = f"{10_000_000 + (sid * 48_271 + salt) % 90_000_000:08d}{'0002' if h % 13 == 0 else '0001'}"
    first = SURNAMES[h % len(SURNAMES)]
    owners = f"{first} & {SURNAMES[(h >> 16) % len(SURNAMES)]}" if (h >> 14) & 1 else first
    name = f"{owners} {ACTIVITIES[(h >> 6) % len(ACTIVITIES)]} {COMPANY_SUFFIXES[(h >> 11) % len(COMPANY_SUFFIXES)]}"
    return Party(base + cnpj_check_digits(base), name, name.upper())


def person(sid: int, salt: int) -> Party:
    """Person number ``sid`` (pessoa física): a CPF unique per id below 900 million."""
    h = _hash(sid, salt)
    base = f"{100_000_000 + (sid * 48_271 + salt) % 900_000_000:09d}"
    name = f"{FIRST_NAMES[h % len(FIRST_NAMES)]} {SURNAMES[(h >> 5) % len(SURNAMES)]} {SURNAMES[(h >> 11) % 36]}"
    return Party(base + cpf_check_digits(base), name, name.upper())


def bad_check_digit(digits: str, h: int) -> str:
    """The same document with a wrong last check digit."""
    return digits[:-1] + str((int(digits[-1]) + 1 + h % 9) % 10)


def _document(digits: str, masked: bool) -> str:
    if len(digits) == 14:
        return format_cnpj(digits)
    if masked:  # the Portal masks CPFs
        return f"***.{digits[3:6]}.{digits[6:9]}-**"
    return f"{digits[:3]}.{digits[3:6]}.{digits[6:9]}-{digits[9:]}"


def contract_lines(
    fmt: str, rows: Iterable[tuple[Any, ...]], units: dict[int, Unit], parties: dict[int, Party]
) -> bytes:
    """Serialise contracts: Portal or PNCP JSON Lines, or CSV rows (no header).

    Each row: id, numero, objeto, processo, modality, fundamento, situation, signed, start, end, published,
    initial, final, document digits (possibly corrupted), supplier id, UG index, PNCP control number, seq.
    """
    buf: list[bytes] = []
    if fmt == "portal":
        ugs = {
            u: {
                "codigo": x.code,
                "nome": x.name,
                "orgaoVinculado": {
                    "codigoSIAFI": x.organ_code,
                    "sigla": x.organ_sigla,
                    "nome": x.organ_name,
                    "cnpj": x.organ_cnpj,
                },
                "orgaoMaximo": dict(zip(("codigo", "sigla", "nome"), x.ministry, strict=True)),
            }
            for u, x in units.items()
        }
        suppliers: dict[tuple[int, str], dict[str, Any]] = {}
        for i, num, obj, pr, md, fd, si, sg, st, en, pb, vi, vf, doc, s, u, _, _ in rows:
            f = suppliers.get((s, doc))
            if f is None:
                key = "cnpjFormatado" if len(doc) == 14 else "cpfFormatado"
                f = suppliers[s, doc] = {
                    "id": s + 1,
                    key: _document(doc, True),
                    "nome": parties[s].name,
                    "razaoSocialReceita": parties[s].legal_name,
                }
            buf.append(
                orjson.dumps(
                    {
                        "id": i,
                        "numero": num,
                        "objeto": obj,
                        "numeroProcesso": pr,
                        "fundamentoLegal": FUNDAMENTOS[fd],
                        "situacaoContrato": SITUATIONS[si],
                        "modalidadeCompra": MODALITIES[md][0],
                        "dataAssinatura": sg,
                        "dataInicioVigencia": st,
                        "dataFimVigencia": en,
                        "dataPublicacaoDOU": pb,
                        "valorInicialCompra": vi,
                        "valorFinalCompra": vf,
                        "fornecedor": f,
                        "unidadeGestora": ugs[u],
                    }
                )
                + b"\n"
            )
    elif fmt == "pncp":
        for _, num, obj, pr, md, _, _, sg, st, en, pb, vi, vf, doc, s, u, ctl, q in rows:
            x = units[u]
            buf.append(
                orjson.dumps(
                    {
                        "numeroControlePNCP": ctl,
                        "numeroContratoEmpenho": num,
                        "anoContrato": int(ctl[-4:]),
                        "sequencialContrato": q,
                        "processo": pr,
                        "tipoContrato": {"id": 1, "nome": "Contrato (termo inicial)"},
                        "categoriaProcesso": {"id": MODALITIES[md][1], "nome": MODALITIES[md][0]},
                        "objetoContrato": obj,
                        "dataAssinatura": sg,
                        "dataVigenciaInicio": st,
                        "dataVigenciaFim": en,
                        "dataPublicacaoPncp": f"{pb}T10:00:00",
                        "valorInicial": vi,
                        "valorGlobal": vf,
                        "valorAcumulado": vf,
                        "niFornecedor": doc,
                        "tipoPessoa": "PJ" if len(doc) == 14 else "PF",
                        "nomeRazaoSocialFornecedor": parties[s].legal_name,
                        "orgaoEntidade": {
                            "cnpj": x.organ_cnpj,
                            "razaoSocial": x.organ_name.upper(),
                            "poderId": "E",
                            "esferaId": "F",
                        },
                        "unidadeOrgao": {
                            "codigoUnidade": x.code,
                            "nomeUnidade": x.name,
                            "ufSigla": x.uf,
                            "municipioNome": x.city,
                        },
                        "informacaoComplementar": None,
                    }
                )
                + b"\n"
            )
    else:
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        for i, num, obj, pr, md, fd, si, sg, st, en, pb, vi, vf, doc, s, u, _, _ in rows:
            x = units[u]
            writer.writerow(
                (
                    i,
                    num,
                    obj,
                    pr,
                    FUNDAMENTOS[fd],
                    SITUATIONS[si],
                    MODALITIES[md][0],
                    sg,
                    st,
                    en,
                    pb,
                    f"{vi:.2f}",
                    f"{vf:.2f}",
                    _document(doc, False),
                    parties[s].name,
                    x.code,
                    x.name,
                    x.organ_code,
                    x.organ_sigla,
                    x.organ_name,
                )
            )
        buf.append(text.getvalue().encode())
    return b"".join(buf)


def _dmy(day: int) -> str:
    s = str(np.datetime64(day, "D"))
    return f"{s[8:10]}/{s[5:7]}/{s[:4]}"


def ceis_lines(rows: Iterable[tuple[int, int, int, str, Party, int, str, int]]) -> bytes:
    """CEIS records (Portal shape, dates DD/MM/YYYY as the Portal writes them), one JSON object a line.

    Each row: id, start day, end day (-1: open-ended), tipoSancao, party, sanctioning organ index,
    open-end text ("" or "Sem informação"), fine in BRL (used for "Multa" only).
    """
    buf = []
    for ident, start, end, kind, party, organ, open_end, fine in rows:
        name, uf, power, sphere = SANCTIONING_ORGANS[organ]
        code, ground = CEIS_GROUNDS[kind]
        doc = format_cnpj(party.digits)
        buf.append(
            orjson.dumps(
                {
                    "id": ident,
                    "dataInicioSancao": _dmy(start),
                    "dataFimSancao": _dmy(end) if end >= 0 else open_end,
                    "dataPublicacaoSancao": _dmy(start + ident % 20),
                    "tipoSancao": {"descricaoResumida": kind, "descricaoPortal": kind},
                    "orgaoSancionador": {"nome": name, "siglaUf": uf, "poder": power, "esfera": sphere},
                    "sancionado": {"nome": party.legal_name, "codigoFormatado": doc},
                    "pessoa": {"cnpjFormatado": doc, "cpfFormatado": "", "razaoSocialReceita": party.legal_name},
                    "fundamentacao": [{"codigo": code, "descricao": ground}],
                    "valorMulta": f"{fine:,.2f}".replace(",", "X").replace(".", ",").replace("X", ".")
                    if kind == FINE_SANCTION
                    else "0,00",
                }
            )
            + b"\n"
        )
    return b"".join(buf)
