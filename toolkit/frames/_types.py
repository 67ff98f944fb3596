"""PostgreSQL result types -> Arrow columns -> pandas columns.

Every path that builds a DataFrame (rows over the binary protocol, text over COPY, streamed
chunks) goes through here, so the same query gives the same dtypes whichever path ran it.
Types come from the result description PostgreSQL sends, never guessed from values.

========================  ==========================  ============================
PostgreSQL                Arrow (both backends)        pandas, ``numpy_nullable``
========================  ==========================  ============================
int2 / int4 / int8        int16 / int32 / int64        Int16 / Int32 / Int64
float4 / float8           float32 / float64            Float32 / Float64
bool                      bool                         boolean
text, enums, pg_lsn...    string                       string[pyarrow]
numeric                   decimal128(38, max scale)    decimal128[pyarrow] (exact)
date / time               date32 / time64[us]          date32[pyarrow] / time64[pyarrow]
timestamp                 timestamp[us]                datetime64[us]
timestamptz               timestamp[us, UTC]           datetime64[us, UTC]
uuid / json / jsonb       -                            object: UUID / parsed JSON
anything else             -                            object: the value asyncpg decodes
========================  ==========================  ============================

NULL stays NULL everywhere (``<NA>``/``NaT``), distinct from float NaN and from ''.
A numeric column with NaN/Infinity or more than 38 digits falls back to ``Decimal``
objects. ``dtype_backend="pyarrow"`` keeps every Arrow-typed column as ``ArrowDtype``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa

__all__ = [
    "MASKED",
    "NULLABLE",
    "NUMPY",
    "Column",
    "DtypeBackend",
    "columns_from_attributes",
    "masked",
]

DtypeBackend = Literal["numpy_nullable", "pyarrow"]

_ARROW: dict[str, pa.DataType] = {
    "int2": pa.int16(),
    "int4": pa.int32(),
    "int8": pa.int64(),
    "oid": pa.int64(),
    "float4": pa.float32(),
    "float8": pa.float64(),
    "bool": pa.bool_(),
    "text": pa.string(),
    "varchar": pa.string(),
    "bpchar": pa.string(),
    "name": pa.string(),
    "char": pa.string(),
    "citext": pa.string(),
    "pg_lsn": pa.string(),
    "date": pa.date32(),
    "time": pa.time64("us"),
    "timestamp": pa.timestamp("us"),
    "timestamptz": pa.timestamp("us", tz="UTC"),
}
# Read as text by the COPY path, then converted (exactly) on the client.
_TEXT_THEN_CONVERT = {"numeric", "uuid", "json", "jsonb"}

NULLABLE: dict[pa.DataType, Any] = {
    pa.int16(): pd.Int16Dtype(),
    pa.int32(): pd.Int32Dtype(),
    pa.int64(): pd.Int64Dtype(),
    pa.float32(): pd.Float32Dtype(),
    pa.float64(): pd.Float64Dtype(),
    pa.bool_(): pd.BooleanDtype(),
    pa.string(): pd.StringDtype("pyarrow"),
    pa.large_string(): pd.StringDtype("pyarrow"),
}


@dataclass(frozen=True)
class Column:
    """One result column: its name and how its values are represented."""

    name: str
    pg_type: str

    @property
    def arrow_type(self) -> pa.DataType | None:
        """The Arrow type of this column, or None when it becomes Python objects."""
        return _ARROW.get(self.pg_type)

    @property
    def copy_safe(self) -> bool:
        """True when COPY's text of this type converts back exactly."""
        return self.pg_type in _ARROW or self.pg_type in _TEXT_THEN_CONVERT

    def parsed_as(self, backend: DtypeBackend) -> pa.DataType:
        """The Arrow type values are first read into (by the CSV reader or ``pa.array``).

        Text becomes ``large_string`` for the ``numpy_nullable`` backend: pandas' string
        dtype holds exactly that, so the column is not cast (copied) again.
        """
        arrow_type = self.arrow_type
        if arrow_type is None:
            return pa.string()  # text, converted on the client (numeric, uuid, json)
        if arrow_type == pa.string() and backend == "numpy_nullable":
            return pa.large_string()
        return arrow_type


def columns_from_attributes(attributes: Sequence[Any]) -> tuple[Column, ...]:
    """Columns from asyncpg's ``PreparedStatement.get_attributes()``.

    Enums (and other scalar types whose text is the value) are read as text. Cached per
    description: a query run again describes the same columns.
    """
    return _columns(tuple(attributes))


@functools.lru_cache(maxsize=256)
def _columns(attributes: tuple[Any, ...]) -> tuple[Column, ...]:
    columns = []
    for attribute in attributes:
        pg_type = attribute.type.name
        if pg_type not in _ARROW and pg_type not in _TEXT_THEN_CONVERT:
            kind = getattr(attribute.type, "kind", "")
            if kind == "scalar" and _is_enum(attribute.type):
                pg_type = "text"
        columns.append(Column(attribute.name, pg_type))
    return tuple(columns)


def _is_enum(pg_type: Any) -> bool:
    # asyncpg reports user-defined enums as scalar types outside pg_catalog.
    return str(getattr(pg_type, "schema", "pg_catalog")) != "pg_catalog"


MASKED: dict[pa.DataType, Any] = {
    pa.int16(): pd.arrays.IntegerArray,
    pa.int32(): pd.arrays.IntegerArray,
    pa.int64(): pd.arrays.IntegerArray,
    pa.bool_(): pd.arrays.BooleanArray,
}
"""Masked arrays built from the values and an all-valid mask when there is no NULL
(floats are left to pandas, which also masks NaN)."""
NUMPY = {t: np.dtype(t.to_pandas_dtype()) for t in MASKED}


def masked(arrow_type: pa.DataType, values: Any, mask: Any = None) -> Any:
    """pandas' masked array over ``values`` (no copy); no ``mask``: every value valid."""
    if mask is None:
        mask = np.zeros(len(values), dtype=bool)
    return MASKED[arrow_type](values, mask, copy=False)
