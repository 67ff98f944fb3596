"""The public functions: ``df``, ``stream_df``, ``to_table`` and ``to_dataframe``.

The row path (rows over the binary protocol into Arrow columns) and the notebook niceties
live here too; the COPY path is in ``copy_out``, ``to_table``'s COPY in ``copy_in``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Mapping, Sequence
from contextlib import nullcontext
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import inspect
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession

from toolkit import errors, pgtypes
from toolkit import frames as _package  # _via_copy patched on the package applies here
from toolkit.database import (
    Database,
    StatementAttempt,
    driver_connection,
    get_database,
    naming_close_tables,
    statement_attempts,
)
from toolkit.frames.copy_in import column_types_of, copy_frame
from toolkit.frames.copy_out import _estimate, _stream_copy, _use_copy
from toolkit.pgtypes import Column, DtypeBackend
from toolkit.runtime import in_notebook, interruptible, progress_bar
from toolkit.sql import (
    Query,
    plannable,
    prepare,
    qualified,
    quote,
    reads_only,
    sql_and_args,
)


@interruptible
async def df(
    query: Query,
    params: Mapping[str, Any] | None = None,
    *,
    session: AsyncSession | None = None,
    database: Database | None = None,
    dtype_backend: DtypeBackend = "numpy_nullable",
) -> pd.DataFrame:
    """Run ``query`` and return its rows as a DataFrame.

    ``query`` is a Core or ORM ``Select`` (an entity's columns become the frame's columns)
    or SQL text with ``:named`` parameters bound from ``params`` - never formatted in.
    With ``session`` it runs inside that session's transaction (it sees uncommitted rows).
    ``dtype_backend="pyarrow"`` gives ``ArrowDtype`` columns (see ``toolkit.pgtypes``).
    A read whose connection is lost (a server restart) runs once more on a new one.
    """
    sql, args = sql_and_args(query, params)
    frame: pd.DataFrame | None = None
    async with naming_close_tables(sql, session, database):
        with errors.translated():
            for attempt in statement_attempts(session, reads=_reads(sql, database)):
                with attempt:
                    async with driver_connection(session, database) as raw:
                        # In a caller's transaction, a savepoint: a failing query is undone
                        # alone and the session stays usable, its uncommitted work intact.
                        guard = raw.transaction() if raw.is_in_transaction() else nullcontext()
                        async with guard:
                            prepared = await prepare(raw, sql)
                            columns = pgtypes.columns_from_attributes(prepared.get_attributes())
                            _require_rows(columns)
                            copy = await _use_copy(raw, sql, args, columns)
                            attempt.sending(raw)
                            if copy:
                                frame = await _package._via_copy(
                                    raw, sql, args, columns, dtype_backend
                                )
                            if frame is None:
                                records = await prepared.fetch(*args)
                                frame = _from_records(columns, records, dtype_backend)
    assert frame is not None  # statement_attempts raises unless an attempt got through
    return frame


def _require_rows(columns: Sequence[Column]) -> None:
    if not columns:
        raise errors.ToolkitError(
            "df() reads rows and this statement returns none - run it with tk.execute(...), "
            "which gives the number of rows it changed"
        )


def _reads(sql: str, database: Database | None) -> bool:
    """Whether ``sql`` cannot write: by its text, or because the server refuses writes."""
    return reads_only(sql) or (database or get_database()).read_only


async def stream_df(
    query: Query,
    params: Mapping[str, Any] | None = None,
    *,
    chunk_size: int = 50_000,
    session: AsyncSession | None = None,
    database: Database | None = None,
    dtype_backend: DtypeBackend = "numpy_nullable",
    progress: bool | None = None,
) -> AsyncIterator[pd.DataFrame]:
    """Yield the result in DataFrames of at most ``chunk_size`` rows.

    Memory stays bounded by the chunk size whatever the result's size: COPY is read
    only as fast as the chunks are consumed (results with types COPY cannot carry use a
    server-side cursor instead). ``progress`` shows a bar (default: on in a notebook,
    off in scripts). Chunks have ``tk.df``'s dtypes, except that an unconstrained
    ``numeric`` column's decimal scale is that of each chunk. A read whose connection is
    lost before its first chunk runs once more on a new one.
    """
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    sql, args = sql_and_args(query, params)
    show = in_notebook() if progress is None else progress
    async with naming_close_tables(sql, session, database):
        with errors.translated():
            for attempt in statement_attempts(session, reads=_reads(sql, database)):
                with attempt:
                    async with driver_connection(session, database) as raw:
                        chunks = _stream_chunks(
                            raw, attempt, sql, args, chunk_size, dtype_backend, show
                        )
                        async with contextlib.aclosing(chunks):
                            async for chunk in chunks:
                                yield chunk


async def _stream_chunks(
    raw: Any,
    attempt: StatementAttempt,
    sql: str,
    args: Sequence[Any],
    chunk_size: int,
    backend: DtypeBackend,
    show: bool,
) -> AsyncGenerator[pd.DataFrame, None]:
    """``stream_df``'s chunks on one connection: COPY, else a cursor, else one fetch."""
    transaction = raw.transaction() if not raw.is_in_transaction() else nullcontext()
    async with transaction:  # a cursor (or pinned COPY settings) lives in one
        prepared = await prepare(raw, sql)
        columns = pgtypes.columns_from_attributes(prepared.get_attributes())
        _require_rows(columns)
        bar = progress_bar(None, show, "stream_df")
        try:
            copy = (
                all(c.copy_safe for c in columns)
                and plannable(sql)
                and not (await _estimate(raw, sql, args))[1]
            )
            attempt.sending(raw)
            if copy:
                chunks = _stream_copy(raw, sql, args, columns, chunk_size, backend)
            elif plannable(sql):
                chunks = _stream_cursor(prepared, args, columns, chunk_size, backend)
            else:  # SHOW, EXPLAIN...: no cursor over those; their results are small
                chunks = _stream_fetched(prepared, args, columns, chunk_size, backend)
            async with contextlib.aclosing(chunks):
                async for chunk in chunks:
                    attempt.delivering()
                    bar.update(len(chunk))
                    yield chunk
        finally:
            bar.close()


