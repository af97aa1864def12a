"""``contract_splitting``: dispensas split to stay under the art. 75 ceiling (Lei 14.133/2021, art. 75 §1).

Group the dispensas of one unidade gestora by object class and fiscal year (signing year); a group of two or
more whose values are each under that year's ceiling (item I for works, engineering and vehicle maintenance,
item II otherwise) but whose sum is over it flags every member. The value is the larger of initial and final.
A dispensa without class, unit or value, or signed in a year without a known ceiling, is ``insufficient_data``.
"""

from __future__ import annotations

from typing import Final

import numpy as np

from cidadao.redflags.base import Hits, SideData, severity_by_score
from cidadao.redflags.frame import Frame
from cidadao.redflags.legal import ART75_CEILINGS, ceilings_for

__all__ = ["SplittingRule"]


class SplittingRule:
    flag: Final = "contract_splitting"
    level: Final = "contract"
    phase: Final = 1
    basis: Final = "Lei 14.133/2021, art. 75, §1º (sum of same-object dispensas in the fiscal year, per unit)"

    def evaluate(self, frame: Frame, side: SideData, stats: object = None) -> Hits:
        dispensa = frame.dispensa
        if not dispensa.any():
            return Hits.none(self.flag, self.basis)
        value = np.fmax(frame.initial, frame.final)
        item = np.append(frame.cls_item, 2)[frame.cls]
        ceiling = ceilings_for(frame.year, item)
        known = dispensa & (frame.cls >= 0) & (frame.ug >= 0) & ~np.isnan(value) & ~np.isnan(ceiling)
        under = known & (value > 0) & (value < ceiling)
        rows = np.flatnonzero(under)
        # the unit within its organ: a group never spans partitions (organ x year), whatever the codes
        keys = np.stack([frame.orgao[rows], frame.ug[rows], frame.cls[rows], frame.year[rows]])
        _, group = np.unique(keys, axis=1, return_inverse=True)
        group = group.reshape(-1)
        total = np.bincount(group, weights=value[rows])
        size = np.bincount(group)
        over = (size[group] >= 2) & (total[group] > ceiling[rows])
        hit, g = rows[over], group[over]
        score = total[g] / ceiling[hit]
        ug = frame.column("ug").take(hit).to_numpy(zero_copy_only=False)
        classes = np.array([*frame.cls_names, ""], dtype=object)[frame.cls[hit]]
        decree = np.array([ART75_CEILINGS[int(y)][2] for y in frame.year[hit].tolist()], dtype=object)
        return Hits(
            self.flag, hit, severity_by_score(score, 1.5, 2.0), np.round(score, 4),
            {
                "ug": ug, "object_class": classes, "fiscal_year": frame.year[hit], "value": np.round(value[hit], 2),
                "group_size": size[g], "group_sum": np.round(total[g], 2), "ceiling": ceiling[hit],
                "art75_item": np.where(item[hit] == 1, "I", "II"), "decree": decree,
            },
            self.basis, int(dispensa.sum() - known.sum()),
        )  # fmt: skip
