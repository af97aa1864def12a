"""``amendment_over_limit``: the final value exceeds the initial one by more than art. 125 allows.

(final − initial) / initial > 25 %, or > 50 % for the renovation (reforma) of a building or equipment.
Without a positive initial value or without a final value the rule cannot judge: ``insufficient_data``.
"""

from __future__ import annotations

from typing import Final

import numpy as np

from cidadao.redflags.base import Hits, SideData, severity_by_score
from cidadao.redflags.frame import Frame
from cidadao.redflags.legal import AMENDMENT_LIMIT, AMENDMENT_LIMIT_RENOVATION

__all__ = ["AmendmentRule"]


class AmendmentRule:
    flag: Final = "amendment_over_limit"
    level: Final = "contract"
    phase: Final = 1
    basis: Final = "Lei 14.133/2021, art. 125 (additions up to 25 %; 50 % for building or equipment renovation)"

    def evaluate(self, frame: Frame, side: SideData, stats: object = None) -> Hits:
        ini, fin = frame.initial, frame.final
        judged = (ini > 0) & ~np.isnan(fin)
        with np.errstate(divide="ignore", invalid="ignore"):
            increase = np.where(judged, fin / ini - 1.0, np.nan)
        renovation = np.append(frame.cls_renovation, False)[frame.cls]
        limit = np.where(renovation, AMENDMENT_LIMIT_RENOVATION, AMENDMENT_LIMIT)
        rows = np.flatnonzero(judged & (increase > limit + 1e-9))
        score = increase[rows] / limit[rows]
        return Hits(
            self.flag, rows, severity_by_score(score, 1.5, 2.0), np.round(score, 4),
            {
                "initial_value": np.round(ini[rows], 2), "final_value": np.round(fin[rows], 2),
                "increase": np.round(increase[rows], 4), "limit": limit[rows],
            },
            self.basis, int(frame.n - judged.sum()),
        )  # fmt: skip
