"""Static tables for the synthetic-data generator: object classes, organs, names, sanction types.

Kept apart from :mod:`cidadao.contracts.synthetic` so the generator reads as logic, not data. Nothing here
is random: the generator draws from these tables with its own seeded generator.
"""

from __future__ import annotations

from typing import Final, NamedTuple

__all__ = [
    "ACTIVITIES",
    "BARRING_SANCTIONS",
    "CEIS_GROUNDS",
    "CEILING_I",
    "CEILING_II",
    "CLASSES",
    "COMPANY_SUFFIXES",
    "DETAILS",
    "FINE_SANCTION",
    "FIRST_NAMES",
    "FUNDAMENTOS",
    "MINISTRIES",
    "MODALITIES",
    "MONTH_WEIGHTS",
    "ORGAN_KINDS",
    "PLACES",
    "SANCTIONING_ORGANS",
    "SURNAMES",
    "UG_KINDS",
    "ObjectClass",
]


class ObjectClass(NamedTuple):
    """One kind of purchase: its key, canonical ``objeto`` text, typical price (BRL) and art. 75 item."""

    key: str
    text: str
    typical: float
    item: str  # "I" (works, engineering, vehicle maintenance) or "II" (other goods and services)


CLASSES: Final[tuple[ObjectClass, ...]] = (
    ObjectClass("cafe_agua", "Aquisição de café e água mineral", 3_500, "II"),
    ObjectClass("material_escritorio", "Aquisição de material de escritório", 6_000, "II"),
    ObjectClass("dedetizacao", "Serviços de dedetização e controle de pragas", 8_000, "II"),
    ObjectClass("material_limpeza", "Aquisição de material de limpeza e higiene", 9_500, "II"),
    ObjectClass("livros", "Aquisição de livros e periódicos", 14_000, "II"),
    ObjectClass("grafica", "Serviços gráficos e de impressão", 20_000, "II"),
    ObjectClass("capacitacao", "Serviços de capacitação e treinamento", 26_000, "II"),
    ObjectClass("transporte_mudanca", "Serviços de transporte e mudança", 30_000, "II"),
    ObjectClass("material_construcao", "Aquisição de material de construção", 36_000, "II"),
    ObjectClass("uniformes", "Aquisição de uniformes e EPI", 45_000, "II"),
    ObjectClass("seguros", "Contratação de seguros", 50_000, "II"),
    ObjectClass("generos_alimenticios", "Aquisição de gêneros alimentícios", 55_000, "II"),
    ObjectClass("manutencao_ar", "Manutenção de aparelhos de ar-condicionado", 60_000, "II"),
    ObjectClass("mobiliario", "Aquisição de mobiliário", 65_000, "II"),
    ObjectClass("manutencao_veiculos", "Manutenção de veículos", 70_000, "I"),
    ObjectClass("manutencao_elevadores", "Manutenção de elevadores", 75_000, "II"),
    ObjectClass("material_hospitalar", "Aquisição de material médico-hospitalar", 85_000, "II"),
    ObjectClass("eventos", "Organização de eventos", 90_000, "II"),
    ObjectClass("exames", "Serviços de exames laboratoriais", 110_000, "II"),
    ObjectClass("medicamentos", "Aquisição de medicamentos", 130_000, "II"),
    ObjectClass("agua_esgoto", "Fornecimento de água e esgoto", 150_000, "II"),
    ObjectClass("equip_informatica", "Aquisição de equipamentos de informática", 160_000, "II"),
    ObjectClass("telefonia", "Serviços de telefonia e dados", 180_000, "II"),
    ObjectClass("equip_laboratorio", "Aquisição de equipamentos de laboratório", 190_000, "II"),
    ObjectClass("combustiveis", "Fornecimento de combustíveis", 210_000, "II"),
    ObjectClass("consultoria", "Serviços de consultoria técnica", 220_000, "II"),
    ObjectClass("licencas_software", "Aquisição de licenças de software", 260_000, "II"),
    ObjectClass("manutencao_predial", "Serviços de manutenção predial", 280_000, "I"),
    ObjectClass("passagens", "Agenciamento de passagens aéreas", 300_000, "II"),
    ObjectClass("projetos_engenharia", "Elaboração de projetos de engenharia", 320_000, "I"),
    ObjectClass("locacao_veiculos", "Locação de veículos", 350_000, "II"),
    ObjectClass("locacao_imovel", "Locação de imóvel", 420_000, "II"),
    ObjectClass("aquisicao_veiculos", "Aquisição de veículos", 450_000, "II"),
    ObjectClass("energia", "Fornecimento de energia elétrica", 520_000, "II"),
    ObjectClass("limpeza_conservacao", "Serviços de limpeza e conservação", 650_000, "II"),
    ObjectClass("obras_reforma", "Obras de reforma de edificação", 850_000, "I"),
    ObjectClass("vigilancia", "Serviços de vigilância patrimonial", 950_000, "II"),
    ObjectClass("apoio_administrativo", "Serviços de apoio administrativo terceirizado", 1_300_000, "II"),
    ObjectClass("desenvolvimento_sistemas", "Serviços de desenvolvimento de sistemas", 1_600_000, "II"),
    ObjectClass("publicidade", "Serviços de publicidade institucional", 2_200_000, "II"),
    ObjectClass("pavimentacao", "Obras de pavimentação", 3_200_000, "I"),
    ObjectClass("obras_construcao", "Obras de construção de edificação", 4_500_000, "I"),
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
)

