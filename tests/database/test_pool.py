"""The pool's checkout check (``_pool``): one round trip for an idle connection, none for
one just returned whose socket is quiet, and a connection the server ended is replaced."""

from __future__ import annotations

import asyncio
import threading

import asyncpg
import pytest
from sqlalchemy import text

from toolkit.database import Database, _pool


def _spy_on_statements(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What asyncpg is asked to send by ``execute`` (the ping) or to begin."""
    sent: list[str] = []
    execute, transaction = asyncpg.Connection.execute, asyncpg.Connection.transaction

    async def spy_execute(self: asyncpg.Connection, query: str, *args: object) -> str:
        sent.append(query)
        return await execute(self, query, *args)

    def spy_transaction(self: asyncpg.Connection, **kwargs: object) -> object:
        sent.append("BEGIN")
        return transaction(self, **kwargs)

    monkeypatch.setattr(asyncpg.Connection, "execute", spy_execute)
    monkeypatch.setattr(asyncpg.Connection, "transaction", spy_transaction)
    return sent


async def _backend_pid(database: Database) -> int:
    async with database.engine.connect() as conn:
        return int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def test_a_connection_idle_in_the_pool_is_pinged_in_one_round_trip_before_reuse(
    fresh: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _backend_pid(fresh)  # opens it: a new connection is not pinged
    monkeypatch.setattr(_pool, "_RECENT", 0.0)  # every return is long ago
    sent = _spy_on_statements(monkeypatch)

    async with fresh.engine.connect() as conn:
        await conn.get_raw_connection()

    assert sent == ["SELECT 1"], "pinged once, without BEGIN/ROLLBACK around it"


async def test_a_connection_just_returned_and_quiet_is_reused_without_a_round_trip(
    fresh: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _backend_pid(fresh)
    sent = _spy_on_statements(monkeypatch)

    async with fresh.engine.connect() as conn:
        await conn.get_raw_connection()

    assert sent == []


async def test_a_connection_whose_server_end_closed_unseen_by_the_loop_is_replaced(
    fresh: Database,
) -> None:
    """The backend is killed while the event loop is blocked, so asyncpg has not read
    the end of the connection: the socket check at checkout has to see it."""
    killed = await _backend_pid(fresh)
    admin_dsn = fresh.url.set(drivername="postgresql").render_as_string(hide_password=False)

    async def kill() -> bool:
        admin = await asyncpg.connect(admin_dsn)
        try:  # with a timeout, pg_terminate_backend waits until the backend has exited
            return bool(await admin.fetchval("SELECT pg_terminate_backend($1, 10000)", killed))
        finally:
            await admin.close()

    outcome: list[bool] = []
    blocking = threading.Thread(target=lambda: outcome.append(asyncio.run(kill())))
    blocking.start()
    blocking.join()  # this loop does not run meanwhile
    assert outcome == [True]
    assert not fresh.engine.pool.checkedout()  # type: ignore[attr-defined]

    assert await _backend_pid(fresh) != killed
