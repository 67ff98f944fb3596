"""Queries to pandas DataFrames, and DataFrames to tables, at full speed.

How ``tk.df`` chooses its path (the rule is the same for every query):

* It asks PostgreSQL's planner for the row estimate (``EXPLAIN``, cached per statement
  text). Below ``COPY_THRESHOLD`` estimated rows - or when a column has a type COPY's
  text cannot carry exactly, or the statement writes - rows come over the binary
  protocol (one prepared statement; a 1-row query costs about a plain execute).
* From ``COPY_THRESHOLD`` rows up, ``COPY (query) TO STDOUT (FORMAT csv)`` streams
  through the asyncpg connection the session already holds, and Arrow's C++ CSV reader
  parses it in a worker thread *while* it arrives.

Both paths build the same Arrow columns (``toolkit.pgtypes``), so a query gives the same
dtypes however many rows it returns. Parameters are always bound: the row path sends them
to the server as bind values; COPY cannot take bind values, so asyncpg has the server
quote them (``quote_literal`` of the encoded value) - user values are never formatted into
SQL by Python.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import io
import json
import queue
import re
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Mapping, Sequence
from contextlib import nullcontext
from typing import Any, cast

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
from sqlalchemy import bindparam, inspect, text
from sqlalchemy.engine import Dialect, Row
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import ClauseElement, Executable
from sqlalchemy.sql.compiler import SQLCompiler

from toolkit import errors, pgtypes
from toolkit.database import Database, driver_connection
from toolkit.notebook.interrupt import interruptible
from toolkit.pgtypes import Column, DtypeBackend

__all__ = ["COPY_THRESHOLD", "df", "stream_df", "to_dataframe", "to_table"]

Query = str | Executable

COPY_THRESHOLD = 2_000
"""Estimated rows from which ``tk.df`` reads through COPY instead of row by row."""

# COPY's text depends on these settings; they are pinned for the COPY and restored after.
_COPY_SETTINGS = {"DateStyle": "ISO, YMD", "TimeZone": "UTC", "extra_float_digits": "1"}
_COPY_IN_ROWS = 65_536
"""Rows per CSV slice sent to COPY FROM STDIN."""
_FEED_LIMIT = 2 << 20
"""Bytes of COPY output that may wait for the parser while streaming."""
_BATCHES_AHEAD = 2
"""Parsed batches that may wait for the consumer while streaming."""
_ESTIMATES: OrderedDict[str, tuple[float, float, bool]] = OrderedDict()
_ESTIMATES_KEPT = 512
_ESTIMATE_TTL = 10.0
"""Seconds a row estimate is reused: repeated small queries skip the EXPLAIN round trip,
and a table that grows is re-estimated soon after."""


# Public API ------------------------------------------------------------------------


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
    """
    statement = _statement(query, params)
    with errors.translated():
        async with driver_connection(session, database) as raw:
            # In a caller's transaction, a savepoint: a failing query is undone alone and
            # the session stays usable, its uncommitted work intact.
            guard = raw.transaction() if raw.is_in_transaction() else nullcontext()
            async with guard:
                sql, args = _compile(statement, params)
                prepared = await _prepare(raw, sql)
                columns = pgtypes.columns_from_attributes(prepared.get_attributes())
                _require_rows(columns)
                if await _use_copy(raw, sql, args, columns):
                    result = await _via_copy(raw, sql, args, columns, dtype_backend)
                    if result is not None:
                        return result
                return _from_records(columns, await prepared.fetch(*args), dtype_backend)


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
    ``numeric`` column's decimal scale is that of each chunk.
    """
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    statement = _statement(query, params)
    show = _in_notebook() if progress is None else progress
    with errors.translated():
        async with driver_connection(session, database) as raw:
            sql, args = _compile(statement, params)
            transaction = raw.transaction() if not raw.is_in_transaction() else nullcontext()
            async with transaction:  # a cursor (or pinned COPY settings) lives in one
                prepared = await _prepare(raw, sql)
                columns = pgtypes.columns_from_attributes(prepared.get_attributes())
                _require_rows(columns)
                bar = _progress_bar(show)
                try:
                    if (
                        all(c.copy_safe for c in columns)
                        and _plannable(sql)
                        and not (await _estimate(raw, sql, args))[1]
                    ):
                        chunks = _stream_copy(raw, sql, args, columns, chunk_size, dtype_backend)
                    elif _plannable(sql):
                        chunks = _stream_cursor(prepared, args, columns, chunk_size, dtype_backend)
                    else:  # SHOW, EXPLAIN...: no cursor over those; their results are small
                        chunks = _stream_fetched(prepared, args, columns, chunk_size, dtype_backend)
                    async with contextlib.aclosing(chunks):
                        async for chunk in chunks:
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


async def _stream_copy(
    raw: Any,
    sql: str,
    args: Sequence[Any],
    columns: Sequence[Column],
    chunk_size: int,
    backend: DtypeBackend,
) -> AsyncGenerator[pd.DataFrame, None]:
    """COPY parsed in a worker thread, with back-pressure both ways.

    The socket is read only while fewer than ``_FEED_LIMIT`` bytes await parsing, and
    the parser stops while ``_BATCHES_AHEAD`` parsed batches await the consumer, so
    memory is a few chunks whatever the size of the result.
    """
    loop = asyncio.get_running_loop()
    feed = _Feed(limit=_FEED_LIMIT)
    batches: asyncio.Queue[pa.RecordBatch | BaseException | None] = asyncio.Queue()
    room = threading.Semaphore(_BATCHES_AHEAD)
    stop = threading.Event()

    def parse() -> None:
        try:
            try:
                reader = pcsv.open_csv(
                    feed,
                    read_options=_read_options(columns),
                    convert_options=_csv_options(columns),
                    memory_pool=_streaming_pool(),
                )
            except pa.ArrowInvalid:
                if feed.received:
                    raise
                loop.call_soon_threadsafe(batches.put_nowait, None)  # no rows at all
                return
            for batch in reader:
                while not room.acquire(timeout=0.1):
                    if stop.is_set():
                        return
                if stop.is_set():
                    return
                loop.call_soon_threadsafe(batches.put_nowait, batch)
            loop.call_soon_threadsafe(batches.put_nowait, None)
        except BaseException as exc:  # handed to the consumer, raised there
            feed.abandon()
            if not stop.is_set():
                loop.call_soon_threadsafe(batches.put_nowait, exc)

    await _set(raw, _COPY_SETTINGS)  # inside stream_df's transaction: reverted at its end
    parser = loop.run_in_executor(None, parse)
    copying = asyncio.ensure_future(raw.copy_from_query(sql, *args, output=feed.put, format="csv"))
    copying.add_done_callback(lambda _: feed.end())
    pending: list[pa.RecordBatch] = []
    rows = 0
    try:
        while True:
            item = await batches.get()
            if item is None:
                break
            if isinstance(item, BaseException):
                await copying  # a server error explains a parse failure best
                raise item
            room.release()
            pending.append(item)
            rows += item.num_rows
            while rows >= chunk_size:
                table = pa.Table.from_batches(pending)
                head, rest = table.slice(0, chunk_size), table.slice(chunk_size)
                pending, rows = rest.to_batches(), rows - chunk_size
                yield _frame_from_table(columns, head, backend)
        if rows:
            yield _frame_from_table(columns, pa.Table.from_batches(pending), backend)
        await copying
    finally:
        stop.set()
        feed.abandon()
        if not copying.done():
            copying.cancel()
        with contextlib.suppress(BaseException):
            await copying
        await parser


def _streaming_pool() -> pa.MemoryPool:
    """jemalloc for streamed batches: it hands short-lived buffers back for reuse, where
    Arrow's default (mimalloc) grew peak memory ~2x over a long stream in our benchmark."""
    try:
        return pa.jemalloc_memory_pool()
    except NotImplementedError:  # a pyarrow build without jemalloc
        return pa.default_memory_pool()


