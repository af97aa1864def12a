"""The columnar view the rules read: one Arrow table of contracts, decoded once into numpy arrays.

A frame holds whole partitions (organ × fiscal year), so a rule that groups contracts (splitting by unidade
gestora, class and year) sees every member of a group. Strings that rules group by are dictionary-encoded
once; values are float64 with NaN for missing; dates are days since 1970-01-01.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from cidadao.redflags.legal import art75_item, is_renovation

__all__ = ["ANALYSIS_SCHEMA", "Frame", "codes_of", "days_to_years_months", "encode"]

# numpy's stubs type bincount, where and friends loosely: the aliases document intent, not dtype proofs
I64 = npt.NDArray[Any]
F64 = npt.NDArray[Any]

ANALYSIS_SCHEMA: Final = pa.schema(
    [
        pa.field("id", pa.int64()),  # contracts.id in Postgres (0 for data that never was stored)
        pa.field("contract_id", pa.string(), nullable=False),  # the source's own id
        pa.field("orgao", pa.string(), nullable=False),  # SIAFI organ code
        pa.field("ug", pa.string()),  # unidade gestora code
        pa.field("object_class", pa.string()),
        pa.field("modalidade", pa.string()),  # normalised: pregao, dispensa, inexigibilidade, ...
        pa.field("signed_on", pa.date32(), nullable=False),
        pa.field("initial_value", pa.float64()),
        pa.field("final_value", pa.float64()),
        pa.field("supplier", pa.string()),  # CNPJ or CPF digits; null when the source masks it
    ]
)


def encode(column: pa.ChunkedArray | pa.Array) -> tuple[I64, pa.Array]:
    """Dictionary-encode ``column``: (codes with -1 for null, the distinct values as an Arrow array)."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    encoded = pc.dictionary_encode(array)
    codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    return codes, encoded.dictionary


def codes_of(column: pa.ChunkedArray | pa.Array) -> tuple[I64, list[Any]]:
    """Like :func:`encode`, with the distinct values as a list (for small dictionaries)."""
    codes, dictionary = encode(column)
    return codes, dictionary.to_pylist()


def days_to_years_months(days: I64) -> tuple[I64, I64]:
    """Calendar year and month index (0 = January) of days since 1970-01-01."""
    as_days = days.astype("datetime64[D]")
    years = as_days.astype("datetime64[Y]").astype(np.int64) + 1970
    months = as_days.astype("datetime64[M]").astype(np.int64) % 12
    return years, months


def _floats(column: pa.ChunkedArray) -> F64:
    out: F64 = pc.fill_null(column, np.nan).to_numpy().astype(np.float64, copy=False)
    return out


@dataclass(frozen=True, eq=False)
class Frame:
    """Contracts decoded for the rules; ``table`` keeps the Arrow columns for ids and output."""

    table: pa.Table
    n: int
    day: I64
    year: I64
    month: I64
    initial: F64
    final: F64
    orgao: I64
    orgao_names: list[str]
    ug: I64
    cls: I64
    cls_names: list[str]
    cls_item: I64  # art. 75 item (1 or 2) per class code
    cls_renovation: npt.NDArray[np.bool_]
    dispensa: npt.NDArray[np.bool_]

    @classmethod
    def from_table(cls, table: pa.Table) -> Frame:
        table = table.select(ANALYSIS_SCHEMA.names).cast(ANALYSIS_SCHEMA)
        if table["signed_on"].null_count:
            raise ValueError("signed_on must be present on every contract")
        day = table["signed_on"].combine_chunks().cast(pa.int32()).to_numpy(zero_copy_only=False).astype(np.int64)
        year, month = days_to_years_months(day)
        orgao, orgao_names = codes_of(table["orgao"])
        ug, _ = codes_of(table["ug"])
        klass, cls_names = codes_of(table["object_class"])
        modal = table["modalidade"].combine_chunks()
        dispensa = pc.fill_null(pc.equal(modal, "dispensa"), False).to_numpy(zero_copy_only=False)
        return cls(
            table=table, n=table.num_rows, day=day, year=year, month=month,
            initial=_floats(table["initial_value"]), final=_floats(table["final_value"]),
            orgao=orgao, orgao_names=orgao_names, ug=ug, cls=klass, cls_names=cls_names,
            cls_item=np.array([art75_item(c) for c in cls_names], dtype=np.int64),
            cls_renovation=np.array([is_renovation(c) for c in cls_names], dtype=bool),
            dispensa=dispensa,
        )  # fmt: skip

    def value(self) -> F64:
        """The contract's price at signing: the initial value, else the final one."""
        out: F64 = np.where(np.isnan(self.initial), self.final, self.initial)
        return out

    def column(self, name: str) -> pa.Array:
        out: pa.Array = self.table[name].combine_chunks()
        return out
