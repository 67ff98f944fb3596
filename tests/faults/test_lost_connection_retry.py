"""Case 1b: the server ends the pool's connections just before the next statement.

A restart, a failover or an idle-session killer ends every connection of a notebook
left open; the next query follows within a millisecond, on a connection the pool
believes alive. A read survives it (retried once on a new connection, before any row
reached the caller); a write is never retried and says whether it may have been
applied; inside a caller's session nothing is retried, the transaction is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import pandas as pd
import pytest
from sqlalchemy import func, select, text

import toolkit as tk
from tests.faults.conftest import KillSwitch, Observer
from toolkit.database import Database
from toolkit.errors import ConnectionLost
from toolkit.models import User

REPEATS = 50


async def _users(db: Database) -> int:
    async with db.session() as s:
        return int((await s.execute(select(func.count()).select_from(User))).scalar_one())


async def _wait_for_active(observer: Observer, fragment: str) -> None:
    await observer.wait_until(
        lambda queries: any(fragment in str(q) for q in queries), observer.statements
    )


async def test_the_first_query_after_the_server_ends_every_pooled_connection_succeeds_50_of_50(
    fault_db: Database, kill_switch: KillSwitch, checkout_shortcut: str
) -> None:
    answers = []
    for _ in range(REPEATS):
        await tk.df("select 1", database=fault_db)  # a warm pool
        await kill_switch.end_every_other_connection()
        answers.append((await tk.df("select 41 + 1 as answer", database=fault_db))["answer"][0])

    assert answers == [42] * REPEATS


async def test_stream_df_reads_again_when_the_connection_is_lost_before_its_first_chunk(
    fault_db: Database, kill_switch: KillSwitch, checkout_shortcut: str
) -> None:
    for _ in range(10):
        await tk.df("select 1", database=fault_db)
        await kill_switch.end_every_other_connection()
        chunks = [
            chunk["n"].tolist()
            async for chunk in tk.stream_df(
                "select generate_series(1, 5) as n", chunk_size=2, database=fault_db
            )
        ]
        assert chunks == [[1, 2], [3, 4], [5]]


async def test_a_parallel_read_reads_again_when_its_connections_were_ended(
    fault_db: Database, kill_switch: KillSwitch, checkout_shortcut: str
) -> None:
    """Every part on new connections, in a new snapshot: the frame is whole, once."""
    await tk.execute(
        "CREATE TABLE lost_parts AS SELECT g AS id, md5(g::text) AS tag "
        "FROM generate_series(1, 20000) g",
        database=fault_db,
    )
    expected = await tk.df("select * from lost_parts order by id", database=fault_db)
    for _ in range(5):
        await tk.df("select * from lost_parts", database=fault_db, parallel=2)  # 2 pooled
        await kill_switch.end_every_other_connection()
        frame = await tk.df("select * from lost_parts", database=fault_db, parallel=2)
        pd.testing.assert_frame_equal(frame.sort_values("id", ignore_index=True), expected)
        await kill_switch.end_every_other_connection()
        chunks = [
            chunk
            async for chunk in tk.stream_df(
                "select * from lost_parts", database=fault_db, parallel=2, progress=False
            )
        ]
        streamed = pd.concat(chunks).sort_values("id", ignore_index=True)
        pd.testing.assert_frame_equal(streamed, expected)


async def test_paginate_reads_again_when_its_connection_was_ended(
    fault_db: Database, kill_switch: KillSwitch, checkout_shortcut: str
) -> None:
    await tk.bulk_insert(
        User, [{"email": f"u{i}@example.com", "name": f"U{i}"} for i in range(7)], database=fault_db
    )
    for _ in range(10):
        await tk.df("select 1", database=fault_db)
        await kill_switch.end_every_other_connection()
        page = await tk.paginate(
            select(User.email).order_by(User.id), page=2, size=3, database=fault_db
        )
        assert (page.total, [row.email for row in page.items]) == (
            7,
            ["u3@example.com", "u4@example.com", "u5@example.com"],
        )


async def test_a_bulk_insert_after_the_server_ended_the_pooled_connection_gets_a_new_one(
    fault_db: Database, observer: Observer
) -> None:
    """The checkout ping replaces a connection the server ended while it idled."""
    pid = int((await tk.df("select pg_backend_pid() as pid", database=fault_db))["pid"][0])
    await observer.terminate(pid)

    written = await tk.bulk_insert(
        User, [{"email": "a@example.com", "name": "A"}], database=fault_db
    )

    assert (written, await _users(fault_db)) == (1, 1)


async def test_a_write_is_never_retried_lost_before_it_was_sent_it_says_it_was_not_applied(
    fault_db: Database, kill_switch: KillSwitch, monkeypatch: pytest.MonkeyPatch
) -> None:
    from toolkit.database import _pool as database

    monkeypatch.setattr(database, "_quiet", lambda raw: True)  # hand out the dead connection
    await tk.df("select 1", database=fault_db)
    await kill_switch.end_every_other_connection()

    with pytest.raises(ConnectionLost) as lost:
        await tk.df(
            "insert into users (email, name) values ('w@example.com', 'W') returning id",
            database=fault_db,
        )

    assert "before the statement was sent: it was not applied - run it again" in str(lost.value)
    assert lost.value.applied is False
    assert await _users(fault_db) == 0


async def test_a_write_lost_after_it_was_sent_outside_a_transaction_says_it_may_have_been_applied(
    fault_db: Database, observer: Observer
) -> None:
    write = asyncio.create_task(
        tk.df(
            "insert into users (email, name) select 'slow@example.com', 'Slow' "
            "from pg_sleep(30) returning id",
            database=fault_db,
        )
    )
    await _wait_for_active(observer, "pg_sleep(30)")
    for pid in await observer.backends():
        await observer.terminate(pid)

    with pytest.raises(ConnectionLost) as lost:
        await asyncio.wait_for(write, 20)  # not run again: that would sleep 30 s more

    message = str(lost.value)
    assert (
        "after the statement was sent, outside a transaction: it may have been applied" in message
    )
    assert "check the table" in message
    assert lost.value.applied is None
    assert await _users(fault_db) == 0  # ended mid-statement: the server rolled it back


async def test_a_read_lost_twice_raises_connection_lost_saying_it_was_retried_once(
    fault_db: Database, observer: Observer
) -> None:
    read = asyncio.create_task(tk.df("select 1 as one from pg_sleep(30)", database=fault_db))
    for _ in range(2):  # the first try, then the one retry
        await _wait_for_active(observer, "pg_sleep(30)")
        for pid in await observer.backends():
            await observer.terminate(pid)

    with pytest.raises(ConnectionLost) as lost:
        await asyncio.wait_for(read, 20)

    assert "after the read had been retried once (nothing was written)" in str(lost.value)
    assert lost.value.applied is False


async def test_a_read_lost_mid_statement_runs_once_more_on_a_new_connection(
    fault_db: Database, observer: Observer
) -> None:
    read = asyncio.create_task(
        tk.df("select pg_backend_pid() as pid, pg_sleep(0.5)::text as slept", database=fault_db)
    )
    await _wait_for_active(observer, "pg_sleep(0.5)")
    [killed] = await observer.backends()
    await observer.terminate(killed)

    frame = await asyncio.wait_for(read, 20)

    assert int(frame["pid"][0]) != killed


async def test_inside_a_session_nothing_is_retried_and_the_error_says_the_transaction_is_gone(
    fault_db: Database, observer: Observer
) -> None:
    async with fault_db.async_session() as s:
        pid = (await s.execute(text("select pg_backend_pid()"))).scalar_one()
        await observer.terminate(pid)

        with pytest.raises(ConnectionLost) as lost:
            await tk.df("select 41 + 1 as answer", session=s)
        await s.rollback()

    message = str(lost.value)
    assert "your session's transaction is gone" in message
    assert "nothing is retried inside a session" in message
    assert "rollback" in message


def _bulk_insert(db: Database) -> Awaitable[object]:
    rows = [{"email": f"bulk{i}@example.com", "name": f"B{i}"} for i in range(200_000)]
    return tk.bulk_insert(User, rows, database=db)


def _to_table(db: Database) -> Awaitable[object]:
    frame = pd.DataFrame({"email": [f"bulk{i}@example.com" for i in range(400_000)]})
    return tk.to_table(frame, "users_copy", database=db)


@pytest.mark.parametrize("write", [_bulk_insert, _to_table], ids=["bulk_insert", "to_table"])
async def test_a_copy_lost_mid_stream_ends_at_once_saying_nothing_was_written(
    fault_db: Database, observer: Observer, write: Callable[[Database], Awaitable[object]]
) -> None:
    """A COPY blocked on a full socket when the server ends the connection fails at once
    (asyncpg alone would wait forever for the socket to drain)."""
    task = asyncio.ensure_future(write(fault_db))
    await _wait_for_active(observer, "COPY")
    for pid in await observer.backends():
        await observer.terminate(pid)

    with pytest.raises(ConnectionLost) as lost:
        await asyncio.wait_for(task, 30)

    assert "inside the toolkit's own transaction, which never committed: nothing was written" in (
        str(lost.value)
    )
    assert await _users(fault_db) == 0
    tables = await tk.df("select to_regclass('users_copy') is null as gone", database=fault_db)
    assert tables["gone"].tolist() == [True]


@pytest.mark.parametrize(
    "rows",
    [
        "generate_series(1, 1000000) as n",  # COPY
        "point(g, g) as p from generate_series(1, 1000000) as g",  # a cursor (no COPY)
    ],
    ids=["copy", "cursor"],
)
async def test_a_stream_lost_after_its_first_chunk_is_not_retried_and_says_so(
    fault_db: Database, observer: Observer, rows: str
) -> None:
    """Rows already delivered cannot be taken back: the stream ends, saying why."""
    stream = tk.stream_df(f"select {rows}", chunk_size=1000, database=fault_db)
    async with contextlib.aclosing(stream):
        first = await anext(stream)
        [pid] = await observer.backends()
        await observer.terminate(pid)

        with pytest.raises(ConnectionLost) as lost:
            async for _ in stream:
                pass

    assert len(first) == 1000
    assert "after the stream had delivered rows, so it could not be retried" in str(lost.value)
