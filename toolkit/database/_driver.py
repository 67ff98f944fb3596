"""The caller's session, or a new one, at each level (a session, its connection, the
asyncpg connection under it), and what a lost connection means for the statement that
was running (``statement_attempts``)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any

from asyncpg import PostgresError
from asyncpg.exceptions import InterfaceError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
)
from sqlalchemy.pool import QueuePool
from sqlalchemy.util import greenlet_spawn

from toolkit import config, errors
from toolkit.database import _standby as standby
from toolkit.database._connecting import begin_behind_pooler, cancellation_behind, end_transaction
from toolkit.database._default import get_database
from toolkit.database._pool import pool_fault
from toolkit.database._state import lost_at, owners

if TYPE_CHECKING:  # annotations only: the modules above import this one
    from toolkit.database._facade import Database

__all__ = [
    "StatementAttempt",
    "connection_or_pooled",
    "driver_connection",
    "session_or_new",
    "statement_attempts",
]


@asynccontextmanager
async def session_or_new(
    session: AsyncSession | None, database: Database | None = None
) -> AsyncIterator[AsyncSession]:
    """The caller's session, or a new one (closed at the end; its reads need no commit).

    Every helper taking ``session=`` runs in it through this (or ``connection_or_pooled``,
    ``driver_connection`` one level down), so "yours, else ours" has one home.
    """
    if session is not None:
        yield session
        return
    async with (database or get_database()).async_session() as own:
        yield own


@asynccontextmanager
async def connection_or_pooled(
    session: AsyncSession | None, database: Database | None = None
) -> AsyncIterator[AsyncConnection]:
    """The session's connection (inside its transaction), else a pooled one."""
    if session is not None:
        yield await session.connection()
        return
    async with (database or get_database()).engine.connect() as conn:
        yield conn


def driver_connection(
    session: AsyncSession | None = None,
    database: Database | None = None,
    *,
    write: bool = False,
    refuse_on_standby: str | None = None,
) -> contextlib.AbstractAsyncContextManager[Any]:
    """The asyncpg connection under ``session`` (inside its transaction), else a pooled one.

    For COPY and array statements the toolkit talks to asyncpg directly. SQLAlchemy's
    adapter only sends BEGIN when it first executes, so with ``write=True`` it is made to
    begin now: the writes then belong to the session's transaction, and its rollback
    undoes them, instead of committing on their own. ``refuse_on_standby`` names a helper
    that writes: on a hot standby it is refused before anything is sent (``standby``).
    """
    if session is not None:
        return _session_driver_connection(session, write, refuse_on_standby)
    # A pooled write runs in a transaction the toolkit's helper opened (bulk helpers,
    # to_table), which the loss rolls back; a pooled read wrote nothing (tk.df says
    # more, per statement).
    outcome = "atomic" if write else "read"
    engine = (database or get_database()).engine
    return _PooledDriverConnection(engine, outcome, refuse_on_standby)


@asynccontextmanager
async def _session_driver_connection(
    session: AsyncSession, write: bool, refuse_on_standby: str | None
) -> AsyncIterator[Any]:
    conn = await session.connection()
    raw: Any = (await conn.get_raw_connection()).driver_connection
    if refuse_on_standby is not None:
        await standby.refuse_writes(raw, conn.engine.sync_engine, refuse_on_standby)
    if write and not raw.is_in_transaction():
        await conn.exec_driver_sql("SELECT 1")
    try:
        yield raw
    except BaseException as exc:

        async def invalidate() -> None:
            if not conn.invalidated:
                await conn.invalidate()

        fault = await _fault_named(
            exc, raw, conn.engine, invalidate, pooled=False, outcome="session"
        )
        if fault is None:
            raise
        raise fault from None


class _PooledDriverConnection:
    """A connection straight from the pool: no ``Connection`` object around it (whose
    transaction bookkeeping the raw path does not use: a third of the checkout's cost),
    and a plain class rather than two generator-based context managers."""

    __slots__ = ("_engine", "_outcome", "_pooled", "_refuse_on_standby", "_transaction")

    def __init__(self, engine: AsyncEngine, outcome: str, refuse_on_standby: str | None) -> None:
        self._engine = engine
        self._outcome = outcome
        self._refuse_on_standby = refuse_on_standby
        self._pooled: Any = None
        self._transaction: Any = None

    async def __aenter__(self) -> Any:
        self._pooled = await self._engine.raw_connection()
        raw = self._pooled.driver_connection
        if self._refuse_on_standby is not None:
            try:
                await standby.refuse_writes(raw, self._engine.sync_engine, self._refuse_on_standby)
            except BaseException:
                await _give_back(self._engine, self._pooled)
                raise
        try:
            self._transaction = await begin_behind_pooler(raw, self._engine)
        except BaseException:
            await greenlet_spawn(self._pooled.invalidate)
            await _give_back(self._engine, self._pooled)
            raise
        return raw

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        pooled, engine = self._pooled, self._engine
        try:
            failed = await end_transaction(self._transaction, pooled.driver_connection, exc)
            exc = failed or exc
            if exc is not None:

                async def invalidate() -> None:
                    if pooled.is_valid:
                        await greenlet_spawn(pooled.invalidate)

                raw = pooled.driver_connection
                fault = await _fault_named(
                    exc, raw, engine, invalidate, pooled=True, outcome=self._outcome
                )
                if fault is not None:
                    raise fault from None
                if failed is not None:
                    raise failed
        finally:
            await _give_back(engine, pooled)


