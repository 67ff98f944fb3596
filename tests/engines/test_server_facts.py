"""What a Database learns about its server on the first connect, from the catalog."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy.engine import URL

import toolkit as tk
from toolkit.database import Database


async def test_the_facts_are_the_server_own_answers(database_url: URL) -> None:
    dsn = database_url.set(drivername="postgresql").render_as_string(hide_password=False)
    server = await asyncpg.connect(dsn)
    try:
        number = int(await server.fetchval("SHOW server_version_num"))
        standby = await server.fetchval("SELECT pg_is_in_recovery()")
        citus = await server.fetchval("SELECT extversion FROM pg_extension WHERE extname='citus'")
    finally:
        await server.close()

    async with Database(database_url) as db:
        assert db.server_facts is None  # nothing learned before a connection
        await tk.df("SELECT 1 AS one", database=db)
        facts = db.server_facts

    assert facts is not None
    assert facts.version_num == number
    assert facts.version.split(".")[0] == str(number // 10_000)
    assert facts.standby is standby
    assert facts.citus == citus
    assert facts.read_only is False
    assert facts.pooler is None
    assert facts.describe().startswith(f"PostgreSQL {facts.version}, primary, read-write")
    assert f"server='{facts.describe()}'" in repr(db)


def test_repr_never_connects() -> None:
    db = Database("postgresql://nobody@127.0.0.1:1/nothing")

    assert (
        repr(db) == "Database('postgresql+asyncpg://nobody@127.0.0.1:1/nothing', read_only=False)"
    )


@pytest.mark.parametrize("pooler", ["none", None])
async def test_limits_hold_on_the_first_connection_too(
    database_url: URL, pooler: str | None
) -> None:
    """The first connection is made without startup settings (a pooler would refuse
    them), and gets them once no pooler is found."""
    async with Database(
        database_url, statement_timeout=0.2, read_only=True, pool_size=1, pooler=pooler
    ) as db:
        shown = await tk.df("SELECT current_setting('transaction_read_only') AS ro", database=db)
        with pytest.raises(tk.QueryTimeout):
            await tk.df("SELECT pg_sleep(2)", database=db)

    assert shown["ro"][0] == "on"
