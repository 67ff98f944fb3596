"""The caller's session, or a new one, at each level: a session (``session_or_new``), its
connection (``connection_or_pooled``), the asyncpg connection under it
(``driver_connection``)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from toolkit.database._default import get_database
from toolkit.database._driver import PooledDriverConnection, session_driver_connection

if TYPE_CHECKING:  # annotations only: the modules above import this one
    from toolkit.database._facade import Database

__all__ = ["connection_or_pooled", "driver_connection", "session_or_new"]


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
    that writes: on a hot standby it is refused before anything is sent (``_standby``).
    """
    if session is not None:
        return session_driver_connection(session, write, refuse_on_standby)
    # A pooled write runs in a transaction the toolkit's helper opened (bulk helpers,
    # to_table), which the loss rolls back; a pooled read wrote nothing (tk.df says
    # more, per statement).
    outcome = "atomic" if write else "read"
    engine = (database or get_database()).engine
    return PooledDriverConnection(engine, outcome, refuse_on_standby)
