"""Case 2: the server restarted (`toolkit db stop` / `toolkit db start`) between two calls.

The second call works on the same ``Database`` - no kernel or script restart: the pool
pings each connection before handing it out and replaces the ones the restart closed, and
the embedded server comes back on the same socket, so the URL the Database holds still
names it. One embedded server serves the module, in a data directory of its own.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL

import toolkit as tk
from tests.cli.test_cli import cli_env, toolkit_async
from toolkit import server
from toolkit.database import Database
from toolkit.errors import ConnectionLost

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Embedded:
    data_dir: Path
    url: URL


@pytest.fixture(scope="module")
def embedded() -> Iterator[Embedded]:
    """An embedded server for this module (outside tmp_path: see test_server.scratch_dir)."""
    base = Path(tempfile.mkdtemp(prefix="tk-"))
    data_dir = base / "pgdata"
    try:
        yield Embedded(data_dir, server.start(data_dir))
    finally:
        try:
            server.stop(data_dir)
        finally:
            shutil.rmtree(base, ignore_errors=True)


async def restart_with_the_cli(embedded: Embedded) -> None:
    """``toolkit db stop`` then ``toolkit db start``, as typed in a terminal; a new postmaster."""
    env = cli_env(data_dir=embedded.data_dir)
    before = server.status(embedded.data_dir).pid
    for command in ("stop", "start"):
        result = await toolkit_async("db", command, env=env)
        assert result.returncode == 0, result.stderr
    assert server.status(embedded.data_dir).pid not in (None, before)
    assert server.url(embedded.data_dir) == embedded.url  # same socket, so the same URL


async def backends_of_three_sessions(db: Database) -> set[int]:
    """Run a query in three sessions open at once: three pooled connections."""
    async with db.session() as a, db.session() as b, db.session() as c:
        return {(await s.execute(text("select pg_backend_pid()"))).scalar_one() for s in (a, b, c)}


async def test_df_and_a_session_work_on_the_same_database_after_a_restart(
    embedded: Embedded,
) -> None:
    async with Database(embedded.url) as db:
        before = await tk.df("select 1 as x", database=db)
        async with db.session() as s:
            assert (await s.execute(text("select 2"))).scalar_one() == 2

        await restart_with_the_cli(embedded)

        began = time.monotonic()
        after = await tk.df("select 1 as x", database=db)
        recovered_in = time.monotonic() - began
        async with db.session() as s:
            assert (await s.execute(text("select 2"))).scalar_one() == 2

    assert after.equals(before)
    print(f"first tk.df after the restart (a pre-ping, then a reconnect): {recovered_in:.3f} s")


async def test_every_idle_pooled_connection_is_replaced_after_a_restart(
    embedded: Embedded,
) -> None:
    async with Database(embedded.url) as db:
        old = await backends_of_three_sessions(db)
        assert len(old) == 3
        assert db.engine.pool.checkedin() == 3  # type: ignore[attr-defined]

        await restart_with_the_cli(embedded)

        began = time.monotonic()
        new = await backends_of_three_sessions(db)
        recovered_in = time.monotonic() - began
        frames = [await tk.df("select 1 as x", database=db) for _ in range(5)]

    assert len(new) == 3
    assert not new & old  # every dead connection was replaced, none handed out
    assert all(frame["x"].tolist() == [1] for frame in frames)
    print(f"three sessions at once after the restart (3 dead connections): {recovered_in:.3f} s")


SCRIPT = """
import sys

import toolkit as tk


def backend() -> int:
    return int(tk.run(tk.df("select pg_backend_pid() as pid"))["pid"].item())


print(backend(), flush=True)
sys.stdin.readline()  # the test restarts the server, then says go on
print(backend(), flush=True)
"""


async def test_a_script_using_tk_run_queries_again_after_a_restart(embedded: Embedded) -> None:
    """The default database of a plain script (tk.run, the embedded server by environment)."""
    script = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        SCRIPT,
        env=cli_env(data_dir=embedded.data_dir),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert script.stdin is not None
    assert script.stdout is not None
    try:
        first = await asyncio.wait_for(script.stdout.readline(), 60)
        assert first.strip().isdigit(), first

        await restart_with_the_cli(embedded)
        script.stdin.write(b"go on\n")
        out, err = await asyncio.wait_for(script.communicate(), 60)
    finally:
        if script.returncode is None:
            script.kill()
            await script.wait()

    assert script.returncode == 0, err.decode()
    assert err == b""  # no traceback, no warning about connections the restart closed
    assert int(out) != int(first)  # a new backend, on the new server


async def test_reads_pages_and_bulk_writes_work_after_a_restart_whatever_the_checkout_shortcut(
    embedded: Embedded, checkout_shortcut: str
) -> None:
    """Every pooled connection died with the server; the first calls after it still work.

    Under ``shortcut-always`` the pool hands out the dead connections unpinged: a read
    is then retried once (its retry's checkout pings, and a dead ping invalidates the
    rest of the pool); a bulk write is not retried, and says nothing was written.
    """
    async with Database(embedded.url) as db:
        async with db.session() as s:
            await s.execute(text("create table if not exists restart_rows (n int)"))
            await s.execute(text("truncate restart_rows"))
        assert len(await backends_of_three_sessions(db)) == 3

        await restart_with_the_cli(embedded)

        answer = await tk.df("select 41 + 1 as answer", database=db)
        chunks = [
            chunk["n"].tolist()
            async for chunk in tk.stream_df(
                "select generate_series(1, 5) as n", chunk_size=2, database=db
            )
        ]
        page = await tk.paginate(
            "select n from generate_series(1, 7) as n order by n", page=2, size=3, database=db
        )
        await restart_with_the_cli(embedded)
        if checkout_shortcut == "shortcut-always":
            with pytest.raises(ConnectionLost, match="nothing was written"):
                await tk.bulk_insert("restart_rows", [{"n": 1}], database=db)
        written = await tk.bulk_insert("restart_rows", [{"n": 1}], database=db)
        stored = await tk.df("select count(*) as n from restart_rows", database=db)

    assert answer["answer"].tolist() == [42]
    assert chunks == [[1, 2], [3, 4], [5]]
    assert [row.n for row in page.items] == [4, 5, 6]
    assert (written, stored["n"].tolist()) == (1, [1])
