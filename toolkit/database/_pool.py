"""The pool's policy: a checked-out connection is known alive (a quiet socket, or a ping),
an idle one does not read its socket (so the server's goodbye waits for the checkout), a
lost client ends its writes, and a pool with no connection free says how to size it."""

from __future__ import annotations

import contextlib
import select
import time
from typing import Any

from asyncpg import PostgresError
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry
from sqlalchemy.util import await_

from toolkit import errors
from toolkit.database._state import EngineState

__all__ = ["ExplainedPool", "end_writes_when_lost", "ping_on_checkout", "watch_for_lost_clients"]


def watch_for_lost_clients(dbapi_connection: Any, record: Any) -> None:
    """Make the server end a query whose client went away, even while it still computes.

    Without ``client_connection_check_interval`` (PostgreSQL 14+) a backend notices a
    closed connection only when it next writes; a cancelled COPY closes its connection.
    """
    raw = dbapi_connection.driver_connection
    if raw.get_server_version() >= (14,):
        # Not supported on every platform (e.g. Windows): then the server keeps its default.
        with contextlib.suppress(PostgresError):
            await_(raw.execute(f"SET client_connection_check_interval = {_CHECK_INTERVAL_MS}"))


_CHECK_INTERVAL_MS = 500


def end_writes_when_lost(dbapi_connection: Any, record: Any) -> None:
    """Make a COPY fail, not hang, when the server ends its connection mid-stream.

    A COPY that filled the socket waits for asyncpg's "writing allowed" signal, which
    a lost connection never gives (with no ``command_timeout`` it would wait forever).
    On the loss this drops the protocol's transport, so the waiting write fails at
    once (``raw_fault`` then names the lost connection), and gives the signal.
    """
    raw = dbapi_connection.driver_connection
    raw.add_termination_listener(_end_writes)


def _end_writes(raw: Any) -> None:
    protocol = getattr(raw, "_protocol", None)
    if protocol is not None and protocol.is_closed():
        protocol.abort()  # already closed: only lets go of the transport
        protocol.resume_writing()


def ping_on_checkout(engine: AsyncEngine, state: EngineState) -> None:
    """``pool_pre_ping``, in one round trip, and none for a connection just returned.

    A pooled connection the server closed (a restart, an idle-session timeout, a killed
    backend) is replaced before the caller sees it. SQLAlchemy's asyncpg ping wraps
    ``;`` in BEGIN and ROLLBACK (for pgbouncer's transaction mode): three round trips
    per checkout. Here a simple-protocol ``SELECT 1`` is one message and one reply,
    which pgbouncer serves in any mode.

    A connection returned to the pool less than ``_RECENT`` seconds ago is not pinged
    when its socket shows nothing arrived since: a server that closes a connection
    sends its end first, which makes the socket readable. (A ping still covers long
    idle periods, after which a network may have dropped the connection silently.)
    As with pre-ping, a connection just opened is not pinged, and a dead one
    invalidates the connections opened before it (a restarted server closed them all).
    Nor is the shortcut taken for a connection returned before a statement on the raw
    path found its own connection lost: the retry of a read then gets one that answered.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _opened(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info[_FRESH] = True

    @event.listens_for(engine.sync_engine, "checkin")
    def _returned(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        if dbapi_connection is not None:  # None: invalidated on the way back
            record.info[_RETURNED] = time.monotonic()
            _hold_input(dbapi_connection.driver_connection)

    @event.listens_for(engine.sync_engine, "close")
    def _closing(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        _release_input(dbapi_connection.driver_connection)  # a close waits for the server's end

    @event.listens_for(engine.sync_engine, "checkout")
    def _ping(dbapi_connection: Any, record: ConnectionPoolEntry, proxy: Any) -> None:
        if record.info.pop(_FRESH, False):
            return
        raw = dbapi_connection.driver_connection
        returned = record.info.pop(_RETURNED, None)
        recent = returned is not None and time.monotonic() - returned < _RECENT
        quiet = recent and _quiet(raw)  # asked before the loop may read again
        _release_input(raw)
        if quiet and returned > state.lost_at:
            return
        if raw.is_closed():
            raise sa_exc.InvalidatePoolError()
        try:
            await_(raw.execute("SELECT 1"))
        except Exception as exc:
            if raw.is_closed():  # what SQLAlchemy's asyncpg dialect calls a disconnect
                raise sa_exc.InvalidatePoolError() from exc
            raise


def _quiet(raw: Any) -> bool:
    """True when the server has sent nothing on this idle connection (no end, no error).

    Asks the socket directly: the event loop may not have read an end that arrived.
    """
    if raw.is_closed():
        return False
    transport = getattr(raw, "_transport", None)  # asyncpg's; without it, ping
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None:
        return False
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):  # e.g. a descriptor select() cannot watch
        return False
    return not readable


def _hold_input(raw: Any) -> None:
    """Leave what the server sends to an idle pooled connection in its socket, unread.

    Otherwise the event loop reads it: a server that ends the connection sends an error
    (FATAL, "terminating connection") just before closing, and asyncpg, receiving it
    while idle, moves to a state that fails the next statement with "cannot switch to
    state 11; another operation (2) is in progress" - while the socket, already read,
    shows nothing to ``_quiet``. Held unread, the error keeps the socket readable.
    """
    transport = getattr(raw, "_transport", None)
    if transport is not None and not raw.is_closed():
        transport.pause_reading()


def _release_input(raw: Any) -> None:
    transport = getattr(raw, "_transport", None)
    if transport is not None:
        transport.resume_reading()


_RETURNED = "toolkit.returned"


_RECENT = 1.0


_FRESH = "toolkit.fresh"


class ExplainedPool(AsyncAdaptedQueuePool):
    """SQLAlchemy's async queue pool, whose timeout says what the pool is and how to size it."""

    def _do_get(self) -> ConnectionPoolEntry:
        try:
            return super()._do_get()
        except sa_exc.TimeoutError:
            raise errors.PoolExhausted(
                f"no pooled connection came free within pool_timeout={self._timeout:g} s: "
                f"all {self.size() + self._max_overflow} (pool_size={self.size()} + "
                f"max_overflow={self._max_overflow}) are checked out by sessions or tasks "
                "still running - close sessions you are done with (`async with` blocks), "
                "limit concurrent tasks (asyncio.Semaphore), or raise pool_size/max_overflow "
                "in tk.connect(...) below the server's max_connections"
            ) from None
