"""DataFrames into PostgreSQL with ``COPY FROM STDIN``: the target's column types from the
catalog, the types of a new table, and one CSV COPY per frame whose refused values come
back naming the column, the row and the type - a frame, or a stream of them (the batches
of Arrow input, ``_arrow_in``) counted as one input.

``to_table``, ``bulk_insert`` and ``upsert`` all write a DataFrame through here (and its
values through ``values_in``), so a value is written - or refused - the same way by all
three.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import io
import re
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pcsv
from asyncpg import PostgresError

from toolkit import errors
from toolkit.frames._arrow_in import BATCH_ROWS, ArrowSource, arrow_input, nested
from toolkit.frames._copy_out import session_settings, set_local
from toolkit.frames._values_in import Target, arrow_for_copy, is_missing, row_text
from toolkit.sql import checked

_COPY_IN_ROWS = 65_536
"""Rows per CSV slice sent to COPY FROM STDIN."""


_TARGETS_SQL = """
SELECT a.attname, format_type(a.atttypid, a.atttypmod), b.typname, b.typcategory = 'A'
FROM pg_attribute a
JOIN pg_type t ON t.oid = a.atttypid
JOIN pg_type b ON b.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped
"""


async def target_types(raw: Any, qualified: str) -> dict[str, Target]:
    """The columns of the table ``qualified`` (quoted, maybe schema-qualified) and their
    types, from the catalog: what the values are checked and written against."""
    rows = await raw.fetch(_TARGETS_SQL, qualified)
    return {name: Target(declared, base, array) for name, declared, base, array in rows}


# Types of a new table ---------------------------------------------------------------


def column_types_of(frame: pd.DataFrame) -> list[tuple[str, str]]:
    """Each column's name and the PostgreSQL type ``to_table`` creates it with."""
    return [
        (str(name), _declared(frame.iloc[:, i], str(name))) for i, name in enumerate(frame.columns)
    ]


def _declared(series: pd.Series, name: str) -> str:
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return _declared(pd.Series(dtype.categories), name) if len(dtype.categories) else "text"
    if isinstance(dtype, pd.ArrowDtype):
        kind = dtype.pyarrow_dtype
        if pa.types.is_dictionary(kind):
            kind = kind.value_type
        found = _arrow_declared(kind)
        return found if found is not None else _declared(series.astype(object), name)
    if isinstance(dtype, pd.DatetimeTZDtype):
        return "timestamptz"
    if pd.api.types.is_datetime64_dtype(dtype):
        return "timestamp"
    if pd.api.types.is_timedelta64_dtype(dtype):
        return "interval"
    if isinstance(dtype, pd.StringDtype):
        return "text"
    if not pd.api.types.is_object_dtype(dtype):
        try:
            found = _arrow_declared(pa.from_numpy_dtype(getattr(dtype, "numpy_dtype", dtype)))
        except (pa.ArrowNotImplementedError, TypeError):
            found = None
        if found is not None:
            return found
        raise errors.ToolkitError(
            f"column {name!r} has dtype {dtype}, which to_table cannot store - convert it "
            "(e.g. .astype(str)) or create the table yourself and use if_exists='append'"
        )
    return _declared_objects(series, name)


def _arrow_declared(kind: pa.DataType) -> str | None:
    checks = [
        (pa.types.is_int8, "smallint"),
        (pa.types.is_int16, "smallint"),
        (pa.types.is_int32, "integer"),
        (pa.types.is_int64, "bigint"),
        (pa.types.is_uint8, "smallint"),
        (pa.types.is_uint16, "integer"),
        (pa.types.is_uint32, "bigint"),
        (pa.types.is_uint64, "numeric(20)"),
        (pa.types.is_float16, "real"),
        (pa.types.is_float32, "real"),
        (pa.types.is_float64, "double precision"),
        (pa.types.is_boolean, "boolean"),
        (pa.types.is_string, "text"),
        (pa.types.is_large_string, "text"),
        (pa.types.is_date, "date"),
        (pa.types.is_time, "time"),
        (pa.types.is_duration, "interval"),
        (pa.types.is_decimal, "numeric"),
        (pa.types.is_binary, "bytea"),
        (pa.types.is_large_binary, "bytea"),
    ]
    for check, pg_type in checks:
        if check(kind):
            return pg_type
    if pa.types.is_timestamp(kind):
        return "timestamptz" if kind.tz else "timestamp"
    if nested(kind):
        return "jsonb"  # as a column of Python lists and dicts is
    return None


