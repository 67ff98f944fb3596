"""Finding a table by name: a misspelt or unknown name says what is close, or what is there."""

from __future__ import annotations

import pytest

import toolkit as tk
from tests.explore.conftest import ODD
from toolkit import errors
from toolkit.database import Database
from toolkit.explore import NoSuchTable, describe, profile, sample


async def test_an_unknown_table_suggests_the_closest_name(odd_db: Database) -> None:
    with pytest.raises(NoSuchTable, match=r"^no table named 'chidl'; did you mean 'child'\?$"):
        await describe("chidl", database=odd_db)
    with pytest.raises(NoSuchTable, match=r"did you mean 'Odd Schema.Odd View'\?"):
        await sample("odd schema.odd view", database=odd_db)


@pytest.mark.parametrize(
    ("sql", "suggested"),
    [
        ("select * from chidl", "child"),
        ("select c.* from big b join CHILDD c on true", "child"),
        ('select * from "Odd Schema"."Odd Veiw"', "Odd Schema.Odd View"),
        ("select * from public.evnets limit :n", "public.events"),
    ],
)
async def test_a_query_on_a_misspelt_table_suggests_the_closest_name(
    odd_db: Database, sql: str, suggested: str
) -> None:
    """tk.df, tk.stream_df, tk.explain and tk.paginate say what sample and describe say;
    the missing name is read from the statement at the position the server's error
    report gives."""
    params = {"n": 1} if ":n" in sql else None
    for read in (
        lambda: tk.df(sql, params, database=odd_db),
        lambda: _first_chunk(sql, odd_db),
        lambda: tk.explain(sql, params, database=odd_db),
        lambda: tk.paginate(sql, params=params, database=odd_db),
    ):
        with pytest.raises(tk.UndefinedTable) as caught:
            await read()

        assert f"did you mean {suggested!r}? (tk.tables() lists them)" in str(caught.value)
        assert str(caught.value).startswith("relation ")


async def _first_chunk(sql: str, database: Database) -> object:
    params = {"n": 1} if ":n" in sql else None
    async for chunk in tk.stream_df(sql, params, database=database):
        return chunk
    return None


async def test_a_misspelt_column_carries_the_servers_own_suggestion(odd_db: Database) -> None:
    with pytest.raises(tk.UndefinedColumn, match=r"Perhaps you meant to reference the column"):
        await tk.df("select nmae from child", database=odd_db)


async def test_a_missing_table_with_nothing_close_keeps_the_migrate_advice(
    odd_db: Database,
) -> None:
    with pytest.raises(tk.UndefinedTable, match="run `toolkit migrate`"):
        await tk.df("select * from zzzzqqqq", database=odd_db)


async def test_an_unknown_table_with_nothing_close_lists_the_tables(odd_db: Database) -> None:
    with pytest.raises(NoSuchTable) as caught:
        await profile("zzzzqqqq", database=odd_db)
    assert str(caught.value) == (
        "no table named 'zzzzqqqq' (tables: big, child, child_counts, empty, events, "
        f"events_2024, events_2025, victim, {ODD}, Odd Schema.Odd View)"
    )  # bare names for tables on the search path, schema.name for the others
    assert isinstance(caught.value, errors.UndefinedTable)
    assert isinstance(caught.value, errors.ToolkitError)
    assert caught.value.sqlstate == "42P01"
