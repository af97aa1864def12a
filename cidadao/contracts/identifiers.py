"""Brazilian identifiers: CNPJ (companies) and CPF (people), with their mod-11 check digits.

Both accept the formatted spelling (``12.345.678/0001-95``, ``123.456.789-09``) and bare digits, and
return bare digits. The Portal masks CPFs (``***.456.789-**``); a masked CPF cannot be checked and is
reported as such.
"""

from __future__ import annotations

from functools import lru_cache

__all__ = [
    "cnpj_check_digits",
    "cpf_check_digits",
    "format_cnpj",
    "is_valid_cnpj",
    "is_valid_cpf",
    "normalize_document",
]

_CNPJ_W1 = (5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2)
_CNPJ_W2 = (6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2)
_PUNCTUATION = str.maketrans("", "", ".-/ ")


def _mod11(digits: str, weights: tuple[int, ...]) -> int:
    rest = sum(int(d) * w for d, w in zip(digits, weights, strict=True)) % 11
    return 0 if rest < 2 else 11 - rest


def cnpj_check_digits(base12: str) -> str:
    """The two check digits of a 12-digit CNPJ base."""
    d1 = _mod11(base12, _CNPJ_W1)
    d2 = _mod11(base12 + str(d1), _CNPJ_W2)
    return f"{d1}{d2}"


def cpf_check_digits(base9: str) -> str:
    """The two check digits of a 9-digit CPF base."""
    d1 = _mod11(base9, tuple(range(10, 1, -1)))
    d2 = _mod11(base9 + str(d1), tuple(range(11, 1, -1)))
    return f"{d1}{d2}"


def _digits(value: str) -> str:
    return value.strip().translate(_PUNCTUATION)


@lru_cache(maxsize=262_144)
def is_valid_cnpj(value: str) -> bool:
    """True for a 14-digit CNPJ (formatted or bare) whose check digits match and which is not all one digit."""
    d = _digits(value)
    if len(d) != 14 or not d.isascii() or not d.isdigit() or d == d[0] * 14:
        return False
    return cnpj_check_digits(d[:12]) == d[12:]


@lru_cache(maxsize=262_144)
def is_valid_cpf(value: str) -> bool:
    """True for an 11-digit CPF (formatted or bare) whose check digits match and which is not all one digit."""
    d = _digits(value)
    if len(d) != 11 or not d.isascii() or not d.isdigit() or d == d[0] * 11:
        return False
    return cpf_check_digits(d[:9]) == d[9:]


def normalize_document(value: str) -> tuple[str, str] | str:
    """Bare digits and kind (``"PJ"`` or ``"PF"``) of a CNPJ or CPF, or the reason it is invalid.

    Returns a tuple on success and a string (the reason) on failure, so the hot path needs no exceptions.
    """
    if "*" in value:
        return "masked CPF cannot be validated"
    d = _digits(value)
    if not d.isascii() or not d.isdigit():
        return "document must contain digits only (CNPJ 14, CPF 11)"
    if len(d) == 14:
        return (d, "PJ") if is_valid_cnpj(d) else "invalid CNPJ check digits"
    if len(d) == 11:
        return (d, "PF") if is_valid_cpf(d) else "invalid CPF check digits"
    return f"document has {len(d)} digits; a CNPJ has 14 and a CPF 11"


def format_cnpj(digits: str) -> str:
    """``12345678000195`` → ``12.345.678/0001-95``."""
    return f"{digits[:2]}.{digits[2:5]}.{digits[5:8]}/{digits[8:12]}-{digits[12:]}"
