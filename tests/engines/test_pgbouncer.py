"""Behind PgBouncer in transaction mode: every helper, under concurrency.

A transaction-mode pooler hands each transaction of a client whichever server
connection is free: nothing prepared or SET on one is there for the client's next
transaction, and what is left there reaches another client. The fixture's PgBouncer has
fewer server connections than a Database has pooled clients, so that happens here.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import pandas as pd
import pytest
from sqlalchemy import Column, Integer, MetaData, Table, Text, select, text
from sqlalchemy.engine import URL

import toolkit as tk
from tests.conftest import MakeDatabase, spy_on_copy
from tests.engines.pgbouncer import SERVER_CONNECTIONS, PgBouncer
from toolkit.database import Database
from toolkit.migrate import migrate
from toolkit.models import User

pytestmark = [pytest.mark.slow, pytest.mark.engine]

USERS = 3_000
"""Enough rows that tk.df and stream_df read the users table by COPY."""

ROWS = Table(
    "pool_rows",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("v", Text),
)


@pytest.fixture(scope="module")
async def direct_url(make_database: MakeDatabase) -> URL:
    """A migrated scratch database (reached directly) with USERS users and ``pool_rows``."""
    url = await make_database()
    async with Database(url) as db:
        await tk.bulk_insert(
            User,
            [{"email": f"u{i}@example.com", "name": f"user {i}"} for i in range(USERS)],
            database=db,
        )
        async with db.session() as s:
            await s.execute(text("CREATE TABLE pool_rows (id int PRIMARY KEY, v text)"))
            await s.execute(text("ANALYZE users"))
    return url


@pytest.fixture
async def pooled(pgbouncer: PgBouncer, direct_url: URL) -> AsyncIterator[Database]:
    """A Database on the scratch database through PgBouncer (the pooler detected)."""
    async with Database(pgbouncer.url(direct_url)) as db:
        yield db


def _calls(db: Database, i: int) -> list[Callable[[], Awaitable[Any]]]:
    """One of each helper; writers work on rows (or a table) of their own, numbered ``i``."""
    ids = list(range(i * 10, i * 10 + 10))
    rows = [{"id": n, "v": f"row {n}"} for n in ids]

    async def stream() -> int:
        return sum([len(c) async for c in tk.stream_df("SELECT id FROM users", database=db)])

    async def keyset() -> int:
        query = select(User.id, User.name)
        pages = [p async for p in tk.keyset(query, key=User.id, size=1_000, database=db)]
        return sum(len(p.items) for p in pages)

    async def write() -> int:
        await tk.bulk_insert(ROWS, rows, database=db)
        await tk.bulk_update(ROWS, [{"id": n, "v": "updated"} for n in ids], database=db)
        await tk.upsert(ROWS, [{"id": n, "v": "upserted"} for n in ids], database=db)
        return await tk.bulk_delete(ROWS, ids, database=db)

    frame = pd.DataFrame({"n": range(100), "label": [f"n{n}" for n in range(100)]})
    return [
        lambda: tk.df("SELECT id, name FROM users WHERE id <= :n", {"n": i + 1}, database=db),
        lambda: tk.df("SELECT id, email, name FROM users", database=db),
        stream,
        lambda: tk.paginate(select(User).order_by(User.id), page=2, size=10, database=db),
        keyset,
        write,
        lambda: tk.to_table(frame, f"copied_{i}", if_exists="replace", database=db),
        lambda: tk.describe("users", database=db),
        lambda: tk.tables(database=db),
        lambda: tk.sample("users", 5, database=db),
        lambda: tk.explain("SELECT * FROM users WHERE id = :n", {"n": i}, database=db),
    ]


async def test_a_hundred_concurrent_mixed_calls_behind_pgbouncer_all_succeed(
    pooled: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    copies = spy_on_copy(monkeypatch)
    calls = [call for i in range(10) for call in _calls(pooled, i)][:100]
    calls += _calls(pooled, 10)[: 100 - len(calls)]
    assert len(calls) == 100

    results = await asyncio.gather(*(call() for call in calls), return_exceptions=True)

    failures = [repr(r) for r in results if isinstance(r, BaseException)]
    assert failures == []
    assert any(copies)  # the COPY path was among them
    assert pooled.server_facts is not None
    assert pooled.server_facts.pooler == "transaction"


async def test_twenty_concurrent_dfs_behind_pgbouncer(pooled: Database) -> None:
    frames = await asyncio.gather(
        *(
            tk.df("SELECT n FROM generate_series(1, 50) n WHERE n > :m", {"m": m}, database=pooled)
            for m in range(20)
        )
    )
    assert [len(f) for f in frames] == [50 - m for m in range(20)]


async def test_a_parallel_read_behind_pgbouncer_is_one_stream_saying_why(
    pooled: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An exported snapshot lives in one server connection, which the pooler may hand to
    another client between transactions: the read is one stream, and it says so."""
    from toolkit.frames import _parallel

    monkeypatch.setattr(_parallel, "_said", set())
    with pytest.warns(tk.ToolkitWarning, match="transaction-mode pooler"):
        frame = await tk.df("SELECT id, email FROM users", database=pooled, parallel=2)
    assert len(frame) == USERS


