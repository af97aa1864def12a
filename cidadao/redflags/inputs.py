"""Arrow tables for the rules, read straight from source files (no database): tests, benchmarks, notebooks.

The ``cidadao investigate`` command reads the same shapes from Postgres (:mod:`cidadao.storage.analysis`).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

import pyarrow as pa

from cidadao.contracts.readers import Rejection, detect, read_rows
from cidadao.contracts.schema import CONTRACT_COLUMNS, SANCTION_COLUMNS, SUPPLIER_COLUMNS
from cidadao.redflags.base import REGISTRY_SCHEMA, SANCTIONS_SCHEMA, SideData
from cidadao.redflags.frame import ANALYSIS_SCHEMA

__all__ = ["MAX_CONTRACT_VALUE", "contracts_from_files", "side_from_files"]

MAX_CONTRACT_VALUE: Final = 1e11  # the default of Settings.max_contract_value

_CONTRACT_SOURCE = {
    "contract_id": "source_id", "orgao": "orgao_codigo", "ug": "ug_codigo", "object_class": "object_class",
    "modalidade": "modalidade", "signed_on": "signed_on", "initial_value": "initial_value",
    "final_value": "final_value", "supplier": "supplier_document",
}  # fmt: skip


def _columns(
    paths: Iterable[Path], kind: str, columns: tuple[str, ...], wanted: list[str], max_value: float
) -> dict[str, list[object]]:
    index = [columns.index(c) for c in wanted]
    out: dict[str, list[object]] = {c: [] for c in wanted}
    lists = list(out.values())
    for path in paths:
        for row in read_rows(detect(Path(path), kind), max_value):  # type: ignore[arg-type]
            if isinstance(row, Rejection):
                continue
            for values, i in zip(lists, index, strict=True):
                values.append(row[i])
    return out


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def contracts_from_files(paths: Iterable[Path], max_value: float = MAX_CONTRACT_VALUE) -> pa.Table:
    """Valid contracts of the files (as the ingest accepts them), in :data:`ANALYSIS_SCHEMA` (``id`` 0)."""
    cols = _columns(paths, "contracts", CONTRACT_COLUMNS, list(_CONTRACT_SOURCE.values()), max_value)
    data = {name: cols[src] for name, src in _CONTRACT_SOURCE.items()}
    n = len(data["contract_id"])
    values = {k: [_float(v) for v in data[k]] for k in ("initial_value", "final_value")}
    return pa.table({"id": pa.array([0] * n, pa.int64()), **{**data, **values}}, schema=ANALYSIS_SCHEMA)


def side_from_files(
    sanctions: Iterable[Path] = (), registry: Iterable[Path] = (), max_value: float = MAX_CONTRACT_VALUE
) -> SideData:
    """Sanctions (CEIS/CNEP files) and the supplier registry (CSV) as the rules read them."""
    wanted = ["document", "starts_on", "ends_on", "bars_contracting", "sanction_type", "registry"]
    s = _columns(sanctions, "sanctions", SANCTION_COLUMNS, wanted, max_value)
    wanted = ["document", "opening_date", "registry_status"]
    r = _columns(registry, "suppliers", SUPPLIER_COLUMNS, wanted, max_value)
    return SideData(pa.table(s, schema=SANCTIONS_SCHEMA), pa.table(r, schema=REGISTRY_SCHEMA))