def _frame_from_table(
    columns: Sequence[Column], table: pa.Table, backend: DtypeBackend
) -> pd.DataFrame:
    data = [pgtypes.column_from_text(c, table.column(i)) for i, c in enumerate(columns)]
    return pgtypes.frame(columns, data, backend)


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

    The frame goes to Arrow and then to CSV in C++, with no Python object per cell.
    ``if_exists``: ``"fail"`` (the default), ``"append"``, or ``"replace"`` (drop and
    recreate). A missing table is created from the frame's dtypes. All of it happens in
    one transaction: on error nothing is written.
    """
    if if_exists not in ("fail", "append", "replace"):
        raise ValueError('if_exists must be "fail", "append" or "replace"')
    original = pa.Table.from_pandas(frame, preserve_index=False)
    converted = csv_ready(original)
    if converted is None:
        raise errors.ToolkitError(
            "to_table cannot write a column of this frame through COPY (bytes, UUID objects "
            "or nested values) - convert it (e.g. .astype(str)), or use tk.bulk_insert"
        )
    arrow = converted
    columns = [
        (name, _pg_type_for(field.type, name))  # the types as given, before csv_ready
        for name, field in zip(original.column_names, original.schema, strict=True)
    ]
    with errors.translated():
        async with (
            driver_connection(session, database, write=True) as raw,
            raw.transaction(),  # a savepoint inside the caller's transaction
        ):
            exists = await raw.fetchval(
                "SELECT to_regclass($1) IS NOT NULL", _qualified(table, schema)
            )
            if exists and if_exists == "fail":
                raise errors.ToolkitError(
                    f"table {table!r} already exists - pass if_exists='append' to add "
                    "rows or if_exists='replace' to recreate it"
                )
            if exists and if_exists == "replace":
                await raw.execute(f"DROP TABLE {_qualified(table, schema)}")
            if not exists or if_exists == "replace":
                definition = ", ".join(f"{_quote(n)} {t}" for n, t in columns)
                await raw.execute(f"CREATE TABLE {_qualified(table, schema)} ({definition})")
            await copy_arrow(raw, arrow, table, schema)
    return int(arrow.num_rows)


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

    saved = await raw.fetchval("SELECT current_setting('TimeZone')")
    await _set(raw, {"TimeZone": "UTC"})
    try:
        await raw.copy_to_table(
            table,
            source=chunks(),
            columns=list(arrow.column_names),
            schema_name=schema,
            format="csv",
        )
    finally:
        await _set(raw, {"TimeZone": saved})


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


# Statements ------------------------------------------------------------------------


def _statement(query: Query, params: Mapping[str, Any] | None) -> Executable:
    if not isinstance(query, str):
        return query
    statement = text(query)
    if params:
        # Typed binds: asyncpg then gets `$1::INTEGER`, not an untyped text parameter
        # ("select :n" with n=1 would otherwise fail with "expected str, got int").
        statement = statement.bindparams(*(bindparam(k, v) for k, v in params.items()))
    return statement


def _compile(statement: Executable, params: Mapping[str, Any] | None) -> tuple[str, list[Any]]:
    """SQL with ``$n`` placeholders and the bind values, as SQLAlchemy would send them."""
    dialect = _dialect()
    compiled = cast(
        SQLCompiler,
        cast(ClauseElement, statement).compile(
            dialect=dialect, compile_kwargs={"render_postcompile": True}
        ),
    )
    values = compiled.construct_params(dict(params) if params else None) or {}
    processors: Mapping[str, Any] = compiled._bind_processors
    args = []
    for name in compiled.positiontup or ():
        value = values[name]
        processor = processors.get(name) or processors.get(name.rsplit("_", 1)[0])
        args.append(processor(value) if processor is not None else value)
    return compiled.string, args


_DIALECT: list[Dialect] = []


def _dialect() -> Dialect:
    if not _DIALECT:
        from sqlalchemy.dialects.postgresql.asyncpg import dialect

        _DIALECT.append(dialect())  # type: ignore[no-untyped-call]
    return _DIALECT[0]


def _require_rows(columns: Sequence[Column]) -> None:
    if not columns:
        raise errors.ToolkitError(
            "df() needs a statement that returns rows - use a session's execute() for others"
        )


async def _prepare(raw: Any, sql: str) -> Any:
    """A prepared statement from asyncpg's per-connection statement cache.

    ``Connection.prepare`` always makes a new server-side statement (a round trip);
    the cached form is what ``fetch`` uses internally, and is invalidated by asyncpg
    itself when the schema changes.
    """
    cached_prepare = getattr(raw, "_prepare", None)
    if cached_prepare is not None:
        return await cached_prepare(sql, use_cache=True)
    return await raw.prepare(sql)


# The row path ----------------------------------------------------------------------


def _from_records(
    columns: Sequence[Column], records: Sequence[Any], backend: DtypeBackend
) -> pd.DataFrame:
    by_column = list(zip(*records, strict=True)) if records else [()] * len(columns)
    data = [pgtypes.column_from_values(c, v) for c, v in zip(columns, by_column, strict=True)]
    return pgtypes.frame(columns, data, backend)


# The COPY path ---------------------------------------------------------------------


_PLANNABLE = ("select", "with", "values", "table")
_LEADING_NOISE = re.compile(r"^(?:\s+|\(|--[^\n]*\n?|/\*.*?\*/)*", re.DOTALL)


def _plannable(sql: str) -> bool:
    """True for queries EXPLAIN and COPY accept (not EXPLAIN, SHOW, FETCH...): judged by
    the first keyword, as a failing EXPLAIN would abort the caller's transaction."""
    head = _LEADING_NOISE.sub("", sql, count=1)[:6].lower()
    return head.startswith(_PLANNABLE)