async def _give_back(engine: AsyncEngine, pooled: Any) -> None:
    """Return a raw-path connection to the pool.

    That is no I/O (nothing was begun through SQLAlchemy's adapter, so its reset is a
    no-op) unless the pool holds overflow connections and may close this one instead:
    only then is the close shielded from cancellation, as SQLAlchemy's own ``__aexit__``
    does - a shield costs a task and a turn of the loop, 1-2% of a small query.
    """
    pool = engine.sync_engine.pool
    if not isinstance(pool, QueuePool) or pool.overflow() > 0:
        await asyncio.shield(greenlet_spawn(pooled.close))
    else:
        await greenlet_spawn(pooled.close)


async def _fault_named(
    exc: BaseException,
    raw: Any,
    engine: AsyncEngine,
    invalidate: Callable[[], Awaitable[None]],
    *,
    pooled: bool,
    outcome: str,
) -> BaseException | None:
    """On the raw driver path, the fault to raise as the engine would (see
    ``translate_faults``) in place of ``exc``; None to let ``exc`` go on.

    Errors there bypass SQLAlchemy, which would otherwise try to roll back a connection
    the server dropped (and fail again). A pooled connection is also invalidated after a
    cancellation or a client-side error: a raw call cut short may have left it inside a
    BEGIN that SQLAlchemy knows nothing of, and would not roll back. Only after a server
    error (the protocol then is at a clean sync point) does it go back into the pool.

    On a connection found closed, any other exception but the toolkit's own is the
    loss too: asyncpg's InternalClientError ("cannot switch to state 11") when its
    protocol met the server's farewell where it expected nothing, or a COPY's write to
    the transport ``_end_writes`` let go of.
    """
    lost = raw.is_closed()
    if lost:
        lost_at[engine.sync_engine] = time.monotonic()
    if lost or (pooled and not isinstance(exc, PostgresError)):
        await invalidate()
    driver_error = isinstance(exc, PostgresError | InterfaceError | TimeoutError)
    if not driver_error and not (lost and _is_plain_error(exc)):
        return None
    cancelled = cancellation_behind(exc)
    if lost and cancelled is not None:
        # A cancelled COPY closes its connection; the clean-up after it (a rollback)
        # then fails on the closed connection. The cancellation is what happened.
        return cancelled
    owner = owners.get(engine.sync_engine)
    where = config.server_address(engine.url)
    database = owner() if owner is not None else None
    fault = pool_fault(exc, disconnect=lost, where=where, database=database, outcome=outcome)
    return fault or standby.error_of(exc, engine.sync_engine)


def _is_plain_error(exc: BaseException) -> bool:
    """An Exception that is not the toolkit's own (InternalClientError, AttributeError...)."""
    return isinstance(exc, Exception) and not isinstance(exc, errors.ToolkitError)


def statement_attempts(session: AsyncSession | None, *, reads: bool) -> Iterator[StatementAttempt]:
    """Run one statement, and once more on a new connection when it is safe.

    ``for attempt in statement_attempts(session, reads=...): with attempt: ...`` - a
    ``ConnectionLost`` inside the block ends it; the loop then tries once more when
    the statement only reads, runs outside a caller's session, and nothing of it has
    reached the caller yet. Otherwise the error is raised again, its message saying
    whether the statement may have been applied (see ``StatementAttempt``). The server
    can end a connection at any moment, also between the pool's check and the
    statement: a restart, a failover or an idle-session killer does.
    """
    first = StatementAttempt(session is not None, reads, retry=session is None and reads)
    yield first
    if first.lost:
        yield StatementAttempt(session is not None, reads, retry=False, retried=True)


class StatementAttempt:
    """One try of a statement: what it got to, for the verdict on a lost connection.

    The caller calls ``sending(raw)`` just before the statement is executed (preparing
    or planning it applies nothing) and ``delivering()`` before its first rows reach the
    caller.
    """

    __slots__ = ("_in_session", "_reads", "_retried", "_retry", "delivered", "lost", "sent")

    def __init__(self, in_session: bool, reads: bool, *, retry: bool, retried: bool = False):
        self._in_session = in_session
        self._reads = reads
        self._retry = retry
        self._retried = retried
        self.sent: bool | None = None  # None: not sent; else: inside a transaction or not
        self.delivered = False
        self.lost = False

    def sending(self, raw: Any) -> None:
        self.sent = bool(raw.is_in_transaction())

    def delivering(self) -> None:
        self.delivered = True

    def __enter__(self) -> StatementAttempt:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        if not isinstance(exc, errors.ConnectionLost):
            return False
        if self._retry and not self.delivered:
            self.lost = True
            return True  # statement_attempts tries again
        lost = errors.connection_lost(exc.where, exc.original or exc, outcome=self._outcome())
        raise lost from None

    def _outcome(self) -> str:
        if self.sent is False and not self._reads:
            return "sent"  # outside any transaction: it may have committed
        if self._in_session:
            return "session"
        if self._reads:
            return "streamed" if self.delivered else "read twice" if self._retried else "read"
        return "not sent" if self.sent is None else "atomic"
