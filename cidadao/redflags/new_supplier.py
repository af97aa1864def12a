"""``new_supplier``: a company opened less than 365 days before signing, or not ATIVA in the registry.

DIGIWHIST's ``INTEGRITY_NEW_COMPANY``. Read against the supplier registry (CNPJ, opening date, status); the
registry gives today's status, so a non-ATIVA company is flagged whatever the signing date. People (CPF) have
no company registry, and a company missing from it cannot be judged: both are ``insufficient_data``.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pyarrow as pa

from cidadao.redflags.base import Hits, SideData, document_keys
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
        keys = document_keys(supplier)
        reg = side.companies
        if reg.keys.size == 0 or frame.n == 0:
            return Hits.none(self.flag, self.basis, frame.n)
        pos = np.clip(np.searchsorted(reg.keys, keys), 0, reg.keys.size - 1)
        found = (keys >= 10**15) & (reg.keys[pos] == keys)  # companies (CNPJ keys) in the registry
        idx = np.where(found, pos, 0)
        opening, status = reg.opening[idx], reg.status[idx]
        has_date = found & (opening > -(1 << 39))
        age = frame.day - opening
        known_status = found & (status >= 0)
        ativa = reg.status_names.index("ATIVA") if "ATIVA" in reg.status_names else -2
        inactive = known_status & (status != ativa)
        young = has_date & (age < self.min_age_days)
        judged = has_date | known_status
        rows = np.flatnonzero(young | inactive)
        score = np.where(inactive[rows], 1.0, np.clip(1.0 - age[rows] / self.min_age_days, 0.0, 1.0))
        severity = np.where(inactive[rows] | (age[rows] < 0), 2, np.where(age[rows] < 180, 1, 0)).astype(np.int8)
        opened = reg.table["opening_date"].take(pa.array(idx[rows])).cast(pa.string())
        return Hits(
            self.flag, rows, severity, np.round(score, 4),
            {
                "supplier": supplier.take(pa.array(rows)).to_numpy(zero_copy_only=False),
                "opened_on": opened.to_numpy(zero_copy_only=False),
                "days_before_signing": [int(a) if d else None for a, d in zip(age[rows], has_date[rows], strict=True)],
                "registry_status": np.array([*reg.status_names, None], dtype=object)[status[rows]],
            },
            self.basis, int(frame.n - judged.sum()),
        )  # fmt: skip
