"""The columnar view the rules read: one Arrow table of contracts, decoded once into numpy arrays.

A frame holds whole partitions (organ × fiscal year), so a rule that groups contracts (splitting by unidade
gestora, class and year) sees every member of a group. Strings that rules group by are dictionary-encoded
once; values are float64 with NaN for missing; dates are days since 1970-01-01.
"""

from __future__ import annotations

from functools import cached_property
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


class Frame:
    """Contracts decoded for the rules, each column decoded on first use (a rule pays only for what it reads)."""

    def __init__(self, table: pa.Table) -> None:
        self.table = table.select(ANALYSIS_SCHEMA.names).cast(ANALYSIS_SCHEMA)
        if self.table["signed_on"].null_count:
            raise ValueError("signed_on must be present on every contract")
        self.n: int = self.table.num_rows
        self._columns: dict[str, pa.Array] = {}

    @cached_property
    def day(self) -> I64:
        """Signing day, days since 1970-01-01."""
        out: I64 = self.column("signed_on").cast(pa.int32()).to_numpy(zero_copy_only=False).astype(np.int64)
        return out

    @cached_property
    def _year_month(self) -> tuple[I64, I64]:
        return days_to_years_months(self.day)

    @property
    def year(self) -> I64:
        return self._year_month[0]

    @property
    def month(self) -> I64:
        return self._year_month[1]

    @cached_property
    def initial(self) -> F64:
        return _floats(self.column("initial_value"))

    @cached_property
    def final(self) -> F64:
        return _floats(self.column("final_value"))

    @cached_property
    def _orgao(self) -> tuple[I64, list[str]]:
        return codes_of(self.column("orgao"))

    @property
    def orgao(self) -> I64:
        return self._orgao[0]

    @property
    def orgao_names(self) -> list[str]:
        return self._orgao[1]

    @cached_property
    def ug(self) -> I64:
        return codes_of(self.column("ug"))[0]

    @cached_property
    def _cls(self) -> tuple[I64, list[str]]:
        return codes_of(self.column("object_class"))

    @property
    def cls(self) -> I64:
        return self._cls[0]

    @property
    def cls_names(self) -> list[str]:
        return self._cls[1]

    @cached_property
    def cls_item(self) -> I64:
        """Art. 75 item (1 or 2) per class code."""
        return np.array([art75_item(c) for c in self.cls_names], dtype=np.int64)

    @cached_property
    def cls_renovation(self) -> npt.NDArray[np.bool_]:
        return np.array([is_renovation(c) for c in self.cls_names], dtype=bool)

    @cached_property
    def dispensa(self) -> npt.NDArray[np.bool_]:
        modal = self.column("modalidade")
        out: npt.NDArray[np.bool_] = pc.fill_null(pc.equal(modal, "dispensa"), False).to_numpy(zero_copy_only=False)
        return out

    def value(self) -> F64:
        """The contract's price at signing: the initial value, else the final one."""
        out: F64 = np.where(np.isnan(self.initial), self.final, self.initial)
        return out

    def column(self, name: str) -> pa.Array:
        """One column as a single array (combined once; several rules read the same ones)."""
        if name not in self._columns:
            self._columns[name] = self.table[name].combine_chunks()
        return self._columns[name]
