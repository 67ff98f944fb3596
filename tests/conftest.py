"""Shared fixtures: a real PostgreSQL for every test.

The server is the one named by ``TOOLKIT_DATABASE_URL`` or, without it, the embedded
server (started here if it was not running, and stopped again at the end). On it the suite
creates scratch databases (``toolkit_test_<pid>_<n>``), migrated to head, and drops them at
the end, so no run touches a database it did not create.

Per-test isolation follows SQLAlchemy's "joining a session into an external transaction"
recipe: the ``session`` fixture runs inside an outer transaction that is rolled back after
the test; the code under test may commit (it only releases savepoints).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from toolkit import config, server
from toolkit.database import Database
from toolkit.migrate import migrate

MakeDatabase = Callable[..., Awaitable[URL]]


@pytest.fixture(scope="session")
def server_url() -> Iterator[URL]:
    """The server under test: TOOLKIT_DATABASE_URL's, else the embedded one."""
    configured = os.environ.get("TOOLKIT_DATABASE_URL", "").strip()
    if configured:
        yield config.normalize_url(configured, source="TOOLKIT_DATABASE_URL")
        return
    was_running = server.status().running
    url = server.start()
    yield url
    if not was_running:
        server.stop()


def _admin_engine(url: URL) -> AsyncEngine:
    # Nothing left prepared on a server connection: CI runs a subset through PgBouncer.
    return create_async_engine(
        url,
        isolation_level="AUTOCOMMIT",
        poolclass=NullPool,
        connect_args={"statement_cache_size": 0},
    )


@pytest.fixture(scope="session")
async def make_database(server_url: URL) -> AsyncIterator[MakeDatabase]:
    """A factory of scratch databases on the server under test, dropped at the end."""
    counter = itertools.count()
    created: list[str] = []
    admin = _admin_engine(server_url)

    async def make(*, migrated: bool = True) -> URL:
        name = f"toolkit_test_{os.getpid()}_{next(counter)}"
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        created.append(name)
        url = server_url.set(database=name)
        if migrated:
            async with Database(url, pool_size=1) as db:
                await migrate(database=db)
        return url

    yield make
    async with admin.connect() as conn:
        for name in created:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    await admin.dispose()


@pytest.fixture(scope="session")
async def database_url(make_database: MakeDatabase) -> AsyncIterator[URL]:
    """The suite's migrated database; also exported as TOOLKIT_DATABASE_URL for tk.* calls."""
    url = await make_database()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TOOLKIT_DATABASE_URL", url.render_as_string(hide_password=False))
        yield url


@pytest.fixture(scope="session")
async def db(database_url: URL) -> AsyncIterator[Database]:
    """A Database on the suite's migrated database."""
    async with Database(database_url) as database:
        yield database


@pytest.fixture
async def session(db: Database) -> AsyncIterator[AsyncSession]:
    """An AsyncSession whose every change is rolled back after the test."""
    async with db.engine.connect() as conn:
        outer = await conn.begin()
        s = AsyncSession(
            bind=conn, expire_on_commit=False, join_transaction_mode="create_savepoint"
        )
        try:
            yield s
        finally:
            await s.close()
            await outer.rollback()


def spy_on_copy(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Record, for each query tk.df sends through COPY, whether COPY produced the frame
    (False: a value did not parse and the row path answered)."""
    used: list[bool] = []
    from toolkit.frames import _copy_out

    original = _copy_out.via_copy

    async def spy(*args: Any, **kwargs: Any) -> Any:
        result = await original(*args, **kwargs)
        used.append(result is not None)
        return result

    monkeypatch.setattr(_copy_out, "via_copy", spy)
    return used


def spy_on_parts(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Record the connection each part of a parallel read runs on, in the order they run."""
    ran: list[Any] = []
    from toolkit.frames import _copy_out

    original = _copy_out.copy_part

    async def spy(raw: Any, *args: Any, **kwargs: Any) -> Any:
        ran.append(raw)
        return await original(raw, *args, **kwargs)

    monkeypatch.setattr(_copy_out, "copy_part", spy)
    return ran
