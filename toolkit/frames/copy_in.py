"""Arrow tables into PostgreSQL with ``COPY FROM STDIN``: CSV-ready columns, column types
for a new table, and quoted identifiers.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from toolkit import errors, identifiers
from toolkit.frames.copy_out import _set

_COPY_IN_ROWS = 65_536
"""Rows per CSV slice sent to COPY FROM STDIN."""


def csv_ready(arrow: pa.Table) -> pa.Table | None:
    """The table with every column in a form whose CSV text PostgreSQL reads back exactly;
    None when a column has no such form here (binary, UUID extension, nested...).

    Aware timestamps become naive UTC (written under TimeZone=UTC: the tz-aware CSV
    writer is ~20x slower); durations become ``N microseconds`` (a bare number would be
    read as seconds by an interval column).
    """
    columns = []
    for column in arrow.columns:
        kind = column.type
        if pa.types.is_timestamp(kind) and kind.tz is not None:
            column = pc.cast(column, pa.timestamp(kind.unit))
        elif pa.types.is_duration(kind):
            micros = pc.cast(pc.cast(column, pa.duration("us")), pa.int64())
            column = pc.binary_join_element_wise(
                pc.cast(micros, pa.string()), pa.scalar(" microseconds"), ""
            )
        elif not _csv_writable(kind):
            return None
        columns.append(column)
    return pa.table(columns, names=arrow.column_names)


def _csv_writable(kind: pa.DataType) -> bool:
    if pa.types.is_dictionary(kind):
        return _csv_writable(kind.value_type)
    return bool(
        pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_decimal(kind)
        or pa.types.is_date(kind)
        or pa.types.is_time(kind)
        or pa.types.is_timestamp(kind)
        or pa.types.is_null(kind)
    )


async def copy_arrow(raw: Any, arrow: pa.Table, table: str, schema: str | None) -> None:
    """COPY a ``csv_ready`` Arrow table into ``table``: CSV written by Arrow's C++ writer,
    no Python object per cell. Unquoted empty fields are NULL; empty strings are quoted.
    Runs inside the caller's transaction, with TimeZone pinned to UTC for its duration."""
    options = pcsv.WriteOptions(include_header=False, quoting_style="needed")

    async def chunks() -> AsyncIterator[bytes]:
        # One COPY fed in slices: PostgreSQL parses a slice while the next is written.
        for batch in arrow.to_batches(max_chunksize=_COPY_IN_ROWS):
            buffer = io.BytesIO()
            pcsv.write_csv(pa.Table.from_batches([batch]), buffer, options)
            yield buffer.getvalue()

    columns = [identifiers.checked(n, "column name") for n in arrow.column_names]
    identifiers.checked(table, "table name")
    if schema is not None:
        identifiers.checked(schema, "schema name")
    saved = await raw.fetchval("SELECT current_setting('TimeZone')")
    await _set(raw, {"TimeZone": "UTC"})
    await raw.copy_to_table(
        table, source=chunks(), columns=columns, schema_name=schema, format="csv"
    )
    # Restored only on success: a failed COPY aborts the transaction, whose rollback
    # reverts this transaction-local setting (restoring it then would fail, and hide
    # the COPY's own error behind "current transaction is aborted").
    await _set(raw, {"TimeZone": saved})


def _quote(name: str, what: str = "column name") -> str:
    return identifiers.quote(name, what)


def _qualified(table: str, schema: str | None) -> str:
    quoted = _quote(table, "table name")
    return f"{_quote(schema, 'schema name')}.{quoted}" if schema is not None else quoted


def _pg_type_for(arrow_type: pa.DataType, column: str) -> str:
    checks = [
        (pa.types.is_int8, "smallint"),
        (pa.types.is_int16, "smallint"),
        (pa.types.is_int32, "integer"),
        (pa.types.is_int64, "bigint"),
        (pa.types.is_uint8, "smallint"),
        (pa.types.is_uint16, "integer"),
        (pa.types.is_uint32, "bigint"),
        (pa.types.is_float32, "real"),
        (pa.types.is_float64, "double precision"),
        (pa.types.is_boolean, "boolean"),
        (pa.types.is_string, "text"),
        (pa.types.is_large_string, "text"),
        (pa.types.is_date32, "date"),
        (pa.types.is_time64, "time"),
    ]
    for check, pg_type in checks:
        if check(arrow_type):
            return pg_type
    if pa.types.is_timestamp(arrow_type):
        return "timestamptz" if arrow_type.tz else "timestamp"
    if pa.types.is_decimal(arrow_type):
        return f"numeric({arrow_type.precision}, {arrow_type.scale})"
    raise errors.ToolkitError(
        f"column {column!r} has type {arrow_type}, which to_table cannot store - convert it "
        "(e.g. .astype(str)) or create the table yourself and use if_exists='append'"
    )
