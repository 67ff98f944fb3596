"""The exploration helpers on a schema nobody here designed: the one `pgbench -i` makes."""

from __future__ import annotations

import asyncio
import os
import subprocess

import pytest
from sqlalchemy.engine import URL

import toolkit as tk
from tests.conftest import MakeDatabase
from toolkit import server
from toolkit.database import Database


@pytest.fixture(scope="module")
async def pgbench_url(make_database: MakeDatabase) -> URL:
    """A database holding only pgbench's tables (scale 1: 100,000 accounts)."""
    url = await make_database(migrated=False)
    host = url.query.get("host") or url.host or "localhost"
    command = [
        str(server.binary("pgbench")),
        "--initialize",
        "--scale=1",
        "--quiet",
        f"--host={host if isinstance(host, str) else host[0]}",
        f"--port={url.port or 5432}",
        f"--username={url.username or 'postgres'}",
        str(url.database),
    ]
    env = {**os.environ, "PGPASSWORD": url.password or ""}
    done = await asyncio.to_thread(
        subprocess.run, command, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return url


@pytest.fixture
async def bench(pgbench_url: URL) -> Database:
    async with Database(pgbench_url) as database:
        yield database  # type: ignore[misc]


async def test_tables_lists_pgbench_tables_with_estimates(bench: Database) -> None:
    listed = await tk.tables(database=bench)
    names = set(listed["name"])
    assert {"pgbench_accounts", "pgbench_branches", "pgbench_history", "pgbench_tellers"} <= names
    accounts = listed.set_index("name").loc["pgbench_accounts"]
    assert accounts["estimated_rows"] == pytest.approx(100_000, rel=0.2)


async def test_describe_sample_profile_and_explain_work_on_pgbench(bench: Database) -> None:
    described = await tk.describe("pgbench_accounts", database=bench)
    assert list(described.columns["name"]) == ["aid", "bid", "abalance", "filler"]
    assert described.columns.set_index("name").loc["aid", "primary_key"]

    rows = await tk.sample("pgbench_accounts", 5, database=bench)
    assert rows["aid"].tolist() == [1, 2, 3, 4, 5]

    profile = (await tk.profile("pgbench_branches", database=bench)).set_index("column")
    assert profile.loc["bid", "rows"] == 1
    assert profile.loc["bid", "distinct"] == 1

    plan = await tk.explain("SELECT * FROM pgbench_accounts WHERE aid = 42", database=bench)
    assert "pgbench_accounts_pkey" in plan.text


async def test_an_unknown_pgbench_table_suggests_the_closest(bench: Database) -> None:
    with pytest.raises(tk.NoSuchTable, match="did you mean 'pgbench_accounts'"):
        await tk.describe("pgbench_acounts", database=bench)
