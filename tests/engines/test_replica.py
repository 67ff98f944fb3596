"""A read replica: every read helper works on a hot standby; every write helper (and
``migrate``) is refused at once, saying the server is a read-only standby and where to
write instead; a query a recovery conflict cancels says what to ask the administrator for.

The tests start their own primary and standby (``replica_fixtures``), so they run
wherever the embedded server's binaries are: no other server is used.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import asyncpg
import pandas as pd
import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

import toolkit as tk
from tests.conftest import spy_on_copy, spy_on_parts
from tests.engines.replica_fixtures import DEMO, Cluster, Replica, replica, start_standby
from toolkit.errors import sqlstate_of
from toolkit.models import Post, Tag, User

__all__ = ["replica"]  # the fixture, imported for the tests below

_STANDBY_WORDS = ("read-only hot standby", "primary", "TOOLKIT_DATABASE_URL")


@pytest.fixture(scope="module")
async def standby_db(replica: Replica) -> AsyncIterator[tk.Database]:
    async with tk.Database(replica.standby.url()) as db:
        yield db


@pytest.fixture(scope="module")
async def primary_db(replica: Replica) -> AsyncIterator[tk.Database]:
    async with tk.Database(replica.primary.url()) as db:
        yield db


# Reads -------------------------------------------------------------------------------


async def test_the_standby_is_a_standby(standby_db: tk.Database) -> None:
    frame = await tk.df("SELECT pg_is_in_recovery() AS standby", database=standby_db)
    assert bool(frame["standby"].iloc[0]) is True


async def test_the_server_facts_say_standby_and_read_only(
    standby_db: tk.Database, primary_db: tk.Database
) -> None:
    facts = await standby_db.server()
    assert facts.standby
    assert facts.read_only
    assert "standby, read-only" in repr(standby_db)
    primary = await primary_db.server()
    assert not primary.standby
    assert not primary.read_only


async def test_df_reads_on_the_row_path_and_the_copy_path(
    standby_db: tk.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    users = await tk.df(select(User.id, User.email).order_by(User.id), database=standby_db)
    assert len(users) == DEMO["users"]
    copied = spy_on_copy(monkeypatch)
    many = await tk.df(
        "SELECT g AS n, g::text AS t, now() AS at FROM generate_series(1, 5000) AS g",
        database=standby_db,
    )
    assert copied == [True]  # COPY TO STDOUT (and its pinned settings) in read-only
    assert many["n"].sum() == 5000 * 5001 // 2


async def test_df_in_a_session_on_the_standby(standby_db: tk.Database) -> None:
    async with standby_db.session() as s:
        frame = await tk.df("SELECT count(*) AS n FROM posts", session=s)
    assert int(frame["n"].iloc[0]) == DEMO["users"] * DEMO["posts_per_user"]


async def test_stream_df_over_copy_and_over_a_cursor(standby_db: tk.Database) -> None:
    copied = [
        len(chunk)
        async for chunk in tk.stream_df(
            "SELECT g AS n FROM generate_series(1, 5000) AS g",
            chunk_size=2000,
            database=standby_db,
        )
    ]
    assert copied == [2000, 2000, 1000]
    # An array of records has no COPY text form the parser takes: a cursor serves it.
    cursor = [
        len(chunk)
        async for chunk in tk.stream_df(
            select(Post.id, Post.title).order_by(Post.id), chunk_size=64, database=standby_db
        )
    ]
    assert sum(cursor) == DEMO["users"] * DEMO["posts_per_user"]


async def test_a_parallel_read_shares_the_standbys_snapshot(
    standby_db: tk.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A snapshot exported on a standby is imported by the standby's other connections."""
    parts = spy_on_parts(monkeypatch)
    query = "SELECT id, title, author_id FROM posts ORDER BY author_id, id"
    parallel = await tk.df(query, database=standby_db, parallel=2, partition_on="author_id")
    assert len({id(raw) for raw in parts}) == 2
    pd.testing.assert_frame_equal(parallel, await tk.df(query, database=standby_db))


async def test_paginate_and_keyset(standby_db: tk.Database) -> None:
    page = await tk.paginate(select(Post).order_by(Post.id), page=2, size=30, database=standby_db)
    assert page.total == DEMO["users"] * DEMO["posts_per_user"]
    assert [p.id for p in page.items] == list(range(31, 61))
    walked = [
        len(p.items)
        async for p in tk.keyset(select(Post), key=Post.id, size=64, database=standby_db)
    ]
    assert sum(walked) == DEMO["users"] * DEMO["posts_per_user"]


