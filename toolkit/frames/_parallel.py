"""Parallel reads: one query over several connections that share one snapshot.

The first connection opens a ``REPEATABLE READ`` transaction and exports its snapshot
(``pg_export_snapshot()``); every other one imports it (``SET TRANSACTION SNAPSHOT``)
before its first query, so the parts together are the result of one moment, however
many rows are written meanwhile. How the query is cut is ``_split``'s; each connection
takes the next part as it finishes one, and the parts' Arrow columns are joined in order
into one frame (or streamed, for ``stream_df``).

A split that is impossible or pointless reads in one stream instead, saying why once
(``ToolkitWarning``): behind a transaction-mode pooler (a snapshot lives in a server
connection the pooler hands to others), inside a caller's session (its uncommitted
rows are invisible to other connections), a query that is not one table's scan and has
no ``partition_on``, or values only the row path decodes.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import os
import re
import sys
import warnings
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from types import FrameType
from typing import Any, Literal

import pandas as pd
from sqlalchemy.ext.asyncio import AsyncSession

from toolkit import errors
from toolkit.database import Database, driver_connection, get_database
from toolkit.frames import _copy_out
from toolkit.frames._estimate import estimate
from toolkit.frames._split import Split, split_by_blocks, split_on_column
from toolkit.frames._types import Column, DtypeBackend, columns_from_attributes
from toolkit.sql import plannable, prepare

__all__ = [
    "AUTO_MIN_ROWS",
    "Parallel",
    "check_parallel",
    "parallel_chunks",
    "parallel_frame",
]

Parallel = int | Literal["auto"] | None

AUTO_MIN_ROWS = 1_000_000
"""Estimated rows from which ``parallel="auto"`` reads over more than one connection: a
smaller result is read in one stream before a second connection would pay for itself."""
AUTO_ROWS_PER_STREAM = 500_000
"""``parallel="auto"`` gives each connection at least this many estimated rows."""
AUTO_MAX_STREAMS = 4
"""The most connections ``parallel="auto"`` uses."""

_SNAPSHOT_ID = re.compile(r"[0-9A-Fa-f-]+")
_said: set[str] = set()


def check_parallel(parallel: Parallel, partition_on: str | None) -> None:
    """Refuse a ``parallel=`` or ``partition_on=`` that cannot mean anything."""
    if partition_on is not None and parallel in (None, 1):
        raise ValueError("partition_on= splits a parallel read: pass parallel=N (or 'auto') too")
    if parallel is None or parallel == "auto":
        return
    if isinstance(parallel, bool) or not isinstance(parallel, int) or parallel < 1:
        raise ValueError(
            f"parallel must be a whole number of connections or 'auto', not {parallel!r}"
        )


def _check_pool(parallel: Parallel, database: Database) -> None:
    if isinstance(parallel, int) and parallel > database.pool_size + database.max_overflow:
        raise ValueError(
            f"parallel={parallel} needs {parallel} connections and this Database's pool holds "
            f"{database.pool_size + database.max_overflow} (pool_size + max_overflow) - pass a "
            "smaller parallel= or a larger max_overflow="
        )


async def parallel_frame(
    sql: str,
    args: Sequence[Any],
    parallel: Parallel,
    partition_on: str | None,
    session: AsyncSession | None,
    database: Database | None,
    backend: DtypeBackend,
) -> pd.DataFrame | None:
    """The result read in parts over several connections; None: read it in one stream."""
    parts: list[_copy_out.Parsed] = []
    async with _shared_snapshot(sql, args, parallel, partition_on, session, database) as plan:
        if plan is None:
            return None
        columns, split, connections = plan
        results: list[_copy_out.Parsed | None] = [None] * len(split.parts)

        async def read(raw: Any, index: int) -> bool:
            part = split.parts[index]
            parsed = await _copy_out.copy_part(
                raw, part.sql, (*args, *part.extra_args), columns, backend
            )
            results[index] = parsed
            return parsed is not None

        if not await _run_parts(connections, len(split.parts), read):
            _say_once("a value COPY's text cannot carry exactly (the row path reads it)")
            return None
        parts = [p for p in results if p is not None]
    if all(p.empty for p in parts):
        return None  # no rows: the row path gives an empty frame its exact dtypes
    return _copy_out.frame_from_parts(parts, columns, backend)


async def parallel_chunks(
    sql: str,
    args: Sequence[Any],
    parallel: Parallel,
    partition_on: str | None,
    session: AsyncSession | None,
    database: Database | None,
    chunk_size: int,
    backend: DtypeBackend,
) -> AsyncGenerator[pd.DataFrame | None, None]:
    """``stream_df``'s chunks read in parts; a first ``None`` means: read in one stream.

    Each connection streams its part with COPY's back-pressure; chunks are yielded as
    they arrive (the order is not defined), or part after part where the split keeps
    the query's ORDER BY (then the parts ahead wait, a few chunks read, for their turn).
    """
    async with _shared_snapshot(sql, args, parallel, partition_on, session, database) as plan:
        if plan is None:
            yield None
            return
        columns, split, connections = plan
        count = len(split.parts)
        queues: list[asyncio.Queue[pd.DataFrame | None]] = [
            asyncio.Queue(maxsize=2) for _ in range(count if split.ordered else 1)
        ]

        async def read(raw: Any, index: int) -> bool:
            part = split.parts[index]
            queue = queues[index if split.ordered else 0]
            chunks = _copy_out.stream_copy(
                raw, part.sql, (*args, *part.extra_args), columns, chunk_size, backend, pinned=True
            )
            async with contextlib.aclosing(chunks):
                async for chunk in chunks:
                    await queue.put(chunk)
            if split.ordered:
                await queue.put(None)
            return True

        async def reading() -> None:
            await _run_parts(connections, count, read)
            if not split.ordered:
                await queues[0].put(None)

        task = asyncio.ensure_future(reading())
        try:
            for queue in queues:
                while (chunk := await _next(queue, task)) is not None:
                    yield chunk
            await task
        finally:
            if not task.done():
                task.cancel()
            with contextlib.suppress(BaseException):
                await task


async def _next(
    queue: asyncio.Queue[pd.DataFrame | None], task: asyncio.Future[None]
) -> pd.DataFrame | None:
    """The next chunk, or the readers' error as soon as they fail."""
    getting = asyncio.ensure_future(queue.get())
    waiting: list[asyncio.Future[Any]] = [getting, task]
    await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
    if getting.done():
        return getting.result()
    getting.cancel()
    task.result()  # raises the readers' error
    return None  # they ended without the end marker: nothing more comes