async def _use_copy(raw: Any, sql: str, args: Sequence[Any], columns: Sequence[Column]) -> bool:
    if not all(c.copy_safe for c in columns) or not _plannable(sql):
        return False
    rows, writes = await _estimate(raw, sql, args)
    return rows >= COPY_THRESHOLD and not writes


async def _estimate(raw: Any, sql: str, args: Sequence[Any]) -> tuple[float, bool]:
    """The planner's row estimate, and whether the plan modifies data (never re-run)."""
    now = time.monotonic()
    cached = _ESTIMATES.get(sql)
    if cached is not None and now - cached[0] < _ESTIMATE_TTL:
        _ESTIMATES.move_to_end(sql)
        return cached[1], cached[2]
    plan = await raw.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *args)
    top = (json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]
    rows, writes = float(top.get("Plan Rows", 0)), '"ModifyTable"' in json.dumps(top)
    _ESTIMATES[sql] = (now, rows, writes)
    _ESTIMATES.move_to_end(sql)
    if len(_ESTIMATES) > _ESTIMATES_KEPT:
        _ESTIMATES.popitem(last=False)
    return rows, writes


async def _via_copy(
    raw: Any, sql: str, args: Sequence[Any], columns: Sequence[Column], backend: DtypeBackend
) -> pd.DataFrame | None:
    """COPY + Arrow; None when a value does not parse (then the row path answers)."""
    transaction = raw.transaction() if not raw.is_in_transaction() else nullcontext()
    async with transaction:
        saved = await raw.fetchrow(
            "SELECT " + ", ".join(f"current_setting('{name}')" for name in _COPY_SETTINGS)
        )
        await _set(raw, _COPY_SETTINGS)
        try:
            table = await _copy_to_arrow(raw, sql, args, columns)
        finally:
            await _set(raw, dict(zip(_COPY_SETTINGS, saved, strict=True)))
    if table is None:
        return None
    data = [pgtypes.column_from_text(c, table.column(i)) for i, c in enumerate(columns)]
    del table  # frame() releases each column once converted: peak memory stays low
    return pgtypes.frame(columns, data, backend)


