"""Case 4: pool exhaustion - every pooled connection held, one more request.

After ``pool_timeout`` the request fails with a PoolExhausted that explains the pool
(its size, overflow and timeout) and how to size it; once a connection comes back, the
next request works.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL

import toolkit as tk
from tests.faults.conftest import Observer
from toolkit.database import Database
from toolkit.errors import PoolExhausted


async def test_a_request_beyond_the_pool_fails_after_pool_timeout_explaining_the_pool(
    fault_url: URL,
) -> None:
    async with Database(fault_url, pool_size=1, max_overflow=0, pool_timeout=0.5) as db:
        async with db.session() as holder:
            await holder.execute(text("select 1"))  # the pool's only connection, held

            started = time.monotonic()
            with pytest.raises(PoolExhausted) as caught:
                await tk.df("select 1 as one", database=db)
            waited = time.monotonic() - started

        message = str(caught.value)
        assert 0.5 <= waited <= 0.55 + 0.1
        for fact in ("pool_timeout=0.5 s", "pool_size=1", "max_overflow=0", "close sessions"):
            assert fact in message
        assert "tk.connect(" in message

        # The held connection is back: the next request gets it.
        frame = await tk.df("select 1 as one", database=db)
        assert frame["one"].tolist() == [1]
        assert db.engine.pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_an_exhausted_pool_is_reported_on_every_entry_point(fault_url: URL) -> None:
    db = Database(fault_url, pool_size=1, max_overflow=0, pool_timeout=0.2)

    async def another_session() -> None:
        async with db.session() as other:
            await other.execute(text("select 1"))

    async with db, db.session() as holder:
        await holder.execute(text("select 1"))

        with pytest.raises(PoolExhausted):
            await another_session()
        with pytest.raises(PoolExhausted):
            await tk.tables(database=db)
        with pytest.raises(PoolExhausted):
            await tk.bulk_insert("users", [{"email": "a@b.c", "name": "A"}], database=db)


async def test_overflow_connections_used_by_concurrent_frames_are_closed_when_returned(
    fault_url: URL, observer: Observer
) -> None:
    """Four concurrent ``tk.df`` calls on a pool of one: three overflow connections, which
    the pool closes as they come back (the raw path shields that close), one kept."""
    async with Database(fault_url, pool_size=1, max_overflow=3) as db:
        frames = await asyncio.gather(
            *(tk.df("SELECT pg_sleep(0.2), pg_backend_pid() AS pid", database=db) for _ in range(4))
        )
        assert len({int(f["pid"][0]) for f in frames}) == 4
        pool = db.engine.sync_engine.pool
        assert pool.checkedout() == 0  # type: ignore[attr-defined]
        assert pool.overflow() == 0  # type: ignore[attr-defined]
        await observer.wait_until(lambda pids: len(pids) == 1, observer.backends)
