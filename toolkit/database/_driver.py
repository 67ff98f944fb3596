"""The raw driver path: the asyncpg connection under a caller's session, or one straight
from the pool (its faults named as the engine names them, ``_faults``); a cancel request
sent to the server; and what a lost connection means for the statement that was running
(``statement_attempts``)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.pool import QueuePool
from sqlalchemy.util import greenlet_spawn

from toolkit import errors
from toolkit.database._connecting import begin_behind_pooler, end_transaction
from toolkit.database._faults import raw_fault
from toolkit.database._standby import refuse_writes

__all__ = [
    "PooledDriverConnection",
    "StatementAttempt",
    "cancel_on_server",
    "session_driver_connection",
    "statement_attempts",
]


@asynccontextmanager
async def session_driver_connection(
    session: AsyncSession, write: bool, refuse_on_standby: str | None
) -> AsyncIterator[Any]:
    """The asyncpg connection under ``session``, begun first when it is to ``write``."""
    conn = await session.connection()
    raw: Any = (await conn.get_raw_connection()).driver_connection
    if refuse_on_standby is not None:
        await refuse_writes(raw, conn.engine.sync_engine, refuse_on_standby)
    if write and not raw.is_in_transaction():
        await conn.exec_driver_sql("SELECT 1")
    try:
        yield raw
    except BaseException as exc:

        async def invalidate() -> None:
            if not conn.invalidated:
                await conn.invalidate()

        fault = await raw_fault(exc, raw, conn.engine, invalidate, pooled=False, outcome="session")
        if fault is None:
            raise
        raise fault from None


class PooledDriverConnection:
    """A connection straight from the pool: no ``Connection`` object around it (whose
    transaction bookkeeping the raw path does not use, but every checkout would pay
    for), and a plain class rather than two generator-based context managers."""

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
                await refuse_writes(raw, self._engine.sync_engine, self._refuse_on_standby)
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
                fault = await raw_fault(
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
    does - a shield costs a task and a turn of the loop on every small query.
    """
    pool = engine.sync_engine.pool
    if not isinstance(pool, QueuePool) or pool.overflow() > 0:
        await asyncio.shield(greenlet_spawn(pooled.close))
    else:
        await greenlet_spawn(pooled.close)


async def cancel_on_server(raw: Any) -> None:
    """Ask the server to cancel what ``raw`` runs, before the caller closes ``raw``.

    asyncpg's own cancel request (as on a timeout): a new connection carrying the
    connection's key, which PgBouncer forwards to the server connection this client
    holds. Closing alone ends the query only at its next write - or, directly, within
    ``client_connection_check_interval``, which behind a pooler is not set. Waits at
    most a second for the request to be sent.
    """
    waiter = asyncio.get_running_loop().create_future()
    raw._cancel_current_command(waiter)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(waiter), 1)


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
