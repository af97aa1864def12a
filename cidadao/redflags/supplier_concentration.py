"""``supplier_concentration``: one supplier takes most of an agency's spend.

Flags an agency with at least 10 contracts where one supplier holds ≥ 70 % of the spend (final value, else
initial). The Herfindahl-Hirschman index is reported as evidence but does not flag on its own: on realistic
data (median agency HHI ~1,200) an agency of 10–30 contracts crosses 2,500 by chance often, while 70 % in one
supplier does not happen without a reason. Contracts without a supplier document count as distinct suppliers.
"""

from __future__ import annotations

from typing import Final

import numpy as np

from cidadao.redflags.base import Hits, severity_by_score
from cidadao.redflags.stats import AgencyTotals

__all__ = ["ConcentrationRule"]


class ConcentrationRule:
    flag: Final = "supplier_concentration"
    level: Final = "agency"
    basis: Final = "method: top supplier's share of spend ≥ 70 % (HHI reported, DOJ/FTC scale), at least 10 contracts"
    min_contracts: Final = 10
    share_limit: Final = 0.70

    def evaluate(self, agencies: AgencyTotals) -> Hits:
        judged = (agencies.contracts >= self.min_contracts) & (agencies.spend > 0)
        share = np.where(judged, agencies.top_spend / np.where(agencies.spend > 0, agencies.spend, 1.0), 0.0)
        rows = np.flatnonzero(judged & (share >= self.share_limit))
        top = np.array(agencies.top_supplier, dtype=object)
        return Hits(
            self.flag, rows, severity_by_score(share[rows], 0.8, 0.9), np.round(share[rows], 4),
            {
                "contracts": agencies.contracts[rows], "spend": np.round(agencies.spend[rows], 2),
                "top_supplier": top[rows] if rows.size else [], "top_share": np.round(share[rows], 4),
                "hhi": np.round(agencies.hhi[rows], 1), "suppliers": agencies.suppliers[rows],
            },
            self.basis, int(len(agencies.orgao) - judged.sum()),
        )  # fmt: skip