async def _server_settings(pgbouncer: PgBouncer, url: URL, *names: str) -> list[tuple[str, ...]]:
    """``names``' values on each of PgBouncer's server connections: as many clients as it
    has server connections, each holding one in a transaction, ask at once."""
    dsn = pgbouncer.url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    clients = [
        await asyncpg.connect(dsn, statement_cache_size=0) for _ in range(SERVER_CONNECTIONS)
    ]
    try:
        for client in clients:
            await client.execute("BEGIN")
        backends = [await c.fetchval("SELECT pg_backend_pid()") for c in clients]
        assert len(set(backends)) == SERVER_CONNECTIONS
        shown = "SELECT " + ", ".join(f"current_setting('{n}')" for n in names)
        return [tuple(await c.fetchrow(shown)) for c in clients]
    finally:
        for client in clients:
            await client.close()


@pytest.mark.parametrize(
    "options", [{}, {"statement_timeout": 30, "read_only": True}], ids=["default", "limits"]
)
async def test_settings_of_the_toolkit_reach_no_other_client_behind_pgbouncer(
    pgbouncer: PgBouncer, direct_url: URL, options: dict[str, Any]
) -> None:
    names = (
        "statement_timeout",
        "default_transaction_read_only",
        "client_connection_check_interval",
    )
    before = await _server_settings(pgbouncer, direct_url, *names)
    async with Database(pgbouncer.url(direct_url), **options) as db:
        async with db.session() as s:
            await s.execute(text("SELECT 1"))
        await tk.df("SELECT 1 AS one", database=db)

        after = await _server_settings(pgbouncer, direct_url, *names)

    assert after == before
    assert set(after) == {("0", "off", "0")}


async def test_read_only_and_statement_timeout_hold_in_every_transaction_behind_pgbouncer(
    pgbouncer: PgBouncer, direct_url: URL
) -> None:
    shown = (
        "SELECT current_setting('transaction_read_only') AS ro,"
        " current_setting('statement_timeout') AS t"
    )
    async with Database(pgbouncer.url(direct_url), statement_timeout=30, read_only=True) as db:
        frames = await asyncio.gather(*(tk.df(shown, database=db) for _ in range(20)))
        async with db.session() as s:
            row = (await s.execute(text(shown))).one()
        with pytest.raises(tk.ReadOnlyViolation):
            await tk.bulk_insert(ROWS, [{"id": -1, "v": "refused"}], database=db)

    assert {(f["ro"][0], f["t"][0]) for f in frames} == {("on", "30s")}
    assert tuple(row) == ("on", "30s")


async def test_a_statement_timeout_behind_pgbouncer_cancels_on_the_server(
    pgbouncer: PgBouncer, direct_url: URL
) -> None:
    async with Database(pgbouncer.url(direct_url), statement_timeout=0.2) as db:
        with pytest.raises(tk.QueryTimeout):
            await tk.df("SELECT pg_sleep(5)", database=db)
        async with db.session() as s:
            with pytest.raises(tk.QueryTimeout):
                await s.execute(text("SELECT pg_sleep(5)"))