async def _set(raw: Any, settings: Mapping[str, str]) -> None:
    calls = ", ".join(f"set_config('{name}', ${i}, true)" for i, name in enumerate(settings, 1))
    await raw.execute(f"SELECT {calls}", *settings.values())


def _read_options(columns: Sequence[Column]) -> pcsv.ReadOptions:
    return pcsv.ReadOptions(column_names=[f"c{i}" for i in range(len(columns))])


def _csv_options(columns: Sequence[Column]) -> pcsv.ConvertOptions:
    return pcsv.ConvertOptions(
        column_types={f"c{i}": c.csv_type for i, c in enumerate(columns)},
        null_values=[""],  # unquoted empty is NULL; '' arrives quoted; "NaN" stays NaN
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,
        true_values=["t"],
        false_values=["f"],
    )


async def _copy_to_arrow(
    raw: Any, sql: str, args: Sequence[Any], columns: Sequence[Column]
) -> pa.Table | None:
    feed = _Feed()
    loop = asyncio.get_running_loop()

    def parse() -> pa.Table | None:
        try:
            reader = pcsv.open_csv(
                feed, read_options=_read_options(columns), convert_options=_csv_options(columns)
            )
            return reader.read_all()
        except pa.ArrowInvalid:
            feed.abandon()  # e.g. 'infinity' or a BC date: let the row path decode it
            return None

    parsing = loop.run_in_executor(None, parse)
    try:
        await raw.copy_from_query(sql, *args, output=feed.put, format="csv")
    finally:
        feed.end()
    result: pa.Table | None = await parsing
    if result is None or result.num_rows or not columns:
        return result
    return pa.table({f"c{i}": pa.array([], type=c.csv_type) for i, c in enumerate(columns)})


