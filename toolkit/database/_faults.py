"""What a driver fault means: a lost connection, a fired time limit or a standby's refusal,
raised as the toolkit error that names it - for statements through the engine
(``translate_faults``) and on the raw driver path (``raw_fault``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from asyncpg import PostgresError
from asyncpg.exceptions import InterfaceError
from sqlalchemy import event
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.ext.asyncio import AsyncEngine

from toolkit import config, errors
from toolkit.database._standby import error_of
from toolkit.database._state import state_of

if TYPE_CHECKING:  # annotations only: the modules above import this one
    from toolkit.database._facade import Database

__all__ = ["cancellation_behind", "database_fault", "raw_fault", "translate_faults"]


def translate_faults(engine: AsyncEngine, where: str, database: Database) -> None:
    """Raise a lost connection or a fired time limit as the toolkit error that names it.

    SQLAlchemy has already invalidated the connection when this runs (a dead or timed-out
    connection never goes back into the pool); pre-ping failures are left to the pool,
    which reconnects silently.
    """

    @event.listens_for(engine.sync_engine, "handle_error")
    def _on_error(context: ExceptionContext) -> None:
        exc = context.original_exception
        if context.is_pre_ping or not isinstance(exc, Exception):
            return  # pre-ping reconnects; CancelledError/KeyboardInterrupt stay as they are
        disconnect = context.is_disconnect and not isinstance(exc, TimeoutError)
        fault = database_fault(exc, disconnect=disconnect, where=where, database=database)
        fault = fault or error_of(exc, engine.sync_engine)
        if fault is not None:
            raise fault from None


def database_fault(
    exc: BaseException,
    *,
    disconnect: bool,
    where: str,
    database: Database | None,
    outcome: str = "transaction",
) -> errors.ToolkitError | None:
    """``errors.fault_of`` with the limits ``database`` was configured with."""
    return errors.fault_of(
        exc,
        disconnect=disconnect,
        where=where,
        statement_timeout=database.statement_timeout if database else None,
        command_timeout=database.command_timeout if database else None,
        outcome=outcome,
    )


async def raw_fault(
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
    the transport ``end_writes_when_lost`` let go of.
    """
    lost = raw.is_closed()
    if lost:
        state_of(engine.sync_engine).lost_at = time.monotonic()
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
    where = config.server_address(engine.url)
    database = state_of(engine.sync_engine).database()
    fault = database_fault(exc, disconnect=lost, where=where, database=database, outcome=outcome)
    return fault or error_of(exc, engine.sync_engine)


def _is_plain_error(exc: BaseException) -> bool:
    """An Exception that is not the toolkit's own (InternalClientError, AttributeError...)."""
    return isinstance(exc, Exception) and not isinstance(exc, errors.ToolkitError)


def cancellation_behind(exc: BaseException) -> BaseException | None:
    """The CancelledError or KeyboardInterrupt that ``exc`` was raised while handling."""
    seen: set[int] = set()
    current = exc.__context__
    while current is not None and id(current) not in seen:
        if isinstance(current, asyncio.CancelledError | KeyboardInterrupt):
            return current
        seen.add(id(current))
        current = current.__context__
    return None
