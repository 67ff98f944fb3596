"""Case 1: the server kills a pooled connection - while it idles, or mid-transaction.

Idle: the next call succeeds (the pool pings before handing a connection out).
Mid-transaction: a ConnectionLost that says nothing was written, the session usable after
rollback, and 0 rows of the failed unit of work in the table.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text

import toolkit as tk
from tests.faults.conftest import Observer
from toolkit import queries
from toolkit.database import Database
from toolkit.errors import ConnectionLost
from toolkit.models import User


async def _count_users(db: Database) -> int:
    async with db.session() as s:
        return int((await s.execute(select(func.count()).select_from(User))).scalar_one())


async def test_an_idle_pooled_connection_killed_by_the_server_is_replaced_on_the_next_call(
    fault_db: Database, observer: Observer
) -> None:
    before = await tk.df("select pg_backend_pid() as pid", database=fault_db)
    killed = int(before["pid"][0])
    await observer.terminate(killed)

    after = await tk.df("select pg_backend_pid() as pid", database=fault_db)

    assert int(after["pid"][0]) != killed


async def test_every_idle_connection_killed_at_once_the_session_api_still_works(
    fault_db: Database, observer: Observer
) -> None:
    async with fault_db.session() as a, fault_db.session() as b, fault_db.session() as c:
        for s in (a, b, c):  # three connections checked out, then back in the pool
            await s.execute(text("select 1"))
    pids = await observer.backends()
    assert len(pids) == 3
    for pid in pids:
        await observer.terminate(pid)

    async with fault_db.session() as s:
        users = await queries.get_all_users(s)

    assert users == []
    assert not set(await observer.backends()) & set(pids)


async def test_a_connection_killed_mid_transaction_raises_connection_lost_and_writes_nothing(
    fault_db: Database, observer: Observer
) -> None:
    async with fault_db.async_session() as s:
        await queries.create_user(s, "first@example.com", "First")  # flushed, uncommitted
        pid = (await s.execute(text("select pg_backend_pid()"))).scalar_one()
        await observer.terminate(pid)

        with pytest.raises(ConnectionLost) as caught:
            await queries.create_user(s, "second@example.com", "Second")

        message = str(caught.value)
        assert "nothing from this unit of work was written" in message
        assert "rollback" in message
        assert fault_db.url.password is None or fault_db.url.password not in message

        await s.rollback()
        # The same session is usable again after the rollback, on a new connection.
        assert (await s.execute(text("select pg_backend_pid()"))).scalar_one() != pid
        assert await queries.get_all_users(s) == []

    assert await _count_users(fault_db) == 0


async def test_a_session_block_killed_mid_transaction_rolls_back_whole_and_the_next_block_works(
    fault_db: Database, observer: Observer
) -> None:
    async def unit_of_work() -> None:
        async with fault_db.session() as s:
            rows = [{"email": f"u{i}@example.com", "name": f"U{i}"} for i in range(100)]
            await tk.bulk_insert(User, rows, session=s)
            pid = (await s.execute(text("select pg_backend_pid()"))).scalar_one()
            await observer.terminate(pid)
            await s.execute(text("select count(*) from users"))

    with pytest.raises(ConnectionLost):
        await unit_of_work()

    async with fault_db.session() as s:
        await queries.create_user(s, "after@example.com", "After")
    assert await _count_users(fault_db) == 1


async def test_a_connection_killed_before_a_copy_raises_connection_lost_on_the_raw_driver_path(
    fault_db: Database, observer: Observer
) -> None:
    """COPY and array statements bypass SQLAlchemy's statement layer; the error is the same."""
    async with fault_db.async_session() as s:
        pid = (await s.execute(text("select pg_backend_pid()"))).scalar_one()
        await observer.terminate(pid)

        with pytest.raises(ConnectionLost):
            await tk.bulk_insert(User, [{"email": "x@example.com", "name": "X"}], session=s)
        await s.rollback()

    assert await _count_users(fault_db) == 0
    assert await tk.df("select 1 as one", database=fault_db) is not None
