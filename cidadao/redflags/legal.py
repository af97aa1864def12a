"""Legal thresholds and calendars the rules apply, keyed by fiscal year.

Art. 75 ceilings of Lei 14.133/2021 (dispensa de licitação) are updated every year by decree (IPCA-E);
before 2022 Lei 8.666/1993 applied and there is no ceiling here, so a rule asked about those years says
``insufficient_data``. National holidays come from the ``holidays`` package.
"""

from __future__ import annotations

import re
from datetime import date
from functools import lru_cache
from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = [
    "AMENDMENT_LIMIT",
    "AMENDMENT_LIMIT_RENOVATION",
    "ART75_CEILINGS",
    "art75_item",
    "ceilings_for",
    "holiday_days",
    "holiday_name",
    "is_renovation",
]

# year -> (art. 75 I: works, engineering services, vehicle maintenance; art. 75 II: other goods and services)
ART75_CEILINGS: Final[dict[int, tuple[float, float, str]]] = {
    2022: (108_040.82, 54_020.41, "Decreto 10.922/2021"),
    2023: (114_416.65, 57_208.33, "Decreto 11.317/2022"),
    2024: (119_812.02, 59_906.02, "Decreto 11.871/2023"),
    2025: (125_451.15, 62_725.59, "Decreto 12.343/2024"),
    2026: (130_984.20, 65_492.11, "Decreto 12.807/2025"),
}
AMENDMENT_LIMIT: Final = 0.25  # art. 125: additions up to 25 % of the initial value
AMENDMENT_LIMIT_RENOVATION: Final = 0.50  # art. 125: 50 % for the renovation of a building or equipment

_EPOCH: Final = date(1970, 1, 1).toordinal()
_WORD: Final = re.compile(r"[a-z]+")
_ITEM_I_WORDS: Final = frozenset({"obra", "obras", "engenharia", "pavimentacao", "reforma", "predial"})


def art75_item(object_class: str) -> int:
    """1 for art. 75 I (works, engineering, building or vehicle maintenance), 2 for art. 75 II.

    Object classes are the normalised words of ``objeto`` (``manutencao_veiculos``, ``obras_reforma_edificacao``);
    "material de construção" is goods, so ``construcao`` alone does not make a work.
    """
    words = set(_WORD.findall(object_class))
    if words & _ITEM_I_WORDS or {"manutencao", "veiculos"} <= words:
        return 1
    return 2


def is_renovation(object_class: str) -> bool:
    """Art. 125's higher limit: the renovation (reforma) of a building or of equipment."""
    return "reforma" in _WORD.findall(object_class)


def _ceiling_table() -> npt.NDArray[np.float64]:
    table = np.full((2, 2100 - 1900), np.nan)  # [item - 1, year - 1900]
    for year, (first, second, _decree) in ART75_CEILINGS.items():
        table[0, year - 1900], table[1, year - 1900] = first, second
    return table


_CEILINGS_BY_YEAR: Final = _ceiling_table()


def ceilings_for(years: npt.NDArray[np.int64], items: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """The art. 75 ceiling for each (fiscal year, item); NaN where no ceiling is known for the year."""
    idx = np.clip(years - 1900, 0, _CEILINGS_BY_YEAR.shape[1] - 1)
    out: npt.NDArray[np.float64] = np.where((years >= 1900) & (years < 2100), _CEILINGS_BY_YEAR[items - 1, idx], np.nan)
    return out


@lru_cache(maxsize=64)
def _calendar(first_year: int, last_year: int) -> tuple[npt.NDArray[np.int64], dict[int, str]]:
    import holidays  # here, not at import: it costs every agent's Ray worker ~0.13 s of CPU at start

    cal = holidays.country_holidays("BR", years=range(first_year, last_year + 1), language="pt_BR")
    names = {d.toordinal() - _EPOCH: str(name) for d, name in cal.items()}
    return np.array(sorted(names), dtype=np.int64), names


def holiday_days(first_year: int, last_year: int) -> npt.NDArray[np.int64]:
    """Brazilian national holidays of the years, as days since 1970-01-01, sorted."""
    return _calendar(first_year, last_year)[0]


def holiday_name(day: int) -> str | None:
    """The national holiday on ``day`` (days since 1970-01-01), in Portuguese, or None."""
    year = date.fromordinal(_EPOCH + day).year
    return _calendar(year, year)[1].get(day)