async def test_catalog_helpers(standby_db: tk.Database) -> None:
    listed = await tk.tables(database=standby_db)
    assert {"users", "posts", "comments", "tags", "post_tags"} <= set(listed["name"])
    described = await tk.describe("posts", database=standby_db)
    assert "author_id" in repr(described)
    assert len(await tk.sample("users", 5, database=standby_db)) == 5
    assert len(await tk.sample("users", 5, random=True, database=standby_db)) == 5
    profiled = await tk.profile("users", database=standby_db)
    assert "email" in set(profiled["column"])


async def test_explain_and_explain_analyze_of_a_read(standby_db: tk.Database) -> None:
    query = select(Post).where(Post.author_id == 1)
    assert "posts" in (await tk.explain(query, database=standby_db)).text
    analyzed = await tk.explain(query, analyze=True, database=standby_db)
    assert "actual" in analyzed.text


async def test_explain_of_a_write_without_analyze(standby_db: tk.Database) -> None:
    plan = await tk.explain("DELETE FROM comments WHERE id = 1", database=standby_db)
    assert "Delete on comments" in plan.text
    # ANALYZE would run the DELETE: the standby refuses it, in the standby's words.
    with pytest.raises(tk.ReadOnlyViolation, match="read-only hot standby"):
        await tk.explain("DELETE FROM comments WHERE id = 1", analyze=True, database=standby_db)


# Writes ------------------------------------------------------------------------------

Write = Callable[[tk.Database], Awaitable[Any]]

WRITES: dict[str, Write] = {
    "bulk_insert": lambda db: tk.bulk_insert(Tag, [{"name": "replica"}], database=db),
    "bulk_update": lambda db: tk.bulk_update(Tag, [{"id": 1, "name": "x"}], database=db),
    "bulk_delete": lambda db: tk.bulk_delete(Tag, [1], database=db),
    "upsert": lambda db: tk.upsert(Tag, [{"id": 1, "name": "x"}], database=db),
    "to_table": lambda db: tk.to_table(pd.DataFrame({"a": [1, 2]}), "copied", database=db),
    "seed_demo": lambda db: tk.seed_demo(users=1, progress=False, database=db),
    "reset_demo": lambda db: tk.reset_demo(users=1, database=db),
    "migrate": lambda db: tk.migrate(database=db),
    "downgrade": lambda db: tk.downgrade("base", database=db),
}


@pytest.mark.parametrize("name", list(WRITES))
async def test_a_write_helper_is_refused_at_once_naming_the_standby(
    name: str, standby_db: tk.Database
) -> None:
    with pytest.raises(tk.ReadOnlyViolation) as caught:
        await WRITES[name](standby_db)
    message = str(caught.value)
    assert message.startswith(name), message
    assert "refused before anything was sent" in message
    for words in _STANDBY_WORDS:
        assert words in message
    assert "read_only=True" not in message  # the old advice, wrong here
    assert caught.value.sqlstate == "25006"


async def test_a_write_helper_in_a_session_is_refused_too(standby_db: tk.Database) -> None:
    async with standby_db.session() as s:
        with pytest.raises(tk.ReadOnlyViolation, match=r"^bulk_insert .* read-only hot standby"):
            await tk.bulk_insert(Tag, [{"name": "replica"}], session=s)
        # The session is still usable for reads.
        assert int((await s.execute(text("SELECT count(*) FROM tags"))).scalar_one()) > 0


async def test_a_write_statement_the_standby_rejects_names_the_standby(
    standby_db: tk.Database,
) -> None:
    """SQL that writes goes to the server, whose refusal (25006) is told as the standby's."""
    with pytest.raises(tk.ReadOnlyViolation) as caught:
        await tk.df("INSERT INTO tags (name) VALUES ('x') RETURNING id", database=standby_db)
    message = str(caught.value)
    assert "cannot execute INSERT in a read-only transaction" in message
    for words in _STANDBY_WORDS:
        assert words in message
    with pytest.raises(tk.ReadOnlyViolation, match="read-only hot standby"):
        await tk.execute("UPDATE tags SET name = name", database=standby_db)
    async with standby_db.session() as s:
        with pytest.raises(tk.ReadOnlyViolation, match="read-only hot standby"):
            await s.execute(text("UPDATE tags SET name = name"))


