"""Field parsers shared by every reader: dates, money, text, modalities and object classes.

Each parser returns the clean value, or a :class:`Invalid` carrying the reason, so the hot path of a
1 M-row ingest raises no exceptions. Parsers of values that repeat across rows (dates, modality texts,
``objeto`` texts) are memoised.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from functools import lru_cache
from typing import Any, Final

__all__ = [
    "MISSING_MARKERS",
    "Invalid",
    "normalize_modality",
    "object_class",
    "parse_date",
    "parse_money",
    "strip_objeto",
    "text_or_none",
]

MISSING_MARKERS: Final = frozenset({"", "sem informação", "sem informacao", "-", "null", "n/a", "não informado"})


class Invalid(str):
    """A parse failure; the string is the reason (e.g. ``"unparseable date '31/02/2024'"``)."""

    __slots__ = ()


def text_or_none(value: Any) -> str | None:
    """Strip text; ``"Sem informação"`` and friends become ``None``."""
    if value is None:
        return None
    s = str(value).strip()
    if s.lower() in MISSING_MARKERS:
        return None
    return s.replace("\x00", "")


@lru_cache(maxsize=65_536)
def _parse_date_text(s: str) -> date | Invalid | None:
    if s.lower() in MISSING_MARKERS:
        return None
    try:
        if len(s) >= 10 and s[4] == "-" and s[7] == "-":  # ISO, possibly with a time part
            return date(int(s[0:4]), int(s[5:7]), int(s[8:10]))
        if len(s) == 10 and s[2] == "/" and s[5] == "/":  # DD/MM/YYYY
            return date(int(s[6:10]), int(s[3:5]), int(s[0:2]))
        if len(s) == 8 and s.isdigit():  # YYYYMMDD (PNCP query style)
            return date(int(s[0:4]), int(s[4:6]), int(s[6:8]))
    except ValueError:
        pass
    shown = s if len(s) <= 40 else s[:40] + "…"
    return Invalid(f"unparseable date {shown!r} (expected YYYY-MM-DD or DD/MM/YYYY)")


def parse_date(value: Any) -> date | Invalid | None:
    """A date from ISO ``YYYY-MM-DD[...]``, ``DD/MM/YYYY`` or ``YYYYMMDD``; missing ⇒ ``None``."""
    if value is None:
        return None
    if isinstance(value, str):
        return _parse_date_text(value.strip())
    return Invalid(f"a date must be text, got {type(value).__name__}")


_BR_NUMBER: Final = re.compile(r"^-?\d{1,3}(\.\d{3})*(,\d+)?$|^-?\d+(,\d+)$")


def parse_money(value: Any, maximum: float) -> float | Invalid | None:
    """A BRL amount from a JSON number, ``"1234.56"`` or Brazilian ``"1.234,56"``; missing ⇒ ``None``.

    Negative amounts, non-finite numbers and amounts above ``maximum`` are invalid.
    """
    if value is None or isinstance(value, bool):
        return None if value is None else Invalid("a value must be a number, got a boolean")
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        s = value.strip().removeprefix("R$").strip()
        if s.lower() in MISSING_MARKERS:
            return None
        if _BR_NUMBER.match(s):
            s = s.replace(".", "").replace(",", ".")
        try:
            number = float(s)
        except ValueError:
            shown = s if len(s) <= 40 else s[:40] + "…"
            return Invalid(f"not a number: {shown!r}")
    else:
        return Invalid(f"a value must be a number, got {type(value).__name__}")
    if number != number or number in (float("inf"), float("-inf")):
        return Invalid("a value must be finite")
    if number < 0:
        return Invalid(f"negative value {number:.2f}")
    if number > maximum:
        return Invalid(f"absurd value {number:.6g} (above the {maximum:.6g} ceiling, CIDADAO_MAX_CONTRACT_VALUE)")
    return number


_OBJETO_PREFIX: Final = re.compile(r"^\s*objeto\s*:\s*", re.IGNORECASE)


def strip_objeto(value: Any) -> str | None:
    """The contract's object text without the Portal's ``"Objeto:"`` prefix."""
    s = text_or_none(value)
    if s is None:
        return None
    s = _OBJETO_PREFIX.sub("", s).strip()
    return s or None


_MODALITIES: Final = (
    ("pregao", "pregao"),
    ("dispensa", "dispensa"),
    ("inexigib", "inexigibilidade"),
    ("concorrencia", "concorrencia"),
    ("concurso", "concurso"),
    ("leilao", "leilao"),
    ("tomada", "tomada_de_precos"),
    ("convite", "convite"),
)


def _fold(s: str) -> str:
    """Lower-case ASCII folding: ``"Pregão Eletrônico"`` → ``"pregao eletronico"``."""
    return unicodedata.normalize("NFKD", s).encode("ascii", "ignore").decode().lower()


@lru_cache(maxsize=4096)
def normalize_modality(text: str) -> str:
    """Map a source's modality text to one code (``pregao``, ``dispensa``, ... or ``outra``)."""
    folded = _fold(text)
    for needle, code in _MODALITIES:
        if needle in folded:
            return code
    return "outra"


_STOPWORDS: Final = frozenset(
    [
        "a",
        "o",
        "as",
        "os",
        "de",
        "da",
        "do",
        "das",
        "dos",
        "e",
        "em",
        "para",
        "por",
        "com",
        "no",
        "na",
        "nos",
        "nas",
        "um",
        "uma",
        "ao",
        "aos",
        "sob",
        "sobre",
        "referente",
        "contratacao",
        "empresa",
        "especializada",
        "prestacao",
        "fornecimento",
        "aquisicao",
        "servico",
        "servicos",
    ]
)
_WORD: Final = re.compile(r"[a-z0-9]+")


@lru_cache(maxsize=131_072)
def object_class(objeto: str) -> str:
    """A coarse object class from ``objeto`` text, for grouping peers.

    The text before the first detail separator (`` - ``, ``;``, ``:``, ``(``), ASCII-folded, without
    stop words and generic procurement verbs, first three significant words joined by ``_``.
    """
    head = re.split(r"\s[-–]\s|[;:(,]", objeto, maxsplit=1)[0]
    words = [w for w in _WORD.findall(_fold(head)) if w not in _STOPWORDS and not w.isdigit()]
    return "_".join(words[:3]) or "indefinido"