@contextlib.asynccontextmanager
async def _shared_snapshot(
    sql: str,
    args: Sequence[Any],
    parallel: Parallel,
    partition_on: str | None,
    session: AsyncSession | None,
    given: Database | None,
) -> AsyncIterator[tuple[tuple[Column, ...], Split, list[Callable[[], Any]]] | None]:
    """The lead connection in a ``REPEATABLE READ`` snapshot, the query's columns, its
    split, and how to open each other connection in the same snapshot; None when it is
    read in one stream."""
    if session is not None:
        if parallel != "auto":
            _say_once(
                "inside a session's transaction the read sees its uncommitted rows, which "
                "other connections cannot see"
            )
        yield None
        return
    database = given or get_database()
    _check_pool(parallel, database)
    if not plannable(sql):
        yield None
        return
    async with driver_connection(None, database) as lead:
        facts = database.server_facts
        if facts is not None and facts.pooler is not None:
            _say_once(
                f"behind a {facts.pooler}-mode pooler the snapshot cannot be shared: each "
                "transaction may get another server connection"
            )
            yield None
            return
        if parallel == "auto" and (await estimate(lead, sql, args))[0] < AUTO_MIN_ROWS:
            yield None  # a small result: one stream, nothing to say
            return
        async with lead.transaction(isolation="repeatable_read", readonly=True):
            plan = await _plan(lead, sql, args, parallel, partition_on, database)
            if plan is None:
                yield None
                return
            columns, split, streams = plan
            snapshot = await _export_snapshot(lead)
            if snapshot is None:
                _say_once("this server could not export a snapshot for other connections")
                yield None
                return
            await _copy_out.pin_copy_settings(lead)

            def other() -> Any:
                return _joined(database, snapshot)

            connections: list[Callable[[], Any]] = [
                lambda: contextlib.nullcontext(lead),
                *[other] * (streams - 1),
            ]
            yield columns, split, connections


async def _plan(
    lead: Any,
    sql: str,
    args: Sequence[Any],
    parallel: Parallel,
    partition_on: str | None,
    database: Database,
) -> tuple[tuple[Column, ...], Split, int] | None:
    prepared = await prepare(lead, sql)
    columns = columns_from_attributes(prepared.get_attributes())
    if not columns:
        return None  # one stream raises the error that names the fix
    if not all(c.copy_safe for c in columns):
        _say_once("a column's type is read row by row, which one connection does")
        return None
    streams = await _auto_streams(lead, sql, args, database) if parallel == "auto" else parallel
    assert isinstance(streams, int)
    if streams < 2:
        return None
    if database.server_facts is not None and database.server_facts.citus is not None:
        plan = await lead.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *args)
        if "Citus" in str(plan):
            _say_once("a snapshot on the Citus coordinator does not reach the workers' shards")
            return None
    if partition_on is not None:
        split = await split_on_column(lead, sql, args, columns, streams, partition_on)
    else:
        split = await split_by_blocks(lead, sql, args, columns, streams)
    if not split.parts:
        if split.reason:
            _say_once(split.reason)
        return None
    return columns, split, min(streams, len(split.parts))