async def test_a_read_only_database_on_the_primary_keeps_its_own_advice(
    replica: Replica,
) -> None:
    """The standby wording follows the server's role, not the SQLSTATE alone."""
    async with tk.Database(replica.primary.url(), read_only=True) as db:
        with pytest.raises(tk.ReadOnlyViolation) as caught:
            await tk.df("INSERT INTO tags (name) VALUES ('x') RETURNING id", database=db)
    assert "read_only=True" in str(caught.value)
    assert "standby" not in str(caught.value)


async def test_the_primary_takes_the_writes(replica: Replica, primary_db: tk.Database) -> None:
    inserted = await tk.bulk_insert(Tag, [{"name": "on the primary"}], database=primary_db)
    assert inserted == 1
    await replica.caught_up()
    async with tk.Database(replica.standby.url()) as db:
        found = await tk.df(
            "SELECT count(*) AS n FROM tags WHERE name = 'on the primary'", database=db
        )
    assert int(found["n"].iloc[0]) == 1


@pytest.fixture
def promotable(replica: Replica) -> Iterator[Cluster]:
    standby = start_standby(replica, "promotable")
    yield standby
    standby.stop()


async def test_a_promoted_standby_takes_writes_at_once(promotable: Cluster) -> None:
    """The role is known per engine, and asked again before a refusal: a standby promoted
    while the Database lives takes writes without a reconnect."""
    async with tk.Database(promotable.url()) as db:
        with pytest.raises(tk.ReadOnlyViolation):
            await tk.bulk_insert(Tag, [{"name": "before"}], database=db)
        promotable.promote()
        assert await tk.bulk_insert(Tag, [{"name": "after"}], database=db) == 1


# Recovery conflicts ------------------------------------------------------------------


async def _running_on(cluster: Cluster, marker: str) -> None:
    """Wait until a statement containing ``marker`` is running on ``cluster``."""
    conn = await asyncpg.connect(cluster.dsn())
    try:
        deadline = time.monotonic() + 10
        while not await conn.fetchval(
            "SELECT count(*) > 0 FROM pg_stat_activity WHERE state = 'active' "
            "AND pid <> pg_backend_pid() AND strpos(query, $1) > 0",
            marker,
        ):
            assert time.monotonic() < deadline, f"{marker} never started on the standby"
            await asyncio.sleep(0.02)
    finally:
        await conn.close()


def _says_what_to_ask_for(error: tk.RecoveryConflict) -> None:
    message = str(error)
    assert "recovery conflict" in message
    assert "hot_standby_feedback = on" in message
    assert "max_standby_streaming_delay" in message
    assert "Nothing was written" in message
    assert error.sqlstate == "40001"


async def test_a_query_a_dropped_table_cancels_says_what_to_ask_for(
    replica: Replica, standby_db: tk.Database
) -> None:
    """Replaying the primary's DROP TABLE needs the table's lock: the standby cancels
    the query holding it (row path)."""
    await replica.on_primary("CREATE TABLE conflict_lock AS SELECT 1 AS n")
    await replica.caught_up()
    query = asyncio.ensure_future(
        tk.df(
            "SELECT count(*) FROM conflict_lock, pg_sleep(20) AS lock_marker", database=standby_db
        )
    )
    await _running_on(replica.standby, "lock_marker")
    await replica.on_primary("DROP TABLE conflict_lock")
    with pytest.raises(tk.RecoveryConflict) as caught:
        await asyncio.wait_for(query, 15)
    _says_what_to_ask_for(caught.value)
    assert "lock" in str(caught.value)  # the server's DETAIL says which conflict
    frame = await tk.df("SELECT 1 AS n", database=standby_db)  # the pool is fine
    assert int(frame["n"].iloc[0]) == 1


