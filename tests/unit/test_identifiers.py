from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from cidadao.contracts.identifiers import (
    cnpj_check_digits,
    cpf_check_digits,
    format_cnpj,
    is_valid_cnpj,
    is_valid_cpf,
    normalize_document,
)

digits = st.text(alphabet="0123456789", min_size=1, max_size=1)


@given(st.text(alphabet="0123456789", min_size=12, max_size=12))
def test_every_generated_cnpj_is_valid_formatted_and_bare(base: str) -> None:
    cnpj = base + cnpj_check_digits(base)
    if cnpj == cnpj[0] * 14:
        assert not is_valid_cnpj(cnpj)
        return
    assert is_valid_cnpj(cnpj)
    assert is_valid_cnpj(format_cnpj(cnpj))
    assert normalize_document(format_cnpj(cnpj)) == (cnpj, "PJ")


@given(st.text(alphabet="0123456789", min_size=12, max_size=12), st.integers(12, 13), st.integers(1, 9))
def test_a_wrong_check_digit_is_rejected(base: str, position: int, delta: int) -> None:
    cnpj = list(base + cnpj_check_digits(base))
    cnpj[position] = str((int(cnpj[position]) + delta) % 10)
    assert not is_valid_cnpj("".join(cnpj))
    assert normalize_document("".join(cnpj)) in ("invalid CNPJ check digits",)


@given(st.text(alphabet="0123456789", min_size=9, max_size=9), st.integers(9, 10), st.integers(1, 9))
def test_cpf_check_digits(base: str, position: int, delta: int) -> None:
    cpf = base + cpf_check_digits(base)
    if cpf != cpf[0] * 11:
        assert is_valid_cpf(cpf)
        assert is_valid_cpf(f"{cpf[:3]}.{cpf[3:6]}.{cpf[6:9]}-{cpf[9:]}")
        assert normalize_document(cpf) == (cpf, "PF")
    wrong = list(cpf)
    wrong[position] = str((int(wrong[position]) + delta) % 10)
    assert not is_valid_cpf("".join(wrong))


@given(st.text(max_size=30))
def test_any_text_gives_a_verdict_never_an_exception(text: str) -> None:
    result = normalize_document(text)
    assert isinstance(result, tuple | str)
    if isinstance(result, tuple):
        assert result[1] in ("PJ", "PF")
        assert result[0].isdigit()


def test_known_documents() -> None:
    assert is_valid_cnpj("11.222.333/0001-81")
    assert not is_valid_cnpj("11.222.333/0001-80")
    assert not is_valid_cnpj("00000000000000")
    assert is_valid_cpf("529.982.247-25")
    assert normalize_document("***.982.247-**") == "masked CPF cannot be validated"
    assert normalize_document("123") == "document has 3 digits; a CNPJ has 14 and a CPF 11"
    assert normalize_document("١١٢٢٢٣٣٣٠٠٠١٨١") == "document must contain digits only (CNPJ 14, CPF 11)"