# Python types of an object column, most specific first (bool before int, datetime
# before date), and what each becomes in a new table.
_PYTHON_TYPES: list[tuple[type | tuple[type, ...], str]] = [
    (str, "text"),
    ((bool, np.bool_), "boolean"),
    ((int, np.integer), "bigint"),
    ((float, np.floating), "double precision"),
    (decimal.Decimal, "numeric"),
    ((bytes, bytearray, memoryview), "bytea"),
    (uuid.UUID, "uuid"),
    ((dict, list, tuple, np.ndarray), "jsonb"),
    (dt.datetime, "timestamp"),
    (dt.date, "date"),
    (dt.time, "time"),
    (dt.timedelta, "interval"),
]


def _declared_objects(series: pd.Series, name: str) -> str:
    found: set[str] = set()
    for value in series.tolist():
        if is_missing(value):
            continue
        for kind, pg_type in _PYTHON_TYPES:
            if isinstance(value, kind):
                if isinstance(value, dt.datetime) and value.utcoffset() is not None:
                    pg_type = "timestamptz"
                found.add(pg_type)
                break
        else:
            found.add(type(value).__name__)
    if found == {"bigint", "double precision"}:
        return "double precision"
    if found <= {"bigint", "numeric"} and found:
        return "numeric"
    if len(found) == 1 and next(iter(found)) in {t for _, t in _PYTHON_TYPES} | {"timestamptz"}:
        return found.pop()
    if not found:
        return "text"
    raise errors.ToolkitError(
        f"column {name!r} holds values of several kinds ({', '.join(sorted(found))}), so "
        "to_table cannot choose its type - convert it (e.g. .astype(str)) or create the "
        "table yourself and use if_exists='append'"
    )


# COPY -------------------------------------------------------------------------------


Prepare = Callable[[pd.DataFrame], Awaitable[pd.DataFrame]]
"""A step run on each frame before its values are checked (``bulk_insert``'s defaults and
reserved keys)."""


async def copy_frame(
    raw: Any,
    frame: pd.DataFrame | ArrowSource,
    target: str,
    table: str,
    schema: str | None,
    *,
    prepare: Prepare | None = None,
    batch_size: int = BATCH_ROWS,
) -> int:
    """Write ``frame`` into the existing table ``target`` (quoted, maybe qualified): the
    one writer behind ``to_table`` and ``bulk_insert`` of a DataFrame or of Arrow input (a
    Parquet path, a ``RecordBatchReader``, a ``Table``: ``_arrow_in``), which goes a batch
    of ``batch_size`` rows at a time. Returns the number of rows.

    Every value is checked against the table's real column types (nanoseconds, time
    zones, JSON...) and a value its column cannot hold exactly is refused by column, row
    and type before its COPY; the caller's transaction makes it all or nothing.
    """
    if isinstance(frame, pd.DataFrame):
        return await copy_frames(raw, _one(frame), target, table, schema, prepare=prepare)
    with arrow_input(frame, batch_size) as source:
        return await copy_frames(raw, source.frames(), target, table, schema, prepare=prepare)


async def _one(frame: pd.DataFrame) -> AsyncGenerator[pd.DataFrame, None]:
    yield frame


async def copy_frames(
    raw: Any,
    frames: AsyncGenerator[pd.DataFrame, None],
    target: str,
    table: str,
    schema: str | None,
    *,
    prepare: Prepare | None = None,
) -> int:
    """Write each of ``frames`` with its own COPY, one frame in memory at a time (the next
    is asked for once the last is in); a refusal names the row by its position in all
    of them. Returns the number of rows."""
    targets = await target_types(raw, target)
    written = 0
    async with contextlib.aclosing(frames), _pinned_settings(raw):
        async for given in frames:
            frame = given if prepare is None else await prepare(given)
            _refuse_unknown(frame, targets, table)
            arrow = arrow_for_copy(frame, targets, first=written)
            await _copy_csv(raw, arrow, table, schema, frame.index, targets, written)
            written += arrow.num_rows
    return written


def _refuse_unknown(frame: pd.DataFrame, targets: Mapping[str, Target], table: str) -> None:
    """A column the table lacks, refused with the table's columns and the fix before a
    row is sent."""
    names = [checked(str(c), "column name") for c in frame.columns]  # a bad name: that first
    unknown = [n for n in names if n not in targets]
    if unknown:
        raise errors.UndefinedColumn(
            f"table {table!r} has no column {unknown[0]!r} (its columns: "
            f"{', '.join(targets)}) - add it to the table (ALTER TABLE ... ADD COLUMN) or "
            "leave it out of the input",
            sqlstate="42703",
        )


