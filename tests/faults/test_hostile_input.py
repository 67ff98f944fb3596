"""Fault case 8: hostile input.

Table, schema and column names with quotes, semicolons, percent signs, colons, newlines,
unicode and more than 63 bytes; values with quotes, backslashes, NULs, newlines and
``:name``-, ``%(x)s``- and ``$1``-looking text. Each either works as the literal data it
is, or raises a clear toolkit error before anything is written - and no statement other
than the intended one ever runs: a canary table, whose names the hostile inputs try to
drop, delete from and insert into, keeps exactly its one row after every test.

Every case runs on a scratch database of its own; after each test everything but the
canary is dropped again.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import Column, Integer, MetaData, Table, Text, select
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool
from sqlalchemy.schema import CreateSchema

import toolkit as tk
from tests.conftest import MakeDatabase, spy_on_copy
from tests.runtime.test_interrupt import Kernel
from toolkit import frames
from toolkit.database import Database

CANARY = [(1, "still here")]

NAMES = {
    "quote-semicolon-drop": 'Odd "Name"; DROP TABLE canary; --',
    "unicode": "naïve 名前 ✓",
    "quote-paren-drop": "x'); DROP TABLE canary; --",
    "percent-format": "100% sure %(x)s %s",
    "colon-dollar-cast": "a :name $1 ::int",
    "newline-tab-backslash": "two\nlines\tand \\ back",
    "63-bytes-of-unicode": "é" * 31 + "!",
    "reserved-word-mixed-case": "Select",
}
"""Names PostgreSQL can hold exactly: each must work as itself, everywhere."""

TOO_LONG = {
    "70-characters": "L" * 70,
    "64-bytes-in-32-characters": "é" * 32,
    "nul-character": "nul\x00byte",
}
"""Names PostgreSQL cannot hold as given (it would truncate the long ones to 63 bytes)."""

VALUE = 'v"); DELETE FROM canary; --'
"""The second column of every hostile table."""
SCHEMA = 'sch"; DROP TABLE canary; --'

VALUES = [
    "plain",
    "it's",
    'say "hi"',
    "back\\slash",
    "\\N",
    "\\.",
    "line1\nline2",
    "cr\r\nlf",
    "\r",
    "tab\tsep",
    ":name",
    "select :x::int",
    "%(x)s",
    "%s %%",
    "$1",
    "$$dollar$$",
    "NULL",
    "",
    " ",
    ",",
    '"',
    "''",
    "'); DROP TABLE canary; --",
    "naïve 名前 ✓ 🎉",
    "\u200b\ufeffzero-width",
    "x" * 50_000,
    None,
]
"""Values that must come back exactly as written (None is NULL, not the text 'NULL')."""

NUL = "before\x00after"


# The scratch database, the canary, and a view from outside the toolkit -------------------


class Admin:
    """An autocommit connection that is not the toolkit's: creates, inspects, cleans up."""

    def __init__(self, url: URL) -> None:
        self.engine: AsyncEngine = create_async_engine(
            url, isolation_level="AUTOCOMMIT", poolclass=NullPool
        )

    async def execute(self, sql: str) -> None:
        async with self.engine.connect() as conn:
            await conn.exec_driver_sql(sql)

    async def rows(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        async with self.engine.connect() as conn:
            result = await conn.exec_driver_sql(sql, args)
            return [tuple(r) for r in result]

    async def canary(self) -> list[tuple[Any, ...]] | None:
        exists = await self.rows("SELECT to_regclass('public.canary') IS NOT NULL")
        if not exists[0][0]:
            return None
        return await self.rows("SELECT id, note FROM public.canary ORDER BY id")

    async def tables(self) -> set[tuple[str, str]]:
        """Every (schema, table) outside the system schemas."""
        rows = await self.rows(
            "SELECT n.nspname, c.relname FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r', 'p') AND n.nspname !~ '^pg_' "
            "AND n.nspname <> 'information_schema'"
        )
        return {(str(r[0]), str(r[1])) for r in rows}

    async def columns(self, table: str, schema: str = "public") -> list[str]:
        rows = await self.rows(
            "SELECT a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped "
            "ORDER BY a.attnum",
            schema,
            table,
        )
        return [str(r[0]) for r in rows]

    async def drop_all_but_the_canary(self) -> None:
        await self.execute("""
            DO $$
            DECLARE r record;
            BEGIN
              FOR r IN SELECT nspname FROM pg_namespace
                       WHERE nspname !~ '^pg_' AND nspname NOT IN ('public', 'information_schema')
              LOOP EXECUTE format('DROP SCHEMA %I CASCADE', r.nspname); END LOOP;
              FOR r IN SELECT c.relname FROM pg_class c
                       JOIN pg_namespace n ON n.oid = c.relnamespace
                       WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm')
                       AND c.relname <> 'canary'
              LOOP EXECUTE format('DROP TABLE IF EXISTS public.%I CASCADE', r.relname); END LOOP;
            END $$
            """)


@pytest.fixture(scope="module")
async def hostile_url(make_database: MakeDatabase) -> URL:
    return await make_database(migrated=False)


@pytest.fixture(scope="module", name="admin")
async def admin_fixture(hostile_url: URL) -> AsyncIterator[Admin]:
    watcher = Admin(hostile_url)
    await watcher.execute("CREATE TABLE canary (id integer PRIMARY KEY, note text NOT NULL)")
    await watcher.execute("INSERT INTO canary VALUES (1, 'still here')")
    yield watcher
    await watcher.engine.dispose()


@pytest.fixture(scope="module", name="db")
async def db_fixture(hostile_url: URL, admin: Admin) -> AsyncIterator[Database]:
    async with Database(hostile_url) as database:
        yield database


@pytest.fixture(autouse=True)
async def canary_survives(admin: Admin) -> AsyncIterator[None]:
    """After every case: the canary still exists and holds exactly its one row."""
    assert await admin.canary() == CANARY
    yield
    try:
        assert await admin.canary() == CANARY, "a hostile input ran a statement of its own"
    finally:
        await admin.drop_all_but_the_canary()


def hostile_table(name: str, schema: str | None = None) -> Table:
    """A SQLAlchemy table whose table and key column are ``name``; values in ``VALUE``."""
    return Table(
        name,
        MetaData(),
        Column(name, Integer, primary_key=True, autoincrement=False),
        Column(VALUE, Text),
        schema=schema,
    )


async def create(admin: Admin, table: Table, rows: list[dict[str, Any]] | None = None) -> None:
    """Create the table (and its schema) and insert rows, outside the toolkit."""
    async with admin.engine.begin() as conn:
        if table.schema is not None:
            await conn.execute(CreateSchema(table.schema, if_not_exists=True))
        await conn.run_sync(table.metadata.create_all)
        if rows:
            await conn.execute(table.insert(), rows)


async def contents(admin: Admin, table: Table) -> list[tuple[Any, Any]]:
    """The table's rows, read with plain SQLAlchemy (not the toolkit paths under test), on
    a new connection (a pooled one could hold a prepared statement of a dropped table)."""
    async with admin.engine.connect() as conn:
        result = await conn.execute(select(table).order_by(*table.primary_key.columns))
        return [tuple(r) for r in result]


def quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def by_name() -> list[Any]:
    return [pytest.param(name, id=key) for key, name in NAMES.items()]


# Hostile names: every entry point that takes one --------------------------------------


@pytest.mark.parametrize("name", by_name())
async def test_to_table_creates_appends_and_replaces_under_the_exact_hostile_names(
    db: Database, admin: Admin, name: str
) -> None:
    frame = pd.DataFrame({name: [1, 2, 3], VALUE: ["a", "b", "c"]})
    assert await tk.to_table(frame, name, database=db) == 3
    assert await admin.tables() == {("public", "canary"), ("public", name)}
    assert await admin.columns(name) == [name, VALUE]

    with pytest.raises(tk.ToolkitError, match="already exists"):
        await tk.to_table(frame, name, database=db)
    assert await tk.to_table(frame, name, if_exists="append", database=db) == 3
    table = hostile_table(name)
    assert len(await contents(admin, table)) == 6
    assert await tk.to_table(frame.head(1), name, if_exists="replace", database=db) == 1
    assert await contents(admin, table) == [(1, "a")]


@pytest.mark.parametrize("name", by_name())
async def test_to_table_into_a_hostile_schema(db: Database, admin: Admin, name: str) -> None:
    async with admin.engine.begin() as conn:
        await conn.execute(CreateSchema(SCHEMA))
    frame = pd.DataFrame({name: [7], VALUE: ["seven"]})
    assert await tk.to_table(frame, name, schema=SCHEMA, database=db) == 1
    assert (SCHEMA, name) in await admin.tables()
    assert await contents(admin, hostile_table(name, SCHEMA)) == [(7, "seven")]


@pytest.mark.parametrize("name", by_name())
async def test_bulk_insert_by_table_name_string_with_hostile_column_names(
    db: Database, admin: Admin, name: str
) -> None:
    table = hostile_table(name)
    await create(admin, table)
    assert await tk.bulk_insert(name, [{name: 1, VALUE: "dicts"}], database=db) == 1
    assert await tk.bulk_insert(name, [(2, "tuples")], columns=[name, VALUE], database=db) == 1
    frame = pd.DataFrame({name: [3], VALUE: ["frame"]})
    assert await tk.bulk_insert(name, frame, database=db) == 1
    assert await tk.bulk_insert(table, [{name: 4, VALUE: "table"}], database=db) == 1
    assert await contents(admin, table) == [(1, "dicts"), (2, "tuples"), (3, "frame"), (4, "table")]


@pytest.mark.parametrize("name", by_name())
async def test_bulk_insert_into_schema_dot_table_with_hostile_names(
    db: Database, admin: Admin, name: str
) -> None:
    table = hostile_table(name, SCHEMA)
    await create(admin, table)
    rows = [{name: 1, VALUE: "one"}]
    assert await tk.bulk_insert(f"{SCHEMA}.{name}", rows, database=db) == 1
    assert (
        await tk.bulk_insert(
            f"{SCHEMA}.{name}", pd.DataFrame([{name: 2, VALUE: "two"}]), database=db
        )
        == 1
    )
    assert await contents(admin, table) == [(1, "one"), (2, "two")]


@pytest.mark.parametrize("name", by_name())
async def test_bulk_update_upsert_and_delete_on_hostile_table_and_column_names(
    db: Database, admin: Admin, name: str
) -> None:
    table = hostile_table(name)
    await create(admin, table, [{name: i, VALUE: f"row {i}"} for i in range(1, 6)])

    assert await tk.bulk_update(table, [{name: 1, VALUE: "updated"}], database=db) == 1
    rows = [{name: 2, VALUE: "upserted"}, {name: 6, VALUE: "inserted"}]
    assert await tk.upsert(table, rows, on=[name], database=db) == 2
    kept = [{name: 3, VALUE: "ignored"}]
    assert await tk.upsert(table, kept, on=[table.c[name]], update=[], database=db) == 0
    assert await tk.bulk_delete(table, [4], database=db) == 1
    assert await tk.bulk_delete(table, table.c[VALUE] == "row 5", database=db) == 1

    assert await contents(admin, table) == [
        (1, "updated"),
        (2, "upserted"),
        (3, "row 3"),
        (6, "inserted"),
    ]


@pytest.mark.parametrize("name", by_name())
async def test_describe_sample_profile_and_tables_find_hostile_names(
    db: Database, admin: Admin, name: str
) -> None:
    await create(admin, hostile_table(name), [{name: 1, VALUE: "one"}, {name: 2, VALUE: None}])
    await create(admin, hostile_table(name, SCHEMA), [{name: 9, VALUE: "nine"}])

    description = await tk.describe(name, database=db)
    assert description.name == f"public.{name}"
    assert description.columns["name"].tolist() == [name, VALUE]
    assert description.columns["primary_key"].tolist() == [True, False]
    sampled = await tk.sample(name, 5, database=db)
    assert list(sampled.columns) == [name, VALUE]
    assert sampled[name].tolist() == [1, 2]
    profile = await tk.profile(name, database=db)
    assert profile["column"].tolist() == [name, VALUE]
    assert profile["nulls"].tolist() == [0, 1]

    in_schema = await tk.describe(f"{SCHEMA}.{name}", database=db)
    assert in_schema.name == f"{SCHEMA}.{name}"
    assert (await tk.sample(f"{SCHEMA}.{name}", database=db))[name].tolist() == [9]
    listed = await tk.tables(schema=SCHEMA, database=db)
    assert listed["name"].tolist() == [name]
    assert name in (await tk.tables(database=db))["name"].tolist()


async def test_unknown_hostile_names_are_reported_not_run(db: Database) -> None:
    for name in NAMES.values():
        with pytest.raises(tk.NoSuchTable, match="no table named"):
            await tk.describe(name, database=db)
    with pytest.raises(tk.DatabaseError, match="no schema named"):
        await tk.tables(schema="public'; DROP TABLE canary; --", database=db)


@pytest.mark.parametrize("name", by_name())
async def test_df_reads_hostile_names_through_select_and_quoted_sql_text(
    db: Database, admin: Admin, name: str
) -> None:
    table = hostile_table(name)
    await create(admin, table, [{name: 1, VALUE: "one"}, {name: 2, VALUE: "two"}])

    frame = await tk.df(select(table).order_by(table.c[name]), database=db)
    assert list(frame.columns) == [name, VALUE]
    assert frame[VALUE].tolist() == ["one", "two"]
    # Quoted identifiers in SQL text: a ':name' inside one is part of the name, not a bind.
    sql = (
        f"SELECT {quoted(name)}, {quoted(VALUE)} FROM {quoted(name)} "
        f"WHERE {quoted(VALUE)} = :wanted"
    )
    frame = await tk.df(sql, {"wanted": "two"}, database=db)
    assert list(frame.columns) == [name, VALUE]
    assert frame[name].tolist() == [2]


@pytest.mark.parametrize("name", by_name())
async def test_paginate_and_keyset_over_hostile_column_names(
    db: Database, admin: Admin, name: str
) -> None:
    table = hostile_table(name)
    hostile = [v for v in VALUES if v is not None][:7]
    await create(admin, table, [{name: i, VALUE: v} for i, v in enumerate(hostile)])

    page = await tk.paginate(select(table).order_by(table.c[name]), page=2, size=3, database=db)
    assert page.total == 7
    assert [row[1] for row in page.items] == hostile[3:6]
    assert list(page.to_df().columns) == [name, VALUE]

    # The cursors carry hostile key values (the text column first) back as bound data:
    # every row exactly once, none skipped or repeated.
    key = [table.c[VALUE], table.c[name]]
    seen = []
    async for chunk in tk.keyset(select(table), key=key, size=2, database=db):
        seen += [row[1] for row in chunk.items]
    assert len(seen) == len(hostile)
    assert sorted(seen) == sorted(hostile)


# Names PostgreSQL would truncate (or cannot hold): refused before anything is sent ------


@pytest.fixture(params=list(TOO_LONG.values()), ids=list(TOO_LONG))
def bad_name(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


def _refusal(name: str) -> str:
    return "NUL" if "\x00" in name else "at most 63 bytes"


async def test_to_table_refuses_a_name_postgresql_would_truncate(
    db: Database, admin: Admin, bad_name: str
) -> None:
    before = await admin.tables()
    frame = pd.DataFrame({"id": [1]})
    with pytest.raises(tk.InvalidIdentifier, match=_refusal(bad_name)):
        await tk.to_table(frame, bad_name, database=db)
    with pytest.raises(tk.InvalidIdentifier, match=_refusal(bad_name)):
        await tk.to_table(pd.DataFrame({bad_name: [1]}), "fine", database=db)
    with pytest.raises(tk.InvalidIdentifier, match=_refusal(bad_name)):
        await tk.to_table(frame, "fine", schema=bad_name, database=db)
    assert await admin.tables() == before


async def test_bulk_operations_refuse_a_name_postgresql_would_truncate(
    db: Database, admin: Admin, bad_name: str
) -> None:
    await create(admin, hostile_table("fine"), [{"fine": 1, VALUE: "kept"}])
    with pytest.raises(tk.InvalidIdentifier, match=_refusal(bad_name)):
        await tk.bulk_insert(bad_name, [{"fine": 2}], database=db)
    with pytest.raises(tk.InvalidIdentifier, match=_refusal(bad_name)):
        await tk.bulk_insert(f"public.{bad_name}", pd.DataFrame({"fine": [2]}), database=db)
    with pytest.raises(tk.InvalidIdentifier, match=_refusal(bad_name)):
        await tk.bulk_insert("fine", [{"fine": 2, bad_name: "x"}], database=db)
    with pytest.raises(tk.InvalidIdentifier, match=_refusal(bad_name)):
        await tk.bulk_insert("fine", pd.DataFrame({"fine": [2], bad_name: ["x"]}), database=db)

    long_table = Table(
        bad_name, MetaData(), Column("id", Integer, primary_key=True), Column("v", Text)
    )
    long_column = Table(
        "fine",
        MetaData(),
        Column("fine", Integer, primary_key=True),
        Column(bad_name, Text),
    )
    with pytest.raises(tk.InvalidIdentifier, match=_refusal(bad_name)):
        await tk.bulk_update(long_table, [{"id": 1, "v": "x"}], database=db)
    with pytest.raises(tk.InvalidIdentifier, match=_refusal(bad_name)):
        await tk.bulk_update(long_column, [{"fine": 1, bad_name: "x"}], database=db)
    with pytest.raises(tk.InvalidIdentifier, match=_refusal(bad_name)):
        await tk.upsert(long_column, [{"fine": 1, bad_name: "x"}], database=db)
    with pytest.raises(tk.InvalidIdentifier, match=_refusal(bad_name)):
        await tk.bulk_delete(long_table, [1], database=db)
    with pytest.raises(tk.InvalidIdentifier, match=_refusal(bad_name)):
        await tk.bulk_delete(long_table, long_table.c.id == 1, database=db)
    assert await contents(admin, hostile_table("fine")) == [(1, "kept")]


async def test_exploring_refuses_a_name_postgresql_would_truncate(
    db: Database, admin: Admin, bad_name: str
) -> None:
    if "\x00" not in bad_name:  # the table its truncation would find
        truncated = bad_name.encode()[:63].decode("utf-8", "ignore")  # as PostgreSQL clips
        await create(admin, hostile_table(truncated), [{truncated: 1, VALUE: "other"}])
    for explore in (tk.describe, tk.sample, tk.profile):
        with pytest.raises(tk.InvalidIdentifier, match=_refusal(bad_name)):
            await explore(bad_name, database=db)
    with pytest.raises(tk.InvalidIdentifier, match=_refusal(bad_name)):
        await tk.tables(schema=bad_name, database=db)


async def test_a_long_name_never_reaches_the_table_its_truncation_names(
    db: Database, admin: Admin
) -> None:
    """Two names sharing their first 63 bytes would be one table to PostgreSQL."""
    kept = "t" * 63
    frame = pd.DataFrame({"id": [1, 2, 3]})
    await tk.to_table(frame, kept, database=db)
    with pytest.raises(tk.InvalidIdentifier, match=repr(kept)):
        await tk.to_table(frame.head(1), kept + "_other", if_exists="replace", database=db)
    with pytest.raises(tk.InvalidIdentifier):
        await tk.bulk_insert(kept + "_other", [{"id": 4}], database=db)
    rows = await admin.rows(f"SELECT count(*) FROM {quoted(kept)}")
    assert rows == [(3,)]


async def test_the_error_names_the_limit_and_what_postgresql_would_have_done(
    db: Database,
) -> None:
    with pytest.raises(tk.InvalidIdentifier) as caught:
        await tk.to_table(pd.DataFrame({"id": [1]}), "L" * 70, database=db)
    message = str(caught.value)
    assert "70 bytes long" in message
    assert "at most 63 bytes" in message
    assert repr("L" * 63) in message  # the name it would have become
    assert isinstance(caught.value, ValueError)


# Hostile values: exactly the data, on every path ---------------------------------------


def values_table(name: str = "vals") -> Table:
    return Table(
        name,
        MetaData(),
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("v", Text),
    )


WRITE_PATHS = ["bulk_insert-dicts", "bulk_insert-frame", "to_table", "upsert", "bulk_update"]
"""Every way the toolkit writes values, as the tests below take them."""


def _values_back(frame: pd.DataFrame) -> list[Any]:
    return [None if v is pd.NA else v for v in frame["v"].tolist()]


@pytest.mark.parametrize("write", WRITE_PATHS)
async def test_hostile_values_round_trip_exactly_through_every_write_path(
    db: Database, admin: Admin, write: str
) -> None:
    table = values_table()
    rows = [{"id": i, "v": v} for i, v in enumerate(VALUES)]
    frame = pd.DataFrame({"id": range(len(VALUES)), "v": pd.Series(VALUES, dtype="string")})
    if write == "to_table":
        await tk.to_table(frame, "vals", database=db)
    else:
        await create(admin, table)
    if write == "bulk_insert-dicts":
        await tk.bulk_insert(table, rows, database=db)
    elif write == "bulk_insert-frame":
        await tk.bulk_insert("vals", frame, database=db)
    elif write == "upsert":
        await tk.upsert(table, rows, database=db)
    elif write == "bulk_update":
        await tk.bulk_insert(
            table, [{"id": i, "v": "before"} for i in range(len(VALUES))], database=db
        )
        await tk.bulk_update(table, rows, database=db)
    assert await contents(admin, table) == [(i, v) for i, v in enumerate(VALUES)]


async def test_hostile_values_read_back_exactly_on_the_row_path_and_the_copy_path(
    db: Database, admin: Admin, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = values_table()
    await create(admin, table)
    count = 3 * frames.COPY_THRESHOLD
    written = [VALUES[i % len(VALUES)] for i in range(count)]
    await tk.bulk_insert(table, [{"id": i, "v": v} for i, v in enumerate(written)], database=db)
    await admin.execute("ANALYZE vals")
    copied = spy_on_copy(monkeypatch)

    few = await tk.df(
        "SELECT v FROM vals WHERE id < :n ORDER BY id", {"n": len(VALUES)}, database=db
    )
    assert copied == []
    assert _values_back(few) == VALUES
    many = await tk.df("SELECT v FROM vals ORDER BY id", database=db)
    assert copied == [True], "COPY must parse these values itself, not fall back"
    assert _values_back(many) == written
    chunks = [
        chunk
        async for chunk in tk.stream_df(
            "SELECT v FROM vals ORDER BY id", chunk_size=997, database=db, progress=False
        )
    ]
    assert [v for chunk in chunks for v in _values_back(chunk)] == written


async def test_hostile_values_are_bound_parameters_on_both_df_paths(
    db: Database, admin: Admin, monkeypatch: pytest.MonkeyPatch
) -> None:
    for value in VALUES:
        frame = await tk.df("SELECT CAST(:v AS text) AS v", {"v": value}, database=db)
        assert _values_back(frame) == [value]
    # COPY cannot take bind values: the server quotes them (quote_literal), never Python.
    await create(
        admin, values_table(), [{"id": i, "v": "x"} for i in range(3 * frames.COPY_THRESHOLD)]
    )
    await admin.execute("ANALYZE vals")
    copied = spy_on_copy(monkeypatch)
    for value in VALUES[:12]:
        frame = await tk.df("SELECT id, CAST(:v AS text) AS v FROM vals", {"v": value}, database=db)
        assert set(_values_back(frame)) == {value}
    assert copied == [True] * 12


# NUL: PostgreSQL text cannot hold it - a clear error, nothing half-written -------------


async def _write_with_a_nul(write: str, db: Database, table: Table) -> None:
    """One operation of 100 fine rows and one whose text holds a NUL, the last."""
    rows = [{"id": 10 + i, "v": "fine"} for i in range(100)] + [{"id": 200, "v": NUL}]
    if write == "bulk_insert-dicts":
        await tk.bulk_insert(table, rows, database=db)
    elif write == "bulk_insert-frame":
        await tk.bulk_insert("vals", pd.DataFrame(rows), database=db)
    elif write == "to_table":
        await tk.to_table(pd.DataFrame(rows), "vals_new", database=db)
    elif write == "upsert":
        await tk.upsert(table, [{"id": 0, "v": "changed"}, *rows], database=db)
    else:
        changes = [{"id": 0, "v": "changed"}, {"id": 1, "v": NUL}]
        await tk.bulk_update(table, changes, database=db)


@pytest.mark.parametrize("write", WRITE_PATHS)
async def test_a_nul_in_a_value_is_a_clear_error_and_nothing_is_written(
    db: Database, admin: Admin, write: str
) -> None:
    table = values_table()
    good = [{"id": i, "v": f"row {i}"} for i in range(5)]
    await create(admin, table, good)
    with pytest.raises(tk.InvalidCharacter, match=r"NUL character \(\\x00\)") as caught:
        await _write_with_a_nul(write, db, table)
    assert caught.value.sqlstate == "22021"
    assert await contents(admin, table) == [(r["id"], r["v"]) for r in good]
    assert ("public", "vals_new") not in await admin.tables()
    assert (await tk.df("SELECT 1 AS ok", database=db))["ok"].tolist() == [1]


async def test_a_nul_in_a_bound_parameter_or_in_sql_text_is_a_clear_error(db: Database) -> None:
    with pytest.raises(tk.InvalidCharacter, match="NUL"):
        await tk.df("SELECT CAST(:v AS text) AS v", {"v": NUL}, database=db)
    # In the SQL text itself the protocol would end the statement at the NUL: refused first.
    for query in ("SELECT 1 AS x\x00; DROP TABLE canary", "SELECT 'a\x00b' AS x"):
        with pytest.raises(tk.InvalidCharacter, match="SQL text contains a NUL"):
            await tk.df(query, database=db)
        with pytest.raises(tk.InvalidCharacter, match="SQL text contains a NUL"):
            await tk.paginate(query, database=db)
    # ... and the connection was never broken: the next query just runs.
    assert (await tk.df("SELECT 2 AS x", database=db))["x"].tolist() == [2]


async def test_a_nul_byte_is_data_in_bytea(db: Database) -> None:
    frame = await tk.df("SELECT CAST(:b AS bytea) AS b", {"b": b"\x00nul\x00"}, database=db)
    assert frame["b"].tolist() == [b"\x00nul\x00"]


# :name-looking text in SQL given as a string -------------------------------------------


async def test_colons_inside_string_literals_are_literal_text(db: Database) -> None:
    frame = await tk.df(
        "SELECT ':x' AS a, 'a :b c' AS b, E'it\\'s :e' AS e, $$ :d $$ AS d, :x AS x",
        {"x": "bound"},
        database=db,
    )
    assert frame.iloc[0].tolist() == [":x", "a :b c", "it's :e", " :d ", "bound"]
    frame = await tk.df("SELECT '10:30' AS t, 1::int AS n -- :comment", database=db)
    assert frame.iloc[0].tolist() == ["10:30", 1]


async def test_a_placeholder_without_a_value_says_how_to_escape_it(db: Database) -> None:
    with pytest.raises(tk.ToolkitError, match=r"no value for :b .* write \\:b"):
        await tk.df("SELECT :b AS b", database=db)
    with pytest.raises(tk.ToolkitError, match=r"no value for :hi"):
        await tk.df(
            "SELECT (ARRAY[10, 20, 30])[2 :hi] AS s FROM (SELECT 3 AS hi) q", {}, database=db
        )
    escaped = await tk.df(
        "SELECT (ARRAY[10, 20, 30])[2 \\:hi] AS s FROM (SELECT 3 AS hi) q", database=db
    )
    assert escaped["s"].tolist() == [[20, 30]]


async def test_sql_text_helpers_keep_literal_colons_and_drop_trailing_comments(
    db: Database, admin: Admin, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = await tk.paginate("SELECT ':x' AS a, :x AS b -- trailing", params={"x": 1}, database=db)
    assert [tuple(r) for r in page.items] == [(":x", 1)]
    plan = await tk.explain("SELECT ':x' AS a, :x AS b", {"x": 1}, database=db)
    assert plan.sql.startswith("SELECT ':x' AS a, $1")
    # On the COPY path the SQL is wrapped in COPY (...): a trailing comment or ';' must not
    # swallow the closing parenthesis.
    await create(
        admin, values_table(), [{"id": i, "v": ":v"} for i in range(3 * frames.COPY_THRESHOLD)]
    )
    await admin.execute("ANALYZE vals")
    copied = spy_on_copy(monkeypatch)
    frame = await tk.df("SELECT v, ':v' AS w FROM vals; -- all of them", database=db)
    assert copied == [True]
    assert set(frame["v"]) == set(frame["w"]) == {":v"}


async def _run_sql(run: str, db: Database, sql: str) -> None:
    if run == "df":
        await tk.df(sql, database=db)
    elif run == "stream_df":
        async for _ in tk.stream_df(sql, database=db, progress=False):
            pass
    elif run == "paginate":
        await tk.paginate(sql, database=db)
    else:
        await tk.explain(sql, analyze=run == "explain-analyze", database=db)


@pytest.mark.parametrize(
    "run",
    ["df", "stream_df", "paginate", "explain", "explain-analyze"],
)
async def test_a_second_statement_in_sql_text_never_runs(db: Database, run: str) -> None:
    with pytest.raises(tk.DatabaseError):
        await _run_sql(run, db, "SELECT 1 AS x; DROP TABLE canary")


# The %%sql magic: values bound, never formatted in -------------------------------------


@pytest.fixture(scope="module", name="kernel")
def kernel_fixture(hostile_url: URL, admin: Admin) -> Iterator[Kernel]:
    env = {**os.environ, "TOOLKIT_DATABASE_URL": hostile_url.render_as_string(False)}
    started = Kernel(env)
    outputs = started.run("import json\nimport toolkit as tk\n%load_ext toolkit")
    assert [o for o in outputs if o["type"] == "error"] == [], outputs
    yield started
    started.close()


def _stdout(outputs: list[dict[str, Any]]) -> str:
    return "".join(o["text"] for o in outputs if o["type"] == "stream" and o["name"] == "stdout")


def _stderr(outputs: list[dict[str, Any]]) -> str:
    return "".join(o["text"] for o in outputs if o["type"] == "stream" and o["name"] == "stderr")


@pytest.mark.slow
def test_magic_binds_hostile_notebook_values_and_keeps_literal_colons(kernel: Kernel) -> None:
    hostile = [v for v in VALUES if v is not None]
    code = f"""
HOSTILE = json.loads({json.dumps(json.dumps(hostile))})
wrong = []
for value in HOSTILE:
    frame = get_ipython().run_cell_magic("sql", "", "SELECT :value AS v, ':value' AS literal")
    if frame.iloc[0].tolist() != [value, ":value"]:
        wrong.append(value)
get_ipython().run_cell_magic("sql", "", "CREATE TABLE magic_values (v text)")
for value in HOSTILE:
    get_ipython().run_cell_magic("sql", "", "INSERT INTO magic_values VALUES (:value)")
stored = get_ipython().run_cell_magic("sql", "--limit 0", "SELECT v FROM magic_values")
print(json.dumps({{"wrong": wrong, "stored": sorted(stored["v"].tolist()) == sorted(HOSTILE)}}))
"""
    outputs = kernel.run(code, timeout=120)
    assert [o for o in outputs if o["type"] == "error"] == [], outputs
    assert json.loads(_stdout(outputs).strip().splitlines()[-1]) == {"wrong": [], "stored": True}


@pytest.mark.slow
def test_magic_refuses_a_nul_and_a_second_statement_with_one_line(kernel: Kernel) -> None:
    outputs = kernel.run(f"value = {NUL!r}\n%sql SELECT :value AS v")
    assert _stderr(outputs).startswith("UsageError: "), outputs
    assert "NUL character" in _stderr(outputs)
    outputs = kernel.run("%sql SELECT 1 AS x; DROP TABLE canary")
    assert _stderr(outputs).startswith("UsageError: "), outputs
    outputs = kernel.run("%sql INSERT INTO canary VALUES (2, 'x'); DROP TABLE canary")
    assert _stderr(outputs).startswith("UsageError: "), outputs
    after = kernel.run("print((await tk.df('SELECT count(*) AS n FROM canary'))['n'][0])")
    assert _stdout(after).strip() == "1"
