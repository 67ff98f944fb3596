"""Reading: ``df`` and ``stream_df``, and the row path (rows over the binary protocol
into Arrow columns). Which path a query takes is ``_estimate``'s; the COPY path is
``_copy_out``."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from contextlib import nullcontext
from typing import Any

import pandas as pd
from sqlalchemy.ext.asyncio import AsyncSession

from toolkit import errors
from toolkit.database import (
    Database,
    StatementAttempt,
    driver_connection,
    get_database,
    naming_close_tables,
    statement_attempts,
)
from toolkit.frames import _copy_out
from toolkit.frames._assemble import build_frame
from toolkit.frames._columns import column_from_values
from toolkit.frames._estimate import estimate, use_copy
from toolkit.frames._parallel import Parallel, check_parallel, parallel_chunks, parallel_frame
from toolkit.frames._types import Column, DtypeBackend, columns_from_attributes
from toolkit.runtime import in_notebook, interruptible, progress_bar
from toolkit.sql import (
    Query,
    plannable,
    prepare,
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
    parallel: Parallel = None,
    partition_on: str | None = None,
) -> pd.DataFrame:
    """Run ``query`` and return its rows as a DataFrame.

    ``query`` is a Core or ORM ``Select`` (an entity's columns become the frame's columns)
    or SQL text with ``:named`` parameters bound from ``params`` - never formatted in.
    With ``session`` it runs inside that session's transaction (it sees uncommitted rows).
    ``dtype_backend="pyarrow"`` gives ``ArrowDtype`` columns (the README's type table).
    A read whose connection is lost (a server restart) runs once more on a new one.

    ``parallel=N`` reads over N connections sharing one snapshot: the frame is the one a
    single read of that moment gives, whatever is written meanwhile. A scan of one table
    is split by block ranges; any other query needs ``partition_on``, an integer, date or
    timestamp column of the result. Row order is the query's when its ORDER BY starts
    with ``partition_on``, and otherwise not defined. ``parallel="auto"`` chooses N from
    the planner's estimate and the server's limits (one for a small result). Where a
    split is impossible (behind a transaction-mode pooler, inside ``session``...) the
    query is read in one stream, and a ``ToolkitWarning`` says why, once.
    """
    check_parallel(parallel, partition_on)
    sql, args = sql_and_args(query, params)
    frame: pd.DataFrame | None = None
    async with naming_close_tables(sql, session, database):
        with errors.translated():
            if parallel not in (None, 1):
                # (A read in parts delivers nothing before its end: a lost connection
                # reads the whole once more, all parts on new connections.)
                for attempt in statement_attempts(session, reads=True):
                    with attempt:
                        frame = await parallel_frame(
                            sql, args, parallel, partition_on, session, database, dtype_backend
                        )
                if frame is not None:
                    return frame
            for attempt in statement_attempts(session, reads=_reads(sql, database)):
                with attempt:
                    async with driver_connection(session, database) as raw:
                        # In a caller's transaction, a savepoint: a failing query is undone
                        # alone and the session stays usable, its uncommitted work intact.
                        guard = raw.transaction() if raw.is_in_transaction() else nullcontext()
                        async with guard:
                            prepared = await prepare(raw, sql)
                            columns = columns_from_attributes(prepared.get_attributes())
                            _require_rows(columns)
                            copy = await use_copy(raw, sql, args, columns)
                            attempt.sending(raw)
                            if copy:
                                frame = await _copy_out.via_copy(
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
    parallel: Parallel = None,
    partition_on: str | None = None,
) -> AsyncIterator[pd.DataFrame]:
    """Yield the result in DataFrames of at most ``chunk_size`` rows.

    Memory stays bounded by the chunk size whatever the result's size: COPY is read
    only as fast as the chunks are consumed (results with types COPY cannot carry use a
    server-side cursor instead). ``progress`` shows a bar (default: on in a notebook,
    off in scripts). Chunks have ``tk.df``'s dtypes, except that an unconstrained
    ``numeric`` column's decimal scale is that of each chunk. A read whose connection is
    lost before its first chunk runs once more on a new one.

    ``parallel`` and ``partition_on`` read over several connections as ``tk.df`` does;
    chunks then come as the connections deliver them (in the query's order only when its
    ORDER BY starts with ``partition_on``), each connection holding a few.
    """
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    check_parallel(parallel, partition_on)
    sql, args = sql_and_args(query, params)
    show = in_notebook() if progress is None else progress
    async with naming_close_tables(sql, session, database):
        with errors.translated():
            if parallel not in (None, 1):
                streamed = False
                for attempt in statement_attempts(session, reads=True):
                    with attempt:
                        parts = parallel_chunks(
                            sql,
                            args,
                            parallel,
                            partition_on,
                            session,
                            database,
                            chunk_size,
                            dtype_backend,
                        )
                        async with contextlib.aclosing(parts):
                            first = await anext(parts, None)
                            if first is not None:
                                streamed = True
                                attempt.delivering()
                                bar = progress_bar(None, show, "stream_df")
                                try:
                                    bar.update(len(first))
                                    yield first
                                    async for chunk in parts:
                                        assert chunk is not None
                                        bar.update(len(chunk))
                                        yield chunk
                                finally:
                                    bar.close()
                if streamed:
                    return
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
        columns = columns_from_attributes(prepared.get_attributes())
        _require_rows(columns)
        bar = progress_bar(None, show, "stream_df")
        try:
            copy = (
                all(c.copy_safe for c in columns)
                and plannable(sql)
                and not (await estimate(raw, sql, args))[1]
            )
            attempt.sending(raw)
            if copy:
                chunks = _copy_out.stream_copy(raw, sql, args, columns, chunk_size, backend)
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


def _from_records(
    columns: Sequence[Column], records: Sequence[Any], backend: DtypeBackend
) -> pd.DataFrame:
    by_column = list(zip(*records, strict=True)) if records else [()] * len(columns)
    data = [column_from_values(c, v, backend) for c, v in zip(columns, by_column, strict=True)]
    return build_frame(columns, data, backend)
