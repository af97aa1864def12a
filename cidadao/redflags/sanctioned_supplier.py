"""``sanctioned_supplier``: signed while the supplier had a CEIS/CNEP sanction in force that bars contracting.

A sanction is in force on a day between its start and its end (an open end: still in force). Fines
(``multa``) do not bar contracting and are ignored. A contract whose supplier document is unknown (the Portal
masks people's CPFs) cannot be checked: ``insufficient_data``.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cidadao.redflags.base import Hits, SideData
from cidadao.redflags.frame import Frame

__all__ = ["SanctionedSupplierRule"]

_OPEN: Final = np.iinfo(np.int64).max


def _days(column: pa.ChunkedArray, fill: int) -> np.ndarray:
    return pc.fill_null(column.cast(pa.int32()).cast(pa.int64()), fill).to_numpy()  # type: ignore[no-any-return]


class SanctionedSupplierRule:
    flag: Final = "sanctioned_supplier"
    level: Final = "contract"
    phase: Final = 1
    basis: Final = "Lei 14.133/2021, art. 14, III and art. 156, III-IV (impedimento, inidoneidade: CEIS/CNEP)"

    def evaluate(self, frame: Frame, side: SideData, stats: object = None) -> Hits:
        supplier = frame.column("supplier")
        unknown = int(supplier.null_count)
        barring = side.sanctions.filter(pc.fill_null(side.sanctions["bars_contracting"], True))
        barring = barring.filter(pc.is_valid(barring["document"]))
        if barring.num_rows == 0 or frame.n == 0:
            return Hits.none(self.flag, self.basis, unknown)
        barring = barring.sort_by([("document", "ascending"), ("starts_on", "ascending")])
        docs, first = np.unique(barring["document"].to_numpy(zero_copy_only=False).astype(str), return_index=True)
        count = np.diff(np.r_[first, barring.num_rows])
        where = pc.fill_null(pc.index_in(supplier, value_set=pa.array(docs)), -1).to_numpy(zero_copy_only=False)
        rows = np.flatnonzero(where >= 0)
        if rows.size == 0:
            return Hits.none(self.flag, self.basis, unknown)
        # every (contract, sanction of its supplier) pair, vectorised
        k = count[where[rows]]
        pair_row = np.repeat(rows, k)
        pair_s = np.repeat(first[where[rows]], k) + (np.arange(k.sum()) - np.repeat(np.cumsum(k) - k, k))
        start, end = _days(barring["starts_on"], -_OPEN), _days(barring["ends_on"], _OPEN)
        day = frame.day[pair_row]
        active = (start[pair_s] <= day) & (day <= end[pair_s])
        pair_row, pair_s = pair_row[active], pair_s[active]
        hit, pick = np.unique(pair_row, return_index=True)  # first sanction in force (earliest start)
        s = pair_s[pick]
        kinds = barring["sanction_type"].take(pa.array(s)).to_numpy(zero_copy_only=False)
        registry = barring["registry"].take(pa.array(s)).to_numpy(zero_copy_only=False)
        ends = barring["ends_on"].take(pa.array(s)).cast(pa.string()).to_numpy(zero_copy_only=False)
        starts = barring["starts_on"].take(pa.array(s)).cast(pa.string()).to_numpy(zero_copy_only=False)
        return Hits(
            self.flag, hit, np.full(hit.size, 2, np.int8), np.ones(hit.size),
            {
                "supplier": supplier.take(pa.array(hit)).to_numpy(zero_copy_only=False), "registry": registry,
                "sanction_type": kinds, "sanction_start": starts, "sanction_end": ends,
                "signed_on": frame.column("signed_on").take(pa.array(hit)).cast(pa.string()).to_numpy(
                    zero_copy_only=False),
            },
            self.basis, unknown,
        )  # fmt: skip
