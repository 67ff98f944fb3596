"""A migration can distribute a table: Alembic's ``op.create_table``, then
``op.execute("SELECT create_distributed_table(...)")`` (the README's "Where it runs").

The migrations are the example's own (``citus_migrations/``), run by Alembic against the
Citus coordinator as the test role; the toolkit's own schema is not involved.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection

import toolkit as tk
from tests.engines import citus_conftest
from tests.engines.citus_conftest import CitusSchema

pytestmark = [pytest.mark.slow, pytest.mark.engine]
citus_admin = citus_conftest.citus_admin  # the fixtures, used here
citus = citus_conftest.citus

MIGRATIONS = Path(__file__).parent / "citus_migrations"


def _run(connection: Connection, step: str, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    getattr(command, step)(config, revision)


async def _alembic(citus: CitusSchema, step: str, revision: str) -> None:
    async with citus.db.engine.connect() as conn:
        await conn.run_sync(_run, step, revision)
        await conn.commit()


async def test_a_migration_distributes_a_table_and_a_later_one_alters_it(
    citus: CitusSchema,
) -> None:
    await _alembic(citus, "upgrade", "head")
    try:
        listed = (await tk.tables(citus.schema, database=citus.db)).set_index("name")
        assert listed.loc["events", "citus_table_type"] == "distributed"
        assert listed.loc["events", "distribution_column"] == "account_id"
        assert listed.loc["event_kinds", "citus_table_type"] == "reference"
        assert pd.isna(listed.loc["alembic_version", "citus_table_type"])

        events = await tk.describe("events", database=citus.db)
        assert events.distribution is not None
        assert events.distribution.distribution_column == "account_id"
        assert "payload" in set(events.columns["name"])  # 0002 reached every shard
        assert "events_account_at" in set(events.indexes["name"])

        kinds = await tk.bulk_insert("event_kinds", [{"id": 1, "name": "login"}], database=citus.db)
        assert kinds == 1
        async with citus.db.engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO events (account_id, kind_id)"
                    " SELECT a % 50, 1 FROM generate_series(1, 500) a"
                )
            )
        per_account = await tk.df(
            "SELECT account_id, count(*) AS n FROM events GROUP BY 1", database=citus.db
        )
        assert len(per_account) == 50
        assert per_account["n"].sum() == 500
    finally:
        await _alembic(citus, "downgrade", "base")
    left = set((await tk.tables(citus.schema, database=citus.db))["name"])
    assert not left & {"events", "event_kinds"}


async def test_without_the_distribution_column_in_the_key_citus_refuses_and_says_why(
    citus: CitusSchema,
) -> None:
    async with citus.db.engine.begin() as conn:
        await conn.execute(text("CREATE TABLE wrong_key (id bigint PRIMARY KEY, account bigint)"))
    try:
        with pytest.raises(tk.DatabaseError) as caught:
            await tk.df(
                "SELECT create_distributed_table('wrong_key', 'account')::text AS done",
                database=citus.db,
            )
        assert "cannot create constraint" in str(caught.value)
        # Citus's DETAIL, carried over: the key must include the distribution column
        assert "that do not include the partition column" in str(caught.value)
    finally:
        async with citus.db.engine.begin() as conn:
            await conn.execute(text("DROP TABLE wrong_key"))


def test_the_readme_shows_this_migration() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    shown = re.search(r"```py\n(def upgrade\(\).*?)```", readme, flags=re.DOTALL)
    assert shown is not None, "README lost the Citus migration example"
    assert shown.group(1) in (MIGRATIONS / "versions" / "0001_events.py").read_text()