class _Feed(io.RawIOBase):
    """Bytes arriving on the event loop, read by Arrow's CSV reader in a worker thread.

    Chunks are handed over whole (joined only when Arrow asks for more than one), so
    each byte is copied once on its way from the socket to Arrow.
    """

    def __init__(self, limit: int | None = None) -> None:
        super().__init__()
        self._chunks: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._pending: collections.deque[bytes] = collections.deque()
        self._pending_size = 0
        self._queued = 0  # bytes put but not yet taken by the reader
        self._limit = limit
        self._ended = False
        self._abandoned = False
        self.received = 0
        """Bytes taken by the reader so far (0: the result had no rows)."""

    async def put(self, chunk: bytes) -> None:
        if self._abandoned:
            return  # the reader gave up: let COPY run out without buffering
        self._queued += len(chunk)
        self._chunks.put(chunk)
        # Back-pressure: stop reading the socket while the parser thread catches up (the
        # counter is shared with that thread, so a short poll, not an asyncio.Event).
        while self._limit is not None and self._queued > self._limit and not self._abandoned:  # noqa: ASYNC110
            await asyncio.sleep(0.001)

    def end(self) -> None:
        self._chunks.put(None)

    def abandon(self) -> None:
        """The reader stops: drop what is queued and what still arrives."""
        self._abandoned = True

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if not self._pending and not self._ended:
            self._take(self._chunks.get())  # wait for data
        while not self._ended and (size < 0 or self._pending_size < size):
            try:  # more is already here: hand Arrow bigger blocks
                self._take(self._chunks.get_nowait())
            except queue.Empty:
                break
        out: list[bytes] = []
        taken = 0
        while self._pending and (size < 0 or taken < size):
            chunk = self._pending.popleft()
            if size >= 0 and taken + len(chunk) > size:
                keep = size - taken
                self._pending.appendleft(chunk[keep:])
                chunk = chunk[:keep]
            out.append(chunk)
            taken += len(chunk)
        self._pending_size -= taken
        return out[0] if len(out) == 1 else b"".join(out)

    def _take(self, chunk: bytes | None) -> None:
        if chunk is None:
            self._ended = True
        else:
            self.received += len(chunk)
            self._queued -= len(chunk)
            self._pending.append(chunk)
            self._pending_size += len(chunk)


# to_table helpers ------------------------------------------------------------------


def _quote(name: str) -> str:
    return str(_dialect().identifier_preparer.quote(name))


def _qualified(table: str, schema: str | None) -> str:
    return f"{_quote(schema)}.{_quote(table)}" if schema else _quote(table)


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


# Notebook niceties -----------------------------------------------------------------


def _in_notebook() -> bool:
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    ipython = getattr(shell, "get_ipython", lambda: None)()
    return ipython is not None and "IPKernelApp" in getattr(ipython, "config", {})


def _progress_bar(enabled: bool) -> Any:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tqdm.auto warns when ipywidgets is missing
        from tqdm.auto import tqdm

        return tqdm(disable=not enabled, unit="rows", desc="stream_df")
