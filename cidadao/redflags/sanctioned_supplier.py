"""``sanctioned_supplier``: signed while the supplier had a CEIS/CNEP sanction in force that bars contracting.

A sanction is in force on a day between its start and its end (an open end: still in force). Fines
(``multa``) do not bar contracting and are ignored. A contract whose supplier document is unknown (the Portal
masks people's CPFs) cannot be checked: ``insufficient_data``.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pyarrow as pa

from cidadao.redflags.base import Hits, SideData, document_keys
from cidadao.redflags.frame import Frame

__all__ = ["SanctionedSupplierRule"]


class SanctionedSupplierRule:
    flag: Final = "sanctioned_supplier"
    level: Final = "contract"
    phase: Final = 1
    basis: Final = "Lei 14.133/2021, art. 14, III and art. 156, III-IV (impedimento, inidoneidade: CEIS/CNEP)"

    def evaluate(self, frame: Frame, side: SideData, stats: object = None) -> Hits:
        supplier = frame.column("supplier")
        keys = document_keys(supplier)
        unknown = int((keys < 0).sum())
        idx = side.barring
        if idx.keys.size == 0 or frame.n == 0:
            return Hits.none(self.flag, self.basis, unknown)
        pos = np.clip(np.searchsorted(idx.keys, keys), 0, idx.keys.size - 1)
        rows = np.flatnonzero((keys >= 0) & (idx.keys[pos] == keys))
        if rows.size == 0:
            return Hits.none(self.flag, self.basis, unknown)
        # every (contract, barring sanction of its supplier) pair, vectorised
        k = idx.count[pos[rows]]
        pair_row = np.repeat(rows, k)
        pair_s = np.repeat(idx.first[pos[rows]], k) + (np.arange(k.sum()) - np.repeat(np.cumsum(k) - k, k))
        day = frame.day[pair_row]
        active = (idx.start[pair_s] <= day) & (day <= idx.end[pair_s])
        hit, pick = np.unique(pair_row[active], return_index=True)  # the first in force (earliest start)
        s = pa.array(pair_s[active][pick])
        t = idx.table
        return Hits(
            self.flag, hit, np.full(hit.size, 2, np.int8), np.ones(hit.size),
            {
                "supplier": supplier.take(pa.array(hit)).to_numpy(zero_copy_only=False),
                "registry": t["registry"].take(s).to_numpy(zero_copy_only=False),
                "sanction_type": t["sanction_type"].take(s).to_numpy(zero_copy_only=False),
                "sanction_start": t["starts_on"].take(s).cast(pa.string()).to_numpy(zero_copy_only=False),
                "sanction_end": t["ends_on"].take(s).cast(pa.string()).to_numpy(zero_copy_only=False),
                "signed_on": frame.column("signed_on").take(pa.array(hit)).cast(pa.string()).to_numpy(
                    zero_copy_only=False),
            },
            self.basis, unknown,
        )  # fmt: skip