async def _stream_cursor(
    prepared: Any,
    args: Sequence[Any],
    columns: Sequence[Column],
    chunk_size: int,
    backend: DtypeBackend,
) -> AsyncGenerator[pd.DataFrame, None]:
    cursor = await prepared.cursor(*args)
    while True:
        records = await cursor.fetch(chunk_size)
        if not records:
            return
        yield _from_records(columns, records, backend)
        if len(records) < chunk_size:
            return


async def _stream_fetched(
    prepared: Any,
    args: Sequence[Any],
    columns: Sequence[Column],
    chunk_size: int,
    backend: DtypeBackend,
) -> AsyncGenerator[pd.DataFrame, None]:
    records = await prepared.fetch(*args)
    for start in range(0, len(records), chunk_size):
        yield _from_records(columns, records[start : start + chunk_size], backend)


@interruptible
async def to_table(
    frame: pd.DataFrame,
    table: str,
    *,
    schema: str | None = None,
    if_exists: str = "fail",
    session: AsyncSession | None = None,
    database: Database | None = None,
) -> int:
    """Write ``frame`` to ``table`` with COPY FROM STDIN; returns the number of rows.

    Native columns go to Arrow and then to CSV in C++, with no Python object per cell;
    object columns (Decimal, dicts, bytes...) take one Python pass. ``if_exists``:
    ``"fail"`` (the default), ``"append"``, or ``"replace"`` (drop and recreate). A missing
    table is created from the frame's dtypes. A value its column cannot hold exactly is
    refused, naming column, row and type (the README's "Bulk operations"). All of it
    happens in one transaction: on error nothing is written.
    """
    if if_exists not in ("fail", "append", "replace"):
        raise ValueError('if_exists must be "fail", "append" or "replace"')
    # Every name checked (InvalidIdentifier) and quoted before anything is sent.
    target = qualified(table, schema)
    names = [quote(str(n), "column name") for n in frame.columns]
    with errors.translated():
        async with (
            driver_connection(session, database, write=True, refuse_on_standby="to_table") as raw,
            raw.transaction(),  # a savepoint inside the caller's transaction
        ):
            exists = await raw.fetchval("SELECT to_regclass($1) IS NOT NULL", target)
            if exists and if_exists == "fail":
                raise errors.ToolkitError(
                    f"table {table!r} already exists - pass if_exists='append' to add "
                    "rows or if_exists='replace' to recreate it"
                )
            if not exists or if_exists == "replace":
                types = column_types_of(frame)  # refuses a column it cannot type
                definition = ", ".join(f"{n} {t}" for n, (_, t) in zip(names, types, strict=True))
                if exists:
                    await raw.execute(f"DROP TABLE {target}")
                await raw.execute(f"CREATE TABLE {target} ({definition})")
            # A refusal rolls back the CREATE with everything else.
            return await copy_frame(raw, frame, target, table, schema)


def to_dataframe(items: Iterable[Any]) -> pd.DataFrame:
    """Models, rows, mappings or tuples already in memory -> DataFrame (no I/O).

    For models only loaded column values are used; nothing is lazily loaded.
    """
    items = list(items)
    if not items:
        return pd.DataFrame()
    first = items[0]
    if isinstance(first, Row):
        return pd.DataFrame.from_records([tuple(r) for r in items], columns=list(first._fields))
    if isinstance(first, Mapping):
        return pd.DataFrame.from_records(items)
    mapper = inspect(type(first), raiseerr=False)
    if mapper is not None and hasattr(mapper, "column_attrs"):
        keys = list(mapper.column_attrs.keys())
        records = []
        for obj in items:
            loaded = inspect(obj).dict
            records.append({key: loaded.get(key) for key in keys})
        return pd.DataFrame.from_records(records, columns=keys)
    return pd.DataFrame.from_records(items)


def exact_frame(rows: Sequence[Any], columns: Sequence[str]) -> pd.DataFrame:
    """Rows of Python values (a page's ``Row``s, a statement's records) as a frame whose
    columns ``pd.array`` infers from the exact values (``Int64`` with ``<NA>``...):
    ``from_records`` made an int column holding NULL floats (an int8 lost digits) and
    NULL text NaN. Each column is 1-d even when its values are lists."""
    arrays = {}
    for i in range(len(columns)):
        values = np.empty(len(rows), dtype=object)
        values[:] = [row[i] for row in rows]
        arrays[i] = pd.array(values)
    frame = pd.DataFrame(arrays, index=pd.RangeIndex(len(rows)))
    frame.columns = pd.Index(list(columns))
    return frame


def _from_records(
    columns: Sequence[Column], records: Sequence[Any], backend: DtypeBackend
) -> pd.DataFrame:
    by_column = list(zip(*records, strict=True)) if records else [()] * len(columns)
    data = [
        pgtypes.column_from_values(c, v, backend) for c, v in zip(columns, by_column, strict=True)
    ]
    return pgtypes.frame(columns, data, backend)
