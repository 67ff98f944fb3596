"""Fixtures of the fault-injection cases: a database of their own, and a view from outside.

Each case provokes a fault, so it gets a fresh migrated database (not the suite's shared
one) and an ``Observer`` - an autocommit connection that is not part of the toolkit -
to terminate backends and to read ``pg_stat_activity`` the way an administrator would.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from tests.conftest import MakeDatabase
from toolkit.database import Database


class Observer:
    """An administrator's view of one database: its sessions, their queries, and a kill switch."""

    def __init__(self, url: URL) -> None:
        self.url = url
        self.database = url.database
        self._engine: AsyncEngine = create_async_engine(
            url, isolation_level="AUTOCOMMIT", poolclass=NullPool
        )

    def connect(self) -> Any:
        """An autocommit connection of the observer's own (``async with``)."""
        return self._engine.connect()

    async def _scalar_list(self, sql: str) -> list[object]:
        async with self._engine.connect() as conn:
            result = await conn.execute(text(sql), {"db": self.database})
            return list(result.scalars())

    async def backends(self) -> list[object]:
        """Pids of the toolkit's connections to this database (the observer's excluded)."""
        return await self._scalar_list(
            "SELECT pid FROM pg_stat_activity WHERE datname = :db "
            "AND application_name = 'toolkit' AND pid <> pg_backend_pid()"
        )

    async def active_queries(self) -> list[object]:
        """Queries still running (or stuck in a transaction) on this database.

        A backend waiting for the client's next protocol message (``ClientRead``) runs
        nothing: asyncpg sends Parse/Describe/Flush and the Sync with the next call, so a
        task cancelled right after preparing leaves its pooled connection shown "active".
        """
        return await self._scalar_list(
            "SELECT query FROM pg_stat_activity WHERE datname = :db "
            "AND pid <> pg_backend_pid() AND backend_type = 'client backend' "
            "AND (state IN ('idle in transaction', 'idle in transaction (aborted)') "
            "     OR (state = 'active' AND wait_event IS DISTINCT FROM 'ClientRead'))"
        )

    async def statements(self) -> list[object]:
        """The statement each toolkit connection runs or last ran, whatever it waits on
        (a COPY FROM STDIN waits for the client's data most of the time)."""
        return await self._scalar_list(
            "SELECT query FROM pg_stat_activity WHERE datname = :db "
            "AND application_name = 'toolkit' AND pid <> pg_backend_pid() AND state = 'active'"
        )

    async def terminate(self, pid: object) -> None:
        """Kill one backend, as ``pg_terminate_backend`` does, and wait until it is gone."""
        async with self._engine.connect() as conn:
            await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        await self.wait_until(lambda pids: pid not in pids, self.backends)

    async def wait_until(self, condition: object, probe: object, within: float = 10.0) -> None:
        deadline = time.monotonic() + within
        while True:
            value = await probe()  # type: ignore[operator]
            if condition(value):  # type: ignore[operator]
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met within {within} s; last: {value!r}")
            await asyncio.sleep(0.02)

    async def dispose(self) -> None:
        await self._engine.dispose()


END_EVERY_OTHER_CONNECTION = (
    "select pg_terminate_backend(pid) from pg_stat_activity where datname = "
    "current_database() and pid <> pg_backend_pid() and backend_type = 'client backend'"
)
"""What a restart, a failover or an idle-session killer does to a notebook's pool."""


class KillSwitch:
    """A connection kept open on the test's event loop, so that a kill it sends is
    followed by the test's next query within a millisecond (no connect in between)."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def end_every_other_connection(self) -> None:
        await self._connection.execute(text(END_EVERY_OTHER_CONNECTION))


@pytest.fixture
async def fault_url(make_database: MakeDatabase) -> URL:
    """A freshly migrated database for one fault case."""
    return await make_database()


@pytest.fixture
async def observer(fault_url: URL) -> AsyncIterator[Observer]:
    watcher = Observer(fault_url)
    yield watcher
    await watcher.dispose()


@pytest.fixture
async def fault_db(fault_url: URL) -> AsyncIterator[Database]:
    """A toolkit Database on the fault case's own database (default pool settings)."""
    async with Database(fault_url) as database:
        yield database


@pytest.fixture
async def kill_switch(observer: Observer) -> AsyncIterator[KillSwitch]:
    async with observer.connect() as connection:
        yield KillSwitch(connection)


SHORTCUTS = {
    "shortcut-if-quiet": "the checkout ping skipped whenever the socket shows nothing arrived",
    "shortcut-never": "every checkout pinged",
    "shortcut-always": "the ping skipped even for a connection the server has ended",
}


@pytest.fixture(params=list(SHORTCUTS))
def checkout_shortcut(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each setting of the checkout ping's "recently returned" shortcut.

    ``shortcut-always`` hands out a connection the server has ended, as a socket check
    that misses the server's farewell would: the statement itself must then survive it.
    """
    from toolkit.database import _pool as database

    mode = str(request.param)
    monkeypatch.setattr(database, "_RECENT", 0.0 if mode == "shortcut-never" else 3600.0)
    if mode == "shortcut-always":
        monkeypatch.setattr(database, "_quiet", lambda raw: True)
    return mode
