"""The rules, by flag name. Flag names are part of the public API."""

from __future__ import annotations

from typing import Final

from cidadao.redflags.amendment_over_limit import AmendmentRule
from cidadao.redflags.base import AgencyRule, ContractRule
from cidadao.redflags.benford_nonconformity import BenfordRule
from cidadao.redflags.contract_splitting import SplittingRule
from cidadao.redflags.new_supplier import NewSupplierRule
from cidadao.redflags.price_outlier import PriceOutlierRule
from cidadao.redflags.sanctioned_supplier import SanctionedSupplierRule
from cidadao.redflags.supplier_concentration import ConcentrationRule
from cidadao.redflags.weekend_or_holiday_signature import WeekendHolidayRule
from cidadao.redflags.year_end_rush import YearEndRushRule

__all__ = ["AGENCY_RULES", "CONTRACT_RULES", "FLAGS", "rule"]

CONTRACT_RULES: Final[tuple[ContractRule, ...]] = (
    PriceOutlierRule(),
    SplittingRule(),
    AmendmentRule(),
    SanctionedSupplierRule(),
    NewSupplierRule(),
    WeekendHolidayRule(),
)
AGENCY_RULES: Final[tuple[AgencyRule, ...]] = (ConcentrationRule(), BenfordRule(), YearEndRushRule())
_ALL: Final[tuple[ContractRule | AgencyRule, ...]] = (*CONTRACT_RULES, *AGENCY_RULES)
FLAGS: Final[tuple[str, ...]] = tuple(r.flag for r in _ALL)


def rule(flag: str) -> ContractRule | AgencyRule:
    """The rule named ``flag``; KeyError names the known flags."""
    for r in _ALL:
        if r.flag == flag:
            return r
    raise KeyError(f"unknown flag {flag!r}; known: {', '.join(FLAGS)}")
