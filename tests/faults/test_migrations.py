"""Case 10: migrations under concurrency and failure.

Two processes running ``upgrade head`` at once: one applies it, the other waits (an
advisory lock in env.py) and finds nothing to do; neither reports an error. A step that
fails half way is rolled back whole - and only that step: the version table names the
last step that succeeded, and the next upgrade carries on from there.
"""

from __future__ import annotations

import asyncio
import subprocess

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.engine import URL

import toolkit as tk
from tests.conftest import MakeDatabase
from tests.migrate.test_migrate import ALEMBIC, REPO, _url_env
from toolkit.database import Database
from toolkit.errors import DatabaseError
from toolkit.migrate import current_revision, head_revision


def _upgrade_in_a_process(url: URL) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ALEMBIC), "upgrade", "head"],
        cwd=REPO,
        env=_url_env(url),
        capture_output=True,
        text=True,
        timeout=120,
    )


async def _tables(db: Database) -> set[str]:
    async with db.engine.connect() as conn:
        return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))


@pytest.mark.slow
async def test_two_processes_upgrading_at_once_one_applies_the_other_finds_nothing(
    make_database: MakeDatabase,
) -> None:
    url = await make_database(migrated=False)

    first, second = await asyncio.gather(
        asyncio.to_thread(_upgrade_in_a_process, url),
        asyncio.to_thread(_upgrade_in_a_process, url),
    )

    for done in (first, second):
        assert done.returncode == 0, done.stderr
        assert "ERROR" not in done.stderr
        assert "Traceback" not in done.stderr
    applied = sorted(p.stderr.count("Running upgrade") for p in (first, second))
    assert applied == [0, 4], "one process applies all four steps, the other none"
    async with Database(url) as db:
        assert await current_revision(database=db) == head_revision()
        async with db.engine.connect() as conn:
            versions = (await conn.execute(text("select version_num from alembic_version"))).all()
        assert versions == [(head_revision(),)]


async def test_a_step_failing_half_way_is_rolled_back_whole_and_only_that_step(
    make_database: MakeDatabase,
) -> None:
    url = await make_database(migrated=False)
    async with Database(url) as db:
        await tk.migrate("0002_posts", database=db)
        # Sabotage the middle of step 0003: after it creates "comments" and one index, the
        # name of its second index is already taken.
        async with db.engine.begin() as conn:
            await conn.execute(text("CREATE INDEX ix_comments_author_id ON users (id)"))

        with pytest.raises(DatabaseError, match="already exists"):
            await tk.migrate(database=db)

        assert await current_revision(database=db) == "0002_posts"
        assert "comments" not in await _tables(db)  # the step's first statements undone too
        async with db.engine.connect() as conn:
            versions = (await conn.execute(text("select version_num from alembic_version"))).all()
        assert versions == [("0002_posts",)]

        async with db.engine.begin() as conn:
            await conn.execute(text("DROP INDEX ix_comments_author_id"))
        assert await tk.migrate(database=db) == head_revision()
        assert {"comments", "tags", "post_tags"} <= await _tables(db)
