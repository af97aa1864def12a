"""``price_outlier``: a contract priced far above the peers of its object class.

Peers are every contract of the same object class in the investigation's reach (all organs), read off the
merged histograms of :mod:`cidadao.redflags.stats`. In ln(value): robust z = (x − median) / (1.4826 · MAD)
above 3.5, or x above Q3 + 3 · IQR; and the value at least 3 × the peers' median, so that a class of
identical prices does not flag a value 1 % higher. Fewer than 8 peers: ``insufficient_data``.
Synthetic data: the background stays within ~6 × its class level (robust z ≤ 2.4), planted outliers are
50–300 × (z ≥ 5); real outliers of the Portal (the R$ 2.1e13 typo) are orders of magnitude.
"""

from __future__ import annotations

from typing import Final

import numpy as np

from cidadao.redflags.base import Hits, SideData, severity_by_score
from cidadao.redflags.frame import Frame
from cidadao.redflags.stats import PriceThresholds

__all__ = ["PriceOutlierRule"]


class PriceOutlierRule:
    flag: Final = "price_outlier"
    level: Final = "contract"
    phase: Final = 2
    basis: Final = (
        "Lei 14.133/2021, art. 23 (price compatible with the market); method: robust outlier among peers of "
        "the same object class, ln(value) robust z (median/MAD) > 3.5 or above Q3 + 3·IQR, at least 8 peers"
    )
    z_limit: Final = 3.5
    iqr_factor: Final = 3.0
    min_ratio: Final = 3.0
    min_peers: Final = 8

    def evaluate(self, frame: Frame, side: SideData, stats: PriceThresholds) -> Hits:
        value = frame.value()
        to_stats = np.array([stats.index.get(c, -1) for c in frame.cls_names] + [-1], np.int64)
        g = to_stats[frame.cls]  # class code -1 (no class) lands on the trailing -1
        known = g >= 0
        gi = np.where(known, g, 0)
        peers = np.where(known, stats.n[gi] - 1, 0) if stats.n.size else np.zeros(frame.n, np.int64)
        judged = (value > 0) & (peers >= self.min_peers)
        if not judged.any():
            return Hits.none(self.flag, self.basis, frame.n)
        with np.errstate(divide="ignore", invalid="ignore"):
            x = np.log(value)
            med, mad, q1, q3 = stats.median[gi], stats.mad[gi], stats.q1[gi], stats.q3[gi]
            z = np.where(mad > 0, (x - med) / (1.4826 * mad), np.nan)
            fence = q3 + self.iqr_factor * (q3 - q1)
            ratio = np.exp(x - med)
        hit = judged & ((z > self.z_limit) | (x > fence)) & (ratio >= self.min_ratio)
        rows = np.flatnonzero(hit)
        score = np.where(np.isnan(z[rows]), (x[rows] - q3[rows]) / np.maximum(q3[rows] - q1[rows], 0.01), z[rows])
        classes = np.array([*frame.cls_names, ""], dtype=object)[frame.cls[rows]]
        return Hits(
            self.flag, rows, severity_by_score(score, 5.0, 8.0), np.round(score, 4),
            {
                "value": np.round(value[rows], 2), "object_class": classes, "peers": peers[rows],
                "peer_median": np.round(np.exp(med[rows]), 2), "upper_fence": np.round(np.exp(fence[rows]), 2),
                "robust_z": np.round(z[rows], 3), "ratio_to_median": np.round(ratio[rows], 2),
            },
            self.basis, int(frame.n - judged.sum()),
        )  # fmt: skip
