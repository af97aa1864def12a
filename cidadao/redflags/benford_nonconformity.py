"""``benford_nonconformity``: the first digits of an agency's contract values do not follow Benford's law.

Nigrini's mean absolute deviation over the nine first-digit proportions, > 0.015 ("nonconformity"), over at
least 300 initial values of R$ 1 or more. Chi-square is not used: at this scale it rejects almost everything.
"""

from __future__ import annotations

from typing import Final

import numpy as np

from cidadao.redflags.base import Hits, severity_by_score
from cidadao.redflags.stats import AgencyTotals

__all__ = ["BenfordRule"]

BENFORD: Final = np.log10(1 + 1 / np.arange(1, 10))


class BenfordRule:
    flag: Final = "benford_nonconformity"
    level: Final = "agency"
    basis: Final = "method: Nigrini first-digit MAD > 0.015 (nonconformity), at least 300 values"
    min_values: Final = 300
    mad_limit: Final = 0.015

    def evaluate(self, agencies: AgencyTotals) -> Hits:
        n = agencies.digits.sum(axis=1)
        judged = n >= self.min_values
        observed = agencies.digits / np.maximum(n, 1)[:, None]
        mad = np.abs(observed - BENFORD).mean(axis=1)
        rows = np.flatnonzero(judged & (mad > self.mad_limit))
        return Hits(
            self.flag, rows, severity_by_score(mad[rows], 0.022, 0.03), np.round(mad[rows], 5),
            {
                "values": n[rows], "mad": np.round(mad[rows], 5),
                "observed": [np.round(o, 4).tolist() for o in observed[rows]],
                "expected": [np.round(BENFORD, 4).tolist()] * rows.size,
            },
            self.basis, int(len(agencies.orgao) - judged.sum()),
        )  # fmt: skip