async def test_the_pooler_is_detected_and_shown(pgbouncer: PgBouncer, direct_url: URL) -> None:
    behind = Database(pgbouncer.url(direct_url))
    assert "server=" not in repr(behind)  # nothing known before a connect, none made for repr
    async with behind, Database(direct_url) as direct:
        facts = await behind.server()
        direct_facts = await direct.server()

    assert facts.pooler == "transaction"
    assert facts.pooler_source == "detected"
    assert direct_facts.pooler is None
    assert facts.version_num == direct_facts.version_num
    assert "behind a transaction-mode pooler (detected)" in repr(behind)
    assert "pooler" not in repr(direct)


async def test_the_pooler_option_needs_no_detection(pgbouncer: PgBouncer, direct_url: URL) -> None:
    async with Database(pgbouncer.url(direct_url), pooler="transaction") as told:
        frames = await asyncio.gather(*(tk.df("SELECT 1 AS one", database=told) for _ in range(20)))
        facts = await told.server()

    assert facts.pooler == "transaction"
    assert facts.pooler_source == "pooler= option"
    assert sum(len(f) for f in frames) == 20
    with pytest.raises(ValueError, match="pooler must be"):
        Database(direct_url, pooler="session")


async def test_an_interrupted_query_behind_pgbouncer_stops_on_the_server(
    pooled: Database, direct_url: URL
) -> None:
    marker = "toolkit_pgbouncer_interrupt"
    sql = f"SELECT pg_sleep(20) AS {marker}"

    running_after = await _interrupted(pooled, direct_url, sql, f"%AS {marker}")

    assert running_after == 0


async def _interrupted(pooled: Database, direct_url: URL, sql: str, like: str) -> int:
    """Start ``tk.df(sql)`` behind the pooler, cancel its task once the server runs it (a
    query LIKE ``like`` active in pg_stat_activity, seen past the pooler), and return how
    many such queries still run on the server a few seconds later."""
    task = asyncio.ensure_future(tk.df(sql, database=pooled))
    dsn = direct_url.set(drivername="postgresql").render_as_string(hide_password=False)
    server = await asyncpg.connect(dsn)
    running = (
        f"SELECT count(*) FROM pg_stat_activity WHERE query LIKE '{like}' AND state = 'active'"
    )
    try:
        for _ in range(200):
            if await server.fetchval(running):
                break
            await asyncio.sleep(0.05)
        assert await server.fetchval(running) == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(100):
            if not await server.fetchval(running):
                break
            await asyncio.sleep(0.05)
        return int(await server.fetchval(running))
    finally:
        await server.close()


def test_db_status_shows_the_configured_server_behind_pgbouncer(
    pgbouncer: PgBouncer, direct_url: URL
) -> None:
    url = pgbouncer.url(direct_url).render_as_string(hide_password=False)
    env = {**os.environ, "TOOLKIT_DATABASE_URL": url}
    result = subprocess.run(
        [sys.executable, "-m", "toolkit", "db", "status"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert f"127.0.0.1:{pgbouncer.port}" in result.stdout
    assert "behind a transaction-mode pooler (detected)" in result.stdout


async def test_migrate_and_a_session_of_helpers_behind_pgbouncer(
    pgbouncer: PgBouncer, make_database: MakeDatabase
) -> None:
    url = await make_database(migrated=False)
    async with Database(pgbouncer.url(url)) as db:
        revision = await migrate(database=db)
        async with db.session() as s:
            await tk.bulk_insert(User, [{"email": "a@example.com", "name": "a"}], session=s)
            seen = await tk.df("SELECT count(*) AS n FROM users", session=s)
            chunks = [c async for c in tk.stream_df("SELECT id FROM users", session=s)]
        after = await tk.df("SELECT count(*) AS n FROM users", database=db)

    assert revision
    assert seen["n"][0] == 1
    assert sum(len(c) for c in chunks) == 1
    assert after["n"][0] == 1


async def test_an_interrupted_copy_behind_pgbouncer_stops_on_the_server(
    pooled: Database, direct_url: URL
) -> None:
    """A cancelled COPY closes its connection; behind a pooler the server would only see
    that at its next write (here after 20 s of sleep and a sort), so it is cancelled first."""
    marker = "toolkit_pgbouncer_copy_interrupt"
    sql = f"SELECT g AS {marker} FROM generate_series(1, 5000) g, pg_sleep(20) ORDER BY g DESC"

    running_after = await _interrupted(pooled, direct_url, sql, f"COPY%AS {marker}%")

    assert running_after == 0
