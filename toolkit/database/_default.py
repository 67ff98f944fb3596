"""The default database: made from the environment on first use (``tk.get_database()``),
replaced by ``tk.connect(...)``, and the module-level session helpers built on it."""

from __future__ import annotations

import threading
from collections.abc import AsyncGenerator
from typing import Any

from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
)

from toolkit.database._facade import Database, LoopBoundSessionmaker

__all__ = ["async_session", "connect", "get_database", "get_engine", "get_session", "session"]


_default: Database | None = None


_default_lock = threading.Lock()


def get_database() -> Database:
    """The default Database, created (from the environment) on first call."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = Database()
    return _default


def connect(url: str | URL | None = None, **options: Any) -> Database:
    """Make a new default Database (``tk.connect(url, read_only=True)``) and return it."""
    global _default
    database = Database(url, **options)
    with _default_lock:
        _default = database
    return database


def get_engine() -> AsyncEngine:
    """The default database's engine for the running loop."""
    return get_database().engine


def session() -> Any:
    """``async with tk.session() as s:`` - commit on success, rollback on error."""
    return get_database().session()


async def get_session() -> AsyncGenerator[AsyncSession, None]:
    """The seed's FastAPI dependency, typed as what it is: an async generator."""
    async with get_database().session() as s:
        yield s


async_session: async_sessionmaker[AsyncSession] = LoopBoundSessionmaker(get_database)
"""The seed's ``async_session``: ``async with tk.async_session() as s:`` (default database)."""