async def test_a_query_whose_rows_vacuum_removes_says_what_to_ask_for(
    replica: Replica, standby_db: tk.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Replaying VACUUM's removal of rows an older snapshot may still need: the standby
    cancels the query that holds the snapshot (COPY path)."""
    await replica.on_primary(
        "CREATE TABLE conflict_rows AS SELECT g AS n FROM generate_series(1, 5000) AS g; "
        "ANALYZE conflict_rows"
    )
    await replica.caught_up()
    copied = spy_on_copy(monkeypatch)
    query = asyncio.ensure_future(
        tk.df(
            "SELECT n FROM conflict_rows, pg_sleep(20) AS rows_marker WHERE n > 0",
            database=standby_db,
        )
    )
    await _running_on(replica.standby, "rows_marker")
    await replica.on_primary("DELETE FROM conflict_rows WHERE n > 10")
    await replica.on_primary("VACUUM conflict_rows")
    with pytest.raises(tk.RecoveryConflict) as caught:
        await asyncio.wait_for(query, 15)
    _says_what_to_ask_for(caught.value)
    assert copied == []  # cancelled inside the COPY, which never delivered a frame


async def test_a_query_in_a_session_ended_by_a_conflict_says_so(
    replica: Replica, standby_db: tk.Database
) -> None:
    """Inside a savepoint (a session's tk.df) the standby ends the whole connection
    instead (FATAL): ConnectionLost, with the server's reason kept, not the failed
    release of the savepoint that followed."""
    await replica.on_primary("CREATE TABLE conflict_session AS SELECT 1 AS n")
    await replica.caught_up()

    async def in_a_session() -> None:
        async with standby_db.session() as s:
            await s.execute(text("SELECT 1"))  # the session's transaction is open
            await tk.df(
                "SELECT count(*) FROM conflict_session, pg_sleep(20) AS session_marker",
                session=s,
            )

    query = asyncio.ensure_future(in_a_session())
    await _running_on(replica.standby, "session_marker")
    await replica.on_primary("DROP TABLE conflict_session")
    with pytest.raises(tk.ConnectionLost) as caught:
        await asyncio.wait_for(query, 15)
    assert "terminating connection due to conflict with recovery" in str(caught.value)
    assert caught.value.applied is False


async def test_a_serialization_failure_on_the_primary_is_not_a_recovery_conflict(
    primary_db: tk.Database,
) -> None:
    """40001 on a primary is a serialization failure: not told as a standby's conflict."""
    async with primary_db.session() as first, primary_db.session() as second:
        await first.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        await first.execute(text("SELECT name FROM tags WHERE id = 2"))
        await second.execute(text("UPDATE tags SET name = name || '!' WHERE id = 2"))
        await second.commit()
        with pytest.raises(DBAPIError) as caught:
            await first.execute(text("UPDATE tags SET name = name || '?' WHERE id = 2"))
        await first.rollback()
    assert sqlstate_of(caught.value) == "40001"
    assert not isinstance(caught.value, tk.RecoveryConflict)


# The %%sql magic ---------------------------------------------------------------------


@pytest.mark.slow
def test_the_sql_magic_reads_and_names_the_standby_on_a_write(replica: Replica) -> None:
    from tests.runtime.test_interrupt import Kernel

    url = replica.standby.url().render_as_string(hide_password=False)
    kernel = Kernel({**os.environ, "TOOLKIT_DATABASE_URL": url})
    try:
        kernel.run("import toolkit as tk\n%load_ext toolkit")
        read = kernel.run("%%sql\nSELECT count(*) AS n FROM users")
        shown = [o["data"]["text/plain"] for o in read if o["type"] == "execute_result"]
        assert len(shown) == 1, read
        assert str(DEMO["users"]) in shown[0]
        wrote = kernel.run("%%sql\nUPDATE tags SET name = name")
        errors = "".join(o.get("text", "") for o in wrote if o["type"] == "stream")
        assert "read-only hot standby" in errors, wrote
    finally:
        kernel.close()


# The command line --------------------------------------------------------------------


def test_db_status_says_standby_and_migrate_is_refused(replica: Replica) -> None:
    from tests.cli.test_cli import cli_env, toolkit

    env = cli_env(database_url=replica.standby.url().render_as_string(hide_password=False))
    status = toolkit("db", "status", env=env)
    assert status.returncode == 0, status.stderr
    assert "standby, read-only" in status.stdout
    migrated = toolkit("migrate", env=env)
    assert migrated.returncode != 0
    assert "read-only hot standby" in migrated.stdout + migrated.stderr
    assert "Traceback" not in migrated.stderr