async def copy_arrow(
    raw: Any,
    arrow: pa.Table,
    table: str,
    schema: str | None,
    *,
    index: pd.Index | None = None,
    targets: Mapping[str, Target] | None = None,
) -> None:
    """COPY an ``arrow_for_copy`` table into ``table``: CSV written by Arrow's C++ writer,
    no Python object per cell. Unquoted empty fields are NULL; empty strings are quoted.
    Runs inside the caller's transaction, with the settings that read its text pinned for
    its duration (``_COPY_IN_SETTINGS``). A value the server refuses raises the
    toolkit's error for its SQLSTATE, naming the column, the row (its position in
    ``index``) and the type."""
    async with _pinned_settings(raw):
        await _copy_csv(raw, arrow, table, schema, index, targets or {}, 0)


async def _copy_csv(
    raw: Any,
    arrow: pa.Table,
    table: str,
    schema: str | None,
    index: pd.Index | None,
    targets: Mapping[str, Target],
    first: int,
) -> None:
    """One COPY of ``arrow`` as CSV (its first row is row ``first`` of the input)."""
    options = pcsv.WriteOptions(include_header=False, quoting_style="needed")

    async def chunks() -> AsyncIterator[bytes]:
        # One COPY fed in slices: PostgreSQL parses a slice while the next is written.
        for batch in arrow.to_batches(max_chunksize=_COPY_IN_ROWS):
            buffer = io.BytesIO()
            pcsv.write_csv(pa.Table.from_batches([batch]), buffer, options)
            yield buffer.getvalue()

    columns = [checked(n, "column name") for n in arrow.column_names]
    checked(table, "table name")
    if schema is not None:
        checked(schema, "schema name")
    try:
        await raw.copy_to_table(
            table, source=chunks(), columns=columns, schema_name=schema, format="csv"
        )
    except PostgresError as exc:
        raise located(exc, index, targets, first) from None


@contextlib.asynccontextmanager
async def _pinned_settings(raw: Any) -> AsyncIterator[None]:
    """``_COPY_IN_SETTINGS`` for the COPYs inside, the session's own put back after."""
    saved = await session_settings(raw, _COPY_IN_SETTINGS)
    await set_local(raw, _COPY_IN_SETTINGS)
    yield
    # Restored only on success: a failed COPY aborts the transaction, whose rollback
    # reverts this transaction-local setting (restoring it then would fail, and hide
    # the COPY's own error behind "current transaction is aborted").
    await set_local(raw, saved)


_COPY_IN_SETTINGS = {"TimeZone": "UTC", "DateStyle": "ISO, YMD", "IntervalStyle": "postgres"}
"""How the server reads the text written here: naive timestamps into timestamptz as UTC,
intervals and dates in the form they are written in - whatever the session set (under
``IntervalStyle = sql_standard`` '-1 days +23:59:57' would read as -(1 day 23:59:57))."""


# PostgreSQL's COPY error context: 'COPY t, line 3, column v: "..."' (line 1 = first row).
_CONTEXT = re.compile(r", line (\d+)(?:, column ([^:]+))?")


def located(
    exc: PostgresError, index: pd.Index | None, targets: Mapping[str, Target], first: int = 0
) -> errors.ToolkitError:
    """The toolkit error for a COPY's ``exc`` (its class by SQLSTATE), prefixed with the
    column, row and type the server's context names (the COPY's first row is row
    ``first`` of the input, ``index``'s first row); as it is when the context says none
    (another server language: the server's context is kept in the message)."""
    fault = errors.fault_of(exc)  # a time limit or a lost connection is not about a row
    if fault is not None:
        return fault
    mapped = errors.from_dbapi_error(exc)
    code = getattr(exc, "sqlstate", None)
    if mapped is None:
        mapped = errors.DatabaseError(str(exc).splitlines()[0], sqlstate=code)
        mapped.original = exc
    context = str(getattr(exc, "context", None) or "").splitlines()
    match = _CONTEXT.search(context[0]) if context else None
    if match is None:
        where = f" ({context[0]})" if context else ""
        located = type(mapped)(f"{mapped}{where}", sqlstate=code)
    else:
        position = int(match.group(1)) - 1
        column = match.group(2)
        row = row_text(position, index, first) if index is not None else f"row {first + position}"
        target = targets.get(column) if column else None
        prefix = f"column {column!r}, {row}" if column else row
        into = f" into {target.declared}" if target is not None else ""
        located = type(mapped)(f"{prefix}{into}: {mapped}", sqlstate=code)
    located.original = exc
    return located
