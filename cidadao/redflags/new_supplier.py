"""``new_supplier``: a company opened less than 365 days before signing, or not ATIVA in the registry.

DIGIWHIST's ``INTEGRITY_NEW_COMPANY``. Read against the supplier registry (CNPJ, opening date, status); the
registry gives today's status, so a non-ATIVA company is flagged whatever the signing date. People (CPF) have
no company registry, and a company missing from it cannot be judged: both are ``insufficient_data``.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cidadao.redflags.base import Hits, SideData
from cidadao.redflags.frame import Frame

__all__ = ["NewSupplierRule"]


class NewSupplierRule:
    flag: Final = "new_supplier"
    level: Final = "contract"
    phase: Final = 1
    basis: Final = (
        "method: DIGIWHIST INTEGRITY_NEW_COMPANY (company opened < 365 days before signing) or registry "
        "status not ATIVA (Receita Federal situação cadastral)"
    )
    min_age_days: Final = 365

    def evaluate(self, frame: Frame, side: SideData, stats: object = None) -> Hits:
        supplier = frame.column("supplier")
        company = pc.fill_null(pc.equal(pc.utf8_length(supplier), 14), False).to_numpy(zero_copy_only=False)
        reg = side.registry.filter(pc.is_valid(side.registry["document"]))
        if reg.num_rows == 0:
            return Hits.none(self.flag, self.basis, int(frame.n))
        first = pc.index_in(pc.unique(reg["document"]), value_set=reg["document"])
        reg = reg.take(pc.sort_indices(first))  # one row per document: its first
        where = pc.fill_null(pc.index_in(supplier, value_set=reg["document"]), -1).to_numpy(zero_copy_only=False)
        found = company & (where >= 0)
        idx = np.where(found, where, 0)
        opening = pc.fill_null(reg["opening_date"].cast(pa.int32()).cast(pa.int64()), -(1 << 40)).to_numpy()
        status = reg["registry_status"].to_numpy(zero_copy_only=False).astype(object)
        age = frame.day - opening[idx]
        has_date = opening[idx] > -(1 << 40)
        st = status[idx]
        inactive = found & (st != "ATIVA") & (st != None)  # noqa: E711 (element-wise)
        young = found & has_date & (age < self.min_age_days)
        judged = found & (has_date | (st != None))  # noqa: E711
        rows = np.flatnonzero(young | inactive)
        score = np.where(inactive[rows], 1.0, np.clip(1.0 - age[rows] / self.min_age_days, 0.0, 1.0))
        severity = np.where(inactive[rows] | (age[rows] < 0), 2, np.where(age[rows] < 180, 1, 0)).astype(np.int8)
        opened = reg["opening_date"].take(pa.array(idx[rows])).cast(pa.string()).to_numpy(zero_copy_only=False)
        return Hits(
            self.flag, rows, severity, np.round(score, 4),
            {
                "supplier": supplier.take(pa.array(rows)).to_numpy(zero_copy_only=False), "opened_on": opened,
                "days_before_signing": np.where(has_date[rows], age[rows], None), "registry_status": st[rows],
            },
            self.basis, int(frame.n - judged.sum()),
        )  # fmt: skip
