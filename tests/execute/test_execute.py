"""tk.execute: statements that return no rows, values bound, the row count back."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import column, table, update
from sqlalchemy.ext.asyncio import AsyncSession

import toolkit as tk
from tests.conftest import MakeDatabase


@pytest.fixture(scope="module")
async def own_db(make_database: MakeDatabase) -> AsyncIterator[tk.Database]:
    """A database of its own: execute() without a session commits."""
    async with tk.Database(await make_database(migrated=False)) as database:
        yield database


async def test_each_statement_gives_the_rows_it_changed(own_db: tk.Database) -> None:
    assert (
        await tk.execute("create table notes (id int primary key, body text)", database=own_db) == 0
    )
    inserted = await tk.execute(
        "insert into notes select g, 'note ' || g from generate_series(1, :n) g",
        {"n": 5},
        database=own_db,
    )
    updated = await tk.execute(
        "update notes set body = :body where id > :low",
        {"body": "it's bound", "low": 3},
        database=own_db,
    )
    deleted = await tk.execute("delete from notes where id = :id", {"id": 1}, database=own_db)

    assert (inserted, updated, deleted) == (5, 2, 1)
    frame = await tk.df("select id, body from notes order by id", database=own_db)
    assert frame["body"].tolist() == ["note 2", "note 3", "it's bound", "it's bound"]


async def test_a_core_statement_runs_too(own_db: tk.Database) -> None:
    await tk.execute("create table flags (id int, on_ bool)", database=own_db)
    await tk.execute("insert into flags values (1, false), (2, false)", database=own_db)
    flags = table("flags", column("id"), column("on_"))

    assert (
        await tk.execute(update(flags).values(on_=True).where(flags.c.id == 2), database=own_db)
        == 1
    )


async def test_in_a_session_it_joins_the_transaction(session: AsyncSession) -> None:
    await tk.execute("create temporary table scratch (n int)", session=session)
    assert await tk.execute("insert into scratch values (1), (2)", session=session) == 2
    await session.rollback()

    with pytest.raises(tk.UndefinedTable):
        await tk.df("select * from scratch", session=session)


async def test_a_statement_that_returns_rows_is_refused_naming_df(own_db: tk.Database) -> None:
    await tk.execute("create table kept (n int)", database=own_db)
    for sql in ("select 1", "insert into kept values (1) returning n"):
        with pytest.raises(tk.ToolkitError, match=r"returns rows - use tk\.df"):
            await tk.execute(sql, database=own_db)

    assert (await tk.df("select count(*) as n from kept", database=own_db))["n"].tolist() == [0]


async def test_a_refused_write_changes_nothing(own_db: tk.Database) -> None:
    await tk.execute("create table uniq (n int unique)", database=own_db)
    await tk.execute("insert into uniq values (1)", database=own_db)

    with pytest.raises(tk.IntegrityViolation):
        await tk.execute("insert into uniq values (2), (1)", database=own_db)

    assert (await tk.df("select n from uniq", database=own_db))["n"].tolist() == [1]


async def test_df_of_a_statement_without_rows_names_execute(own_db: tk.Database) -> None:
    with pytest.raises(tk.ToolkitError, match=r"tk\.execute"):
        await tk.df("create table never (n int)", database=own_db)
