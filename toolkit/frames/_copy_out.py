"""The COPY path: ``COPY (query) TO STDOUT`` (text format) parsed into Arrow while it arrives.

The whole-result read behind ``tk.df`` and the back-pressured stream behind
``tk.stream_df``, with the session settings COPY's text depends on pinned and restored.
(Whether to take the path is ``_estimate``'s.)

Why one module: the read and the stream share the SQL wrapping, the CSV options and the
per-column conversions; apart, each would need the other's internals.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
import threading
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import nullcontext
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pcsv

from toolkit import errors
from toolkit.database import cancel_on_server
from toolkit.frames._assemble import build_frame
from toolkit.frames._columns import SENT, DecimalText, column_from_text, timestamps_from_sent
from toolkit.frames._feed import Feed
from toolkit.frames._types import Column, DtypeBackend

# COPY's text depends on these settings; they are pinned for the COPY and restored after.
_COPY_SETTINGS = {
    "DateStyle": "ISO, YMD",
    "TimeZone": "UTC",
    "extra_float_digits": "1",
    "bytea_output": "hex",
}
_FEED_LIMIT = 1 << 20
"""Bytes of COPY output that may wait for the parser while streaming."""
_READ_LIMIT = 8 << 20
"""The same for a whole read: a parser that falls behind the server does not queue the rest
of the result in memory (bounded peak memory, at no cost in speed: benchmarks/frames.py)."""
_BATCHES_AHEAD = 2
"""Parsed batches that may wait for the consumer while streaming."""


async def via_copy(
    raw: Any, sql: str, args: Sequence[Any], columns: Sequence[Column], backend: DtypeBackend
) -> pd.DataFrame | None:
    """COPY + Arrow; None when a value does not parse (then the row path answers)."""
    transaction = raw.transaction() if not raw.is_in_transaction() else nullcontext()
    async with transaction:
        saved = await session_settings(raw)
        await set_local(raw, _COPY_SETTINGS)
        parsed = await _copy_to_arrow(raw, sql, args, columns, backend)
        # Restored only on success: a failed COPY aborts the transaction, whose end
        # reverts these transaction-local settings anyway.
        await set_local(raw, saved)
    if parsed is None:
        return None
    return _frame_from_arrow(columns, parsed, backend)


async def session_settings(raw: Any, names: Mapping[str, str] = _COPY_SETTINGS) -> dict[str, str]:
    """The session's values of the settings a COPY pins (``names``' keys)."""
    current = ", ".join(f"current_setting('{name}')" for name in names)
    return dict(zip(names, await raw.fetchrow(f"SELECT {current}"), strict=True))


async def set_local(raw: Any, settings: Mapping[str, str]) -> None:
    calls = ", ".join(f"set_config('{name}', ${i}, true)" for i, name in enumerate(settings, 1))
    await raw.execute(f"SELECT {calls}", *settings.values())


def _read_options(
    columns: Sequence[Column], block_size: int | None = None, *, threads: bool = True
) -> pcsv.ReadOptions:
    options = pcsv.ReadOptions(
        column_names=[f"c{i}" for i in range(len(columns))], use_threads=threads
    )
    if block_size is not None:
        options.block_size = block_size
    return options


_STREAM_BLOCK = 128 << 10
"""Bytes per parsed block while streaming (Arrow's default is 1 MiB). With a 1 MiB feed
limit, a 1M-row stream peaked at 38.7-39.3 MB against 41.3-43.0 MB with 256 KiB blocks
(and 47-52 MB with 512 KiB or 2 MiB), for 2-10% more time."""


_PARSE_OPTIONS = pcsv.ParseOptions(
    delimiter="\t", quote_char=False, escape_char=False, ignore_empty_lines=False
)
"""COPY's text format: tab-separated, no quoting. A tab, newline or backslash inside a
value arrives escaped (``\\t``, ``\\n``, ``\\\\``), so every newline ends a row and Arrow
can split its blocks anywhere (CSV's quoted newlines forbid that, and the server formats
CSV about 30% slower). An empty line is a row: a one-column result's ''."""


def _csv_options(columns: Sequence[Column], backend: DtypeBackend) -> pcsv.ConvertOptions:
    return pcsv.ConvertOptions(
        column_types={
            f"c{i}": pa.binary() if c.pg_type in SENT else c.parsed_as(backend)
            for i, c in enumerate(columns)
        },
        null_values=["\\N"],  # NULL; a value that is the text \N arrives as \\N
        strings_can_be_null=True,
        true_values=["t"],
        false_values=["f"],
    )


def _copy_sql(sql: str, columns: Sequence[Column]) -> str:
    """``sql`` as COPY runs it: timestamps selected in their binary form (see
    ``SENT``), by position, so duplicate column names are no trouble. An ORDER BY
    keeps its order: a sorted subquery is scanned as it is, never flattened."""
    if not _special_columns(tuple(columns))[1]:
        return sql
    names = [f"c{i}" for i in range(len(columns))]
    outputs = (
        f"{SENT[c.pg_type]}({name})" if c.pg_type in SENT else name
        for name, c in zip(names, columns, strict=True)
    )
    # (newlines: a trailing -- comment in ``sql`` ends at its own line)
    return f"SELECT {', '.join(outputs)} FROM (\n{sql}\n) AS _q({', '.join(names)})"


def _converted(
    batch: pa.RecordBatch, columns: Sequence[Column], pool: pa.MemoryPool | None = None
) -> pa.RecordBatch:
    """``batch`` with COPY's text-format escapes decoded and sent timestamps converted.

    Only values holding a backslash change, and those are rare: a text column whose bytes
    hold none is kept as it is (one ``memchr`` over its data; NULLs, sent as ``\\N``, are
    no longer in it), and only its values with one are decoded.
    """
    text, sent = _special_columns(tuple(columns))
    escaped = [i for i in text if _has_backslash(batch.column(i))]
    if not escaped and not sent:
        return batch
    arrays = batch.columns
    for i in escaped:
        values = [
            v if v is None or "\\" not in v else _ESCAPE.sub(_decoded, v)
            for v in arrays[i].to_pylist()
        ]
        arrays[i] = pa.array(values, type=arrays[i].type)
    for i in sent:
        arrays[i] = timestamps_from_sent(arrays[i], columns[i].arrow_type, pool)
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


@functools.lru_cache(maxsize=256)
def _special_columns(columns: tuple[Column, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Which columns may hold escapes (text, enums, json) and which arrive sent (binary)."""
    text = tuple(
        i
        for i, c in enumerate(columns)
        if c.pg_type not in ("numeric", "uuid") and pa.types.is_string(c.parsed_as("pyarrow"))
    )
    return text, tuple(i for i, c in enumerate(columns) if c.pg_type in SENT)


def _has_backslash(column: pa.Array) -> bool:
    """Whether a string array's data holds a backslash byte (a copy and a ``memchr``: 25x
    quicker than Arrow's ``match_substring`` kernel over the same values)."""
    data = column.buffers()[2]
    return data is not None and data.to_pybytes().find(b"\\") >= 0


_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
_ESCAPED = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
"""What COPY's text format writes a backslash before (any other character after a
backslash - the backslash itself included - stands for itself)."""


def _decoded(match: re.Match[str]) -> str:
    char = match.group(1)
    return _ESCAPED.get(char, char)


async def _copy_to_arrow(
    raw: Any, sql: str, args: Sequence[Any], columns: Sequence[Column], backend: DtypeBackend
) -> list[Any] | None:
    """The result's columns, parsed while the COPY arrives; None when a value does not
    parse (e.g. 'infinity' or a BC date: the row path decodes those)."""
    parsed = await _copy_parsed(raw, sql, args, columns, backend)
    return None if parsed is None or parsed.empty else joined([parsed], columns, backend)


class Parsed:
    """One COPY's columns as parsed, before they are joined: Arrow chunks, and numeric
    text measured batch by batch (its scale is known only once every part is in)."""

    __slots__ = ("chunks", "decimals", "empty")

    def __init__(self, columns: Sequence[Column]) -> None:
        self.decimals = {i: DecimalText() for i, c in enumerate(columns) if c.pg_type == "numeric"}
        self.chunks: list[list[pa.Array]] = [[] for _ in columns]
        self.empty = True


async def pin_copy_settings(raw: Any) -> None:
    """Pin COPY's text settings for the rest of ``raw``'s transaction (not restored)."""
    await set_local(raw, _COPY_SETTINGS)


async def copy_part(
    raw: Any, sql: str, args: Sequence[Any], columns: Sequence[Column], backend: DtypeBackend
) -> Parsed | None:
    """One part of a parallel read, on a connection whose transaction has
    ``pin_copy_settings`` applied; None when a value does not parse."""
    return await _copy_parsed(raw, sql, args, columns, backend)


async def _copy_parsed(
    raw: Any, sql: str, args: Sequence[Any], columns: Sequence[Column], backend: DtypeBackend
) -> Parsed | None:
    feed = Feed(limit=_READ_LIMIT)
    loop = asyncio.get_running_loop()

    def parse() -> Parsed | None:
        try:
            reader = pcsv.open_csv(
                feed,
                read_options=_read_options(columns),
                parse_options=_PARSE_OPTIONS,
                convert_options=_csv_options(columns, backend),
            )
            return _read_columns(reader, columns)
        except pa.ArrowInvalid:
            feed.abandon()
            return None if feed.received else Parsed(columns)  # no bytes: no rows

    parsing = loop.run_in_executor(None, parse)
    try:
        await _copy_out(raw, _copy_sql(sql, columns), args, feed.put)
    finally:
        feed.end()
    return await parsing


def _read_columns(reader: pcsv.CSVStreamingReader, columns: Sequence[Column]) -> Parsed:
    """Every batch of ``reader``, kept per column.

    Numeric text is measured and converted batch by batch here, in the parse thread,
    while the rest of the result still arrives: done after the COPY, it was a fifth of
    a 1M-row read.
    """
    parsed = Parsed(columns)
    for batch in reader:
        parsed.empty = False
        for i, chunk in enumerate(_converted(batch, columns).columns):
            if i in parsed.decimals:
                parsed.decimals[i].add(chunk)
            else:
                parsed.chunks[i].append(chunk)
    return parsed


def joined(parts: Sequence[Parsed], columns: Sequence[Column], backend: DtypeBackend) -> list[Any]:
    """The parts' columns, in the parts' order, as one column each (no copy: chunks)."""
    result: list[Any] = []
    for i, column in enumerate(columns):
        if i in parts[0].decimals:
            decimals = parts[0].decimals[i]
            for part in parts[1:]:
                decimals.extend(part.decimals[i])
            result.append(decimals.finish())
        else:
            chunks = [chunk for part in parts for chunk in part.chunks[i]]
            result.append(pa.chunked_array(chunks, type=_parsed_type(column, backend)))
    return result


def frame_from_parts(
    parts: Sequence[Parsed], columns: Sequence[Column], backend: DtypeBackend
) -> pd.DataFrame:
    """The DataFrame of a read done in parts, as one read would have built it."""
    return _frame_from_arrow(columns, joined(parts, columns, backend), backend)


def _parsed_type(column: Column, backend: DtypeBackend) -> pa.DataType:
    """The Arrow type of a column as parsed (a sent timestamp's is its final type)."""
    return column.arrow_type if column.pg_type in SENT else column.parsed_as(backend)


async def stream_copy(
    raw: Any,
    sql: str,
    args: Sequence[Any],
    columns: Sequence[Column],
    chunk_size: int,
    backend: DtypeBackend,
    *,
    pinned: bool = False,
) -> AsyncGenerator[pd.DataFrame, None]:
    """COPY parsed in a worker thread, with back-pressure both ways (``pinned``: the
    transaction has ``pin_copy_settings`` already, and nothing is to be restored).

    The socket is read only while fewer than ``_FEED_LIMIT`` bytes await parsing, and
    the parser stops while ``_BATCHES_AHEAD`` parsed batches await the consumer, so
    memory is a few chunks whatever the size of the result.
    """
    loop = asyncio.get_running_loop()
    pool = _streaming_pool()
    feed = Feed(limit=_FEED_LIMIT)
    batches: asyncio.Queue[pa.RecordBatch | BaseException | None] = asyncio.Queue()
    room = threading.Semaphore(_BATCHES_AHEAD)
    stop = threading.Event()

    def parse() -> None:
        try:
            try:
                reader = pcsv.open_csv(
                    feed,
                    read_options=_read_options(columns, _STREAM_BLOCK, threads=False),
                    parse_options=_PARSE_OPTIONS,
                    convert_options=_csv_options(columns, backend),
                    memory_pool=pool,
                )
            except pa.ArrowInvalid:
                if feed.received:
                    raise
                loop.call_soon_threadsafe(batches.put_nowait, None)  # no rows at all
                return
            for parsed in reader:
                batch = _converted(parsed, columns, pool)
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

    # Transaction-local, and restored at the end: inside a caller's transaction they
    # would otherwise last until it ends (its DateStyle, TimeZone... changed under it).
    saved = None if pinned else await session_settings(raw)
    if saved is not None:
        await set_local(raw, _COPY_SETTINGS)
    parser = loop.run_in_executor(None, parse)
    copying = asyncio.ensure_future(_copy_out(raw, _copy_sql(sql, columns), args, feed.put))
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
                if saved is not None:  # else the COPY went through: the transaction is intact
                    await set_local(raw, saved)
                if isinstance(item, pa.ArrowInvalid):
                    raise errors.ToolkitError(
                        f"stream_df could not read a value through COPY ({item}). Cast that "
                        "column to text in the query to stream it, or read the result whole "
                        "with tk.df, which falls back to row-by-row decoding."
                    ) from item
                raise item
            room.release()
            pending.append(item)
            rows += item.num_rows
            while rows >= chunk_size:
                table = pa.Table.from_batches(pending)
                pending, rows = table.slice(chunk_size).to_batches(), rows - chunk_size
                parsed = table.slice(0, chunk_size).columns
                del table  # only ``parsed`` holds the chunk's Arrow data now
                chunk = _frame_from_arrow(columns, parsed, backend, pool)
                yield chunk
                del chunk  # not kept while the next one is built
        if rows:
            parsed = pa.Table.from_batches(pending).columns
            pending = []
            yield _frame_from_arrow(columns, parsed, backend, pool)
        await copying
        if saved is not None:  # (after a failure, the transaction's end reverts them)
            await set_local(raw, saved)
    finally:
        stop.set()
        feed.abandon()
        if not copying.done():
            copying.cancel()
        with contextlib.suppress(BaseException):
            await copying
        await parser


async def _copy_out(
    raw: Any, sql: str, args: Sequence[Any], sink: Callable[[bytes], Awaitable[None]]
) -> None:
    """``COPY (sql) TO STDOUT`` (text format) into ``sink``; cancelling it closes the connection.

    asyncpg (0.32) cannot cancel a COPY safely: a cancelled wait while data still arrives
    breaks the protocol ("protocol.data_received() call failed", MagicStack/asyncpg#240),
    and an abort from the output callable can wait forever for a reply that never comes
    when the COPY had just finished. So a cancelled COPY closes its connection instead
    (the pool replaces it), once the server was asked to cancel it (``cancel_on_server``):
    the connection's close alone reaches a query still computing only through
    ``client_connection_check_interval``, which behind a pooler is not set.
    """
    copying = asyncio.ensure_future(raw.copy_from_query(sql, *args, output=sink, format="text"))
    try:
        await asyncio.shield(copying)
    except asyncio.CancelledError:
        if not copying.done():
            try:
                await cancel_on_server(raw)  # the query ends now, also behind a pooler
            finally:
                raw.terminate()
        with contextlib.suppress(BaseException):
            await copying
        raise


def _streaming_pool() -> pa.MemoryPool:
    """jemalloc for streamed batches: it hands short-lived buffers back for reuse, where
    Arrow's default (mimalloc) grew peak memory ~2x over a long stream in our benchmark."""
    try:
        pool = pa.jemalloc_memory_pool()
    except NotImplementedError:  # a pyarrow build without jemalloc
        return pa.default_memory_pool()
    # Return freed pages at once instead of after jemalloc's default 1 s decay: a stream
    # frees a chunk's buffers every few milliseconds. Only this pool (ours) uses jemalloc.
    pa.jemalloc_set_decay_ms(0)
    return pool


def _frame_from_arrow(
    columns: Sequence[Column],
    parsed: list[Any],
    backend: DtypeBackend,
    pool: pa.MemoryPool | None = None,
) -> pd.DataFrame:
    """The frame from the parsed Arrow columns, consuming ``parsed``: each is released
    once converted, so a result's Arrow and pandas copies do not all coexist."""
    with _default_pool(pool):
        data: list[Any] = []
        for i, column in enumerate(columns):
            data.append(column_from_text(column, parsed[i], pool))
            parsed[i] = None
        return build_frame(columns, data, backend)


_SWAPPING = threading.Lock()


@contextlib.contextmanager
def _default_pool(pool: pa.MemoryPool | None) -> Iterator[None]:
    """``pool`` as pyarrow's default meanwhile, for the allocations that take no pool
    argument (pandas' ``combine_chunks``, say): a stream that touched mimalloc, Arrow's
    default, at all kept several MB more resident. Process-wide, but it only chooses an
    allocator, for the milliseconds of one chunk's conversion (and the lock keeps
    concurrent swaps from restoring each other's choice)."""
    if pool is None:
        yield
        return
    with _SWAPPING:
        previous = pa.default_memory_pool()
        pa.set_memory_pool(pool)
        try:
            yield
        finally:
            pa.set_memory_pool(previous)
