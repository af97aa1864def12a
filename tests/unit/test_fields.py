from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cidadao.contracts.fields import (
    Invalid,
    normalize_modality,
    object_class,
    parse_date,
    parse_money,
    strip_objeto,
    text_or_none,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-03-05", date(2024, 3, 5)),
        ("2024-03-05T10:00:00", date(2024, 3, 5)),
        ("05/03/2024", date(2024, 3, 5)),
        ("20240305", date(2024, 3, 5)),
        ("Sem informação", None),
        ("", None),
        (None, None),
    ],
)
def test_dates(text: str | None, expected: date | None) -> None:
    assert parse_date(text) == expected


@pytest.mark.parametrize("text", ["31/02/2024", "2024-13-45", "yesterday", "2024/03/05"])
def test_unparseable_dates_are_invalid_with_the_text(text: str) -> None:
    result = parse_date(text)
    assert isinstance(result, Invalid)
    assert text in result


def test_a_number_is_not_a_date() -> None:
    assert isinstance(parse_date(20240305), Invalid)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1234.5, 1234.5), (0, 0.0), ("1.234,56", 1234.56), ("1234.56", 1234.56), ("R$ 350.000,00", 350000.0),
     ("Sem informação", None), (None, None)],
)  # fmt: skip
def test_money(value: object, expected: float | None) -> None:
    assert parse_money(value, 1e11) == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [(-5, "negative"), (2.1e13, "absurd"), ("abc", "not a number"), (float("nan"), "finite"), (True, "boolean"),
     ([1], "must be a number")],
)  # fmt: skip
def test_bad_money(value: object, reason: str) -> None:
    result = parse_money(value, 1e11)
    assert isinstance(result, Invalid)
    assert reason in result


@given(st.one_of(st.text(), st.floats(), st.integers(), st.none(), st.booleans()))
def test_parsers_never_raise(value: object) -> None:
    parse_money(value, 1e11)
    parse_date(value)
    text_or_none(value)


def test_objeto_prefix_and_classes() -> None:
    assert strip_objeto("Objeto: Aquisição de canetas") == "Aquisição de canetas"
    assert strip_objeto("  OBJETO :  x") == "x"
    assert strip_objeto("Sem informação") is None
    a = object_class("Aquisição de material de escritório - canetas azuis")
    b = object_class("AQUISICAO DE MATERIAL DE ESCRITORIO (lote 2)")
    assert a == b == "material_escritorio"
    assert object_class("Serviços de limpeza e conservação predial") == "limpeza_conservacao_predial"
    assert object_class("---") == "indefinido"


@pytest.mark.parametrize(
    ("text", "code"),
    [("Pregão", "pregao"), ("Pregão Eletrônico - SRP", "pregao"), ("Dispensa de Licitação", "dispensa"),
     ("Inexigibilidade de Licitação", "inexigibilidade"), ("Concorrência", "concorrencia"),
     ("Credenciamento", "outra")],
)  # fmt: skip
def test_modalities(text: str, code: str) -> None:
    assert normalize_modality(text) == code