async def _auto_streams(lead: Any, sql: str, args: Sequence[Any], database: Database) -> int:
    """As many connections as the estimate, the server and the pool allow, at most
    ``AUTO_MAX_STREAMS`` and the client's CPUs (each connection's text is parsed here) -
    half of them when the server runs on this machine too (its processes writing the
    COPY streams take the other half)."""
    rows = (await estimate(lead, sql, args))[0]
    workers, free, local = await lead.fetchrow(
        "SELECT current_setting('max_parallel_workers')::int, "
        "current_setting('max_connections')::int "
        "- current_setting('superuser_reserved_connections')::int "
        "- (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'), "
        "coalesce(host(inet_server_addr()) IN ('127.0.0.1', '::1'), true)"  # NULL: a socket
    )
    cpus = os.cpu_count() or 1
    return int(
        max(
            1,
            min(
                AUTO_MAX_STREAMS,
                cpus // 2 if local else cpus,
                max(workers, 1),
                free // 2 + 1,  # this connection, and half of those still free
                math.ceil(rows / AUTO_ROWS_PER_STREAM),
                database.pool_size + database.max_overflow,
            ),
        )
    )


async def _export_snapshot(lead: Any) -> str | None:
    """The lead's snapshot id; None when the server refuses (the transaction is then
    over: a snapshot cannot be exported from a savepoint)."""
    try:
        snapshot = await lead.fetchval("SELECT pg_export_snapshot()")
    except Exception as exc:
        if errors.sqlstate_of(exc) is None:
            raise
        return None
    return snapshot if isinstance(snapshot, str) and _SNAPSHOT_ID.fullmatch(snapshot) else None


@contextlib.asynccontextmanager
async def _joined(database: Database, snapshot: str) -> AsyncIterator[Any]:
    """Another pooled connection in a read-only transaction on ``snapshot``."""
    async with (
        driver_connection(None, database) as raw,
        raw.transaction(isolation="repeatable_read", readonly=True),
    ):
        # SET takes no bind value; the id was checked to be hex digits and dashes.
        await raw.execute(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
        await _copy_out.pin_copy_settings(raw)
        yield raw


async def _run_parts(
    connections: Sequence[Callable[[], Any]],
    count: int,
    read: Callable[[Any, int], Awaitable[bool]],
) -> bool:
    """Connection i reads part i, then each takes the next part until none is left (so
    none is idle while another still has a queue); False when a part could not be read
    this way. The first error cancels the other connections' reads."""
    pending = iter(range(len(connections), count))
    ok = True
    failed: list[BaseException] = []

    async def work(opening: Callable[[], Any], first: int) -> None:
        nonlocal ok
        try:
            async with opening() as raw:
                # one iterator, shared: each part is taken once
                for index in itertools.chain([first] if first < count else [], pending):
                    if not ok:
                        return
                    ok = await read(raw, index) and ok
        except BaseException as exc:
            if not failed and not isinstance(exc, asyncio.CancelledError):
                failed.append(exc)  # the cause; what the others raise is its consequence
            raise

    try:
        async with asyncio.TaskGroup() as group:
            for first, opening in enumerate(connections):
                group.create_task(work(opening, first))
    except BaseExceptionGroup as group_error:
        raise (failed[0] if failed else group_error.exceptions[0]) from None
    return ok


def _say_once(reason: str) -> None:
    """Say once why a parallel read is read in one stream."""
    if reason not in _said:
        _said.add(reason)
        warnings.warn(
            f"read in one stream instead of in parallel: {reason}",
            errors.ToolkitWarning,
            stacklevel=_callers_level(),
        )


def _callers_level() -> int:
    """The ``stacklevel`` of the first frame outside the toolkit: the warning names the
    caller's line (the paths from ``tk.df`` or ``stream_df`` here differ in depth)."""
    frame: FrameType | None = sys._getframe(2)
    level = 2  # (the frame that calls warnings.warn is level 1)
    while frame is not None and frame.f_globals.get("__name__", "").split(".")[0] in (
        "toolkit",
        "contextlib",
    ):
        frame, level = frame.f_back, level + 1
    return level
