"""``year_end_rush``: December's spend far above the agency's own monthly norm.

December's spend over the agency's mean month (spend / 12, over the years in scope) above 3, with at least
10 contracts. Synthetic background agencies stay under 2.7; planted rushes put ≥ 35 % of spend in December.
"""

from __future__ import annotations

from typing import Final

import numpy as np

from cidadao.redflags.base import Hits, severity_by_score
from cidadao.redflags.stats import AgencyTotals

__all__ = ["YearEndRushRule"]


class YearEndRushRule:
    flag: Final = "year_end_rush"
    level: Final = "agency"
    basis: Final = "method: December spend > 3 × the agency's mean month (Lei 4.320/1964 year-end; OCP red flags)"
    min_contracts: Final = 10
    ratio_limit: Final = 3.0

    def evaluate(self, agencies: AgencyTotals) -> Hits:
        judged = (agencies.contracts >= self.min_contracts) & (agencies.spend > 0)
        mean_month = agencies.spend / 12
        ratio = np.where(judged, agencies.december / np.where(mean_month > 0, mean_month, 1.0), 0.0)
        rows = np.flatnonzero(judged & (ratio > self.ratio_limit))
        return Hits(
            self.flag, rows, severity_by_score(ratio[rows], 4.5, 6.0), np.round(ratio[rows], 4),
            {
                "contracts": agencies.contracts[rows], "december_spend": np.round(agencies.december[rows], 2),
                "mean_month_spend": np.round(mean_month[rows], 2), "ratio": np.round(ratio[rows], 4),
                "december_share": np.round(agencies.december[rows] / agencies.spend[rows], 4),
            },
            self.basis, int(len(agencies.orgao) - judged.sum()),
        )  # fmt: skip