# Art. 75 dispensa ceilings by fiscal year (Decretos 10.922/2021, 11.317/2022, 11.871/2023, 12.343/2024).
CEILING_I: Final[dict[int, float]] = {2022: 108_040.82, 2023: 114_416.65, 2024: 119_812.02, 2025: 125_451.15}
CEILING_II: Final[dict[int, float]] = {2022: 54_020.41, 2023: 57_208.33, 2024: 59_906.02, 2025: 62_725.59}

# Share of the year's contracts signed in each month (January .. December); December ~12.5 %.
MONTH_WEIGHTS: Final[tuple[float, ...]] = (
    0.050, 0.065, 0.080, 0.080, 0.085, 0.085, 0.080, 0.085, 0.085, 0.090, 0.090, 0.125,
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
    ("Minas Gerais", "MG", "Belo Horizonte"), ("São Paulo", "SP", "São Paulo"),
    ("Rio de Janeiro", "RJ", "Rio de Janeiro"), ("Bahia", "BA", "Salvador"),
    ("Pernambuco", "PE", "Recife"), ("Ceará", "CE", "Fortaleza"), ("Pará", "PA", "Belém"),
    ("Amazonas", "AM", "Manaus"), ("Goiás", "GO", "Goiânia"), ("Paraná", "PR", "Curitiba"),
    ("Santa Catarina", "SC", "Florianópolis"), ("Rio Grande do Sul", "RS", "Porto Alegre"),
    ("Espírito Santo", "ES", "Vitória"), ("Mato Grosso", "MT", "Cuiabá"),
    ("Mato Grosso do Sul", "MS", "Campo Grande"), ("Maranhão", "MA", "São Luís"),
    ("Piauí", "PI", "Teresina"), ("Paraíba", "PB", "João Pessoa"),
    ("Rio Grande do Norte", "RN", "Natal"), ("Alagoas", "AL", "Maceió"), ("Sergipe", "SE", "Aracaju"),
    ("Tocantins", "TO", "Palmas"), ("Rondônia", "RO", "Porto Velho"), ("Acre", "AC", "Rio Branco"),
    ("Roraima", "RR", "Boa Vista"), ("Amapá", "AP", "Macapá"), ("Brasília", "DF", "Brasília"),
    ("Campinas", "SP", "Campinas"), ("Juiz de Fora", "MG", "Juiz de Fora"),
    ("Uberlândia", "MG", "Uberlândia"), ("Londrina", "PR", "Londrina"), ("Pelotas", "RS", "Pelotas"),
    ("Santa Maria", "RS", "Santa Maria"), ("Campina Grande", "PB", "Campina Grande"),
    ("Feira de Santana", "BA", "Feira de Santana"), ("Petrolina", "PE", "Petrolina"),
    ("Sobral", "CE", "Sobral"), ("Santarém", "PA", "Santarém"), ("Dourados", "MS", "Dourados"),
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
    "Silva", "Santos", "Oliveira", "Souza", "Rodrigues", "Ferreira", "Alves", "Pereira", "Lima",
    "Gomes", "Costa", "Ribeiro", "Martins", "Carvalho", "Almeida", "Lopes", "Soares", "Fernandes",
    "Vieira", "Barbosa", "Rocha", "Dias", "Nascimento", "Andrade", "Moreira", "Nunes", "Marques",
    "Machado", "Mendes", "Freitas", "Cardoso", "Ramos", "Gonçalves", "Santana", "Teixeira", "Araújo",
)
FIRST_NAMES: Final[tuple[str, ...]] = (
    "Maria", "José", "Ana", "João", "Antônio", "Francisca", "Carlos", "Paulo", "Adriana", "Lucas",
    "Juliana", "Marcos", "Patrícia", "Rafael", "Fernanda", "Pedro", "Aline", "Luiz", "Camila", "Bruno",
)
ACTIVITIES: Final[tuple[str, ...]] = (
    "Comércio e Serviços", "Distribuidora", "Engenharia", "Construções", "Tecnologia", "Serviços Gerais",
    "Suprimentos", "Materiais", "Soluções", "Consultoria", "Informática", "Alimentos", "Papelaria",
    "Transportes", "Médica", "Hospitalar", "Equipamentos", "Empreendimentos", "Locações", "Segurança",
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
