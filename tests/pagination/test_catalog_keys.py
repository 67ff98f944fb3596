"""Keyset keys of tables described without constraint metadata (``table()`` constructs,
``Table`` objects of columns only, bare ``column()``s): their uniqueness and NOT NULL
columns come from the database's catalog, as for a database nobody here designed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, column, event, select, table, text
from sqlalchemy.ext.asyncio import AsyncSession

import toolkit as tk
from toolkit.pagination import PaginationError
from toolkit.pagination import _catalog_keys as catalog_keys

partsupp = table(
    "partsupp",
    column("ps_partkey"),
    column("ps_suppkey"),
    column("ps_availqty"),
    column("ps_comment"),
)

PARTSUPP_ROWS = [(p, s, 100 * p + s, f"part {p} from {s}") for p in (3, 1, 2) for s in (20, 10, 30)]


@pytest.fixture(autouse=True)
def read_the_catalog_every_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test creates its tables in a transaction rolled back at its end: a table of
    the same name in another test may differ, so nothing is kept between statements."""
    monkeypatch.setattr(catalog_keys, "CACHE_SECONDS", 0.0)


async def _partsupp(session: AsyncSession) -> None:
    """A TPC-H-like ``partsupp`` whose primary key is ``(ps_partkey, ps_suppkey)``."""
    await session.execute(
        text(
            "CREATE TABLE partsupp (ps_partkey integer, ps_suppkey integer, "
            "ps_availqty integer NOT NULL, ps_comment text, "
            "PRIMARY KEY (ps_partkey, ps_suppkey))"
        )
    )
    await session.execute(
        text("INSERT INTO partsupp VALUES (:p, :s, :q, :c)"),
        [dict(zip("psqc", row, strict=True)) for row in PARTSUPP_ROWS],
    )


async def _rows(pages: Any) -> list[Any]:
    return [tuple(row) for page in [p async for p in pages] for row in page]


@contextmanager
def _statements(connection: Any) -> Iterator[list[tuple[str, Any]]]:
    """The SQL and parameters of every statement the session's connection sends."""
    sent: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        sent.append((statement, parameters))

    event.listen(connection, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(connection, "before_cursor_execute", record)


async def _sync_connection(session: AsyncSession) -> Any:
    return (await session.connection()).sync_connection


# Uniqueness from the catalog ----------------------------------------------------------


async def test_a_table_construct_pages_on_its_composite_primary_key(
    session: AsyncSession,
) -> None:
    """Issue 14, defect 3: the key was refused as "cannot be checked for uniqueness"."""
    await _partsupp(session)
    key = [partsupp.c.ps_partkey, partsupp.c.ps_suppkey]
    walked = await _rows(tk.keyset(select(partsupp), key=key, size=2, session=session))
    assert walked == sorted(PARTSUPP_ROWS)
    descending = [partsupp.c.ps_partkey.desc(), partsupp.c.ps_suppkey.desc()]
    page = await tk.keyset_page(select(partsupp), key=descending, size=4, session=session)
    assert [tuple(row) for row in page] == sorted(PARTSUPP_ROWS, reverse=True)[:4]


async def test_a_table_of_columns_only_and_bare_columns_are_checked_the_same_way(
    session: AsyncSession,
) -> None:
    await _partsupp(session)
    columns_only = Table(
        "partsupp", MetaData(), Column("ps_partkey", Integer), Column("ps_suppkey", Integer)
    )
    key = [columns_only.c.ps_partkey, columns_only.c.ps_suppkey]
    walked = await _rows(tk.keyset(select(columns_only), key=key, size=4, session=session))
    assert walked == sorted((p, s) for p, s, _, _ in PARTSUPP_ROWS)

    bare = select(column("ps_partkey"), column("ps_suppkey")).select_from(table("partsupp"))
    key = [column("ps_partkey"), column("ps_suppkey")]
    assert await _rows(tk.keyset(bare, key=key, size=4, session=session)) == walked
    with pytest.raises(PaginationError, match=r"unique column sets of partsupp are"):
        await tk.keyset_page(bare, key=column("ps_partkey"), session=session)


async def test_a_refused_key_names_the_unique_column_sets_and_the_tiebreaker(
    session: AsyncSession,
) -> None:
    await _partsupp(session)
    await session.execute(text("CREATE UNIQUE INDEX ON partsupp (ps_availqty)"))
    message = (
        r"key \(partsupp.ps_partkey\) is not unique - the unique column sets of partsupp are "
        r"\(ps_partkey, ps_suppkey\), \(ps_availqty\); add a tiebreaker, "
        r"e.g. key=\[partsupp.ps_partkey.desc\(\), partsupp.ps_suppkey.desc\(\)\]"
    )
    with pytest.raises(PaginationError, match=message):
        await tk.keyset_page(select(partsupp), key=partsupp.c.ps_partkey.desc(), session=session)
    with pytest.raises(PaginationError, match=r"sets of partsupp are"):
        await _rows(tk.keyset(select(partsupp), key=partsupp.c.ps_suppkey, session=session))
    page = await tk.keyset_page(select(partsupp), key=partsupp.c.ps_availqty, session=session)
    assert len(page) == len(PARTSUPP_ROWS)


async def test_a_table_without_unique_columns_and_an_unknown_table_are_refused(
    session: AsyncSession,
) -> None:
    await session.execute(text("CREATE TABLE heap_rows (id integer NOT NULL, v integer)"))
    heap = table("heap_rows", column("id"), column("v"))
    with pytest.raises(
        PaginationError,
        match=r"key \(heap_rows.id\) is not unique - heap_rows has no primary key, unique "
        r"constraint or unique index on NOT NULL columns; .* or pass unique=True",
    ):
        await tk.keyset_page(select(heap), key=heap.c.id, session=session)
    missing = table("no_such_table", column("id"))
    with pytest.raises(PaginationError, match=r"cannot be checked for uniqueness"):
        await tk.keyset_page(select(missing), key=missing.c.id, session=session)


UNTRUSTED = {
    "a nullable unique column": (
        "CREATE TABLE codes (id integer PRIMARY KEY, code text UNIQUE)",
        "code",
    ),
    "a partial unique index": (
        "CREATE TABLE codes (id integer PRIMARY KEY, code text NOT NULL);"
        "CREATE UNIQUE INDEX ON codes (code) WHERE id > 0",
        "code",
    ),
    "an expression index": (
        "CREATE TABLE codes (id integer PRIMARY KEY, code text NOT NULL);"
        "CREATE UNIQUE INDEX ON codes (lower(code))",
        "code",
    ),
    "an included column": (
        "CREATE TABLE codes (id integer PRIMARY KEY, code text NOT NULL, n int NOT NULL);"
        "CREATE UNIQUE INDEX ON codes (n) INCLUDE (code)",
        "code",
    ),
    "a deferrable unique constraint": (
        "CREATE TABLE codes (id integer PRIMARY KEY, code text NOT NULL "
        "UNIQUE DEFERRABLE INITIALLY DEFERRED)",
        "code",
    ),
}


@pytest.mark.parametrize("case", UNTRUSTED)
async def test_uniqueness_that_does_not_identify_rows_is_not_trusted(
    session: AsyncSession, case: str
) -> None:
    """Each may hold two rows with the same key value, or leave equal values to a later
    check: pages would skip or repeat them."""
    ddl, name = UNTRUSTED[case]
    for statement in ddl.split(";"):
        await session.execute(text(statement))
    codes = table("codes", column("id"), column("code"))
    with pytest.raises(
        PaginationError, match=r"add a tiebreaker, e.g. key=\[codes.code, codes.id\]"
    ):
        await tk.keyset_page(select(codes), key=codes.c[name], session=session)
    await tk.keyset_page(select(codes), key=[codes.c[name], codes.c.id], session=session)


async def test_a_not_null_constraint_not_yet_validated_is_not_trusted(
    session: AsyncSession,
) -> None:
    """PostgreSQL 18 sets attnotnull for ``NOT NULL ... NOT VALID`` though older rows may
    still be NULL."""
    version = await session.scalar(text("SELECT current_setting('server_version_num')::int"))
    if version is None or version < 180000:
        pytest.skip("NOT NULL constraints are NOT VALID only from PostgreSQL 18")
    await session.execute(text("CREATE TABLE late (id integer PRIMARY KEY, v integer UNIQUE)"))
    await session.execute(text("INSERT INTO late VALUES (1, NULL), (2, NULL)"))
    await session.execute(text("ALTER TABLE late ADD CONSTRAINT v_set NOT NULL v NOT VALID"))
    late = table("late", column("id"), column("v"))
    with pytest.raises(PaginationError, match=r"unique column sets of late are \(id\);"):
        await tk.keyset_page(select(late), key=late.c.v, session=session)
    rows = await _rows(tk.keyset(select(late), key=[late.c.v, late.c.id], size=1, session=session))
    assert rows == [(1, None), (2, None)]


async def test_schema_qualified_names_and_the_search_path_resolve_as_postgresql_does(
    session: AsyncSession,
) -> None:
    await session.execute(text("CREATE SCHEMA keyed"))
    await session.execute(text("CREATE TABLE keyed.parts (id integer PRIMARY KEY)"))
    await session.execute(text("CREATE TABLE public.parts (id integer)"))
    qualified = table("parts", column("id"), schema="keyed")
    unqualified = table("parts", column("id"))
    await tk.keyset_page(select(qualified), key=qualified.c.id, session=session)
    with pytest.raises(PaginationError, match=r"parts has no primary key"):
        await tk.keyset_page(select(unqualified), key=unqualified.c.id, session=session)
    await session.execute(text("SET LOCAL search_path = keyed, public"))
    await tk.keyset_page(select(unqualified), key=unqualified.c.id, session=session)
    await session.execute(text("CREATE TEMP TABLE parts (id integer)"))  # pg_temp comes first
    with pytest.raises(PaginationError, match=r"parts has no primary key"):
        await tk.keyset_page(select(unqualified), key=unqualified.c.id, session=session)
    await session.execute(text('CREATE TABLE keyed."Odd ""Parts"".x" ("Id" integer PRIMARY KEY)'))
    odd = table('Odd "Parts".x', column("Id"), schema="keyed")  # quoted as statements quote it
    await tk.keyset_page(select(odd), key=odd.c.Id, session=session)


async def test_a_tables_catalog_facts_are_read_once_and_kept_for_a_while(
    session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """(``kept_once`` is a name no other test uses: its facts may outlive this test.)"""
    await session.execute(text("CREATE TABLE kept_once (id integer PRIMARY KEY)"))
    await session.execute(text("CREATE TEMP TABLE scratch (id integer PRIMARY KEY)"))
    kept, scratch = table("kept_once", column("id")), table("scratch", column("id"))
    monkeypatch.setattr(catalog_keys, "CACHE_SECONDS", 60.0)
    with _statements(await _sync_connection(session)) as sent:
        for _ in range(3):
            await tk.keyset_page(select(kept), key=kept.c.id, session=session)
            await tk.keyset_page(select(scratch), key=scratch.c.id, session=session)
        monkeypatch.setattr(catalog_keys, "CACHE_SECONDS", 0.0)
        await tk.keyset_page(select(kept), key=kept.c.id, session=session)
    lookups = [params[0] for statement, params in sent if "to_regclass" in statement]
    # kept_once once, and again when its facts expire; a temporary table every time
    assert lookups == ["kept_once", "scratch", "scratch", "scratch", "kept_once"]


# NOT NULL from the catalog: an index range, at any depth ---------------------------------


@pytest.mark.parametrize("unique", [False, True], ids=["checked", "vouched"])
async def test_a_not_null_key_from_the_catalog_gets_no_is_null_branch(
    session: AsyncSession, unique: bool
) -> None:
    """Issue 14: ``WHERE id > $1 OR id IS NULL`` kept PostgreSQL from an index range."""
    await _partsupp(session)
    single = table("partsupp", column("ps_availqty"))
    await session.execute(text("CREATE UNIQUE INDEX ON partsupp (ps_availqty)"))
    with _statements(await _sync_connection(session)) as sent:
        await _rows(
            tk.keyset(
                select(single), key=single.c.ps_availqty, size=2, unique=unique, session=session
            )
        )
        key = [partsupp.c.ps_partkey, partsupp.c.ps_suppkey]
        await _rows(tk.keyset(select(partsupp), key=key, size=2, unique=unique, session=session))
    pages = [s for s, _ in sent if "ORDER BY" in s and "to_regclass" not in s]
    assert not [s for s in pages if "IS NULL" in s]
    assert any("WHERE partsupp.ps_availqty > $1 ORDER BY" in s for s in pages)
    assert any("WHERE (partsupp.ps_partkey, partsupp.ps_suppkey) > ($1, $2)" in s for s in pages)


async def test_a_nullable_key_column_keeps_its_is_null_branch(session: AsyncSession) -> None:
    await _partsupp(session)
    comment = table("partsupp", column("ps_comment"), column("ps_partkey"), column("ps_suppkey"))
    key = [comment.c.ps_comment, comment.c.ps_partkey, comment.c.ps_suppkey]
    with _statements(await _sync_connection(session)) as sent:
        rows = await _rows(tk.keyset(select(comment), key=key, size=2, session=session))
    assert len(rows) == len(PARTSUPP_ROWS)
    assert any("partsupp.ps_comment IS NULL" in s for s, _ in sent)


def _scan(plan: dict[str, Any]) -> dict[str, Any]:
    """The node under the plan's Limit: the scan that finds the page's rows."""
    assert plan["Node Type"] == "Limit", plan
    (scan,) = plan["Plans"]
    return scan


def _blocks(node: dict[str, Any]) -> int:
    return int(node["Shared Hit Blocks"] + node["Shared Read Blocks"])


@pytest.mark.parametrize("unique", [False, True], ids=["checked", "vouched"])
async def test_a_deep_page_seeks_an_index_range_as_an_early_one_does(
    session: AsyncSession, unique: bool
) -> None:
    """The plans at depth, not a stopwatch: the page after row 45,000 of 50,000 scans an
    index range from the cursor (an Index Cond, no Filter) and reads about as many blocks
    as the page after row 1,000."""
    await session.execute(text("CREATE TABLE seek_depth (id integer PRIMARY KEY, v text)"))
    await session.execute(
        text("INSERT INTO seek_depth SELECT n, md5(n::text) FROM generate_series(1, 50000) n")
    )
    await session.execute(text("ANALYZE seek_depth"))
    depth = table("seek_depth", column("id"), column("v"))
    connection = await session.connection()
    with _statements(connection.sync_connection) as sent:
        walked = await _rows(
            tk.keyset(select(depth), key=depth.c.id, size=1000, unique=unique, session=session)
        )
    assert len(walked) == 50000
    pages = {params[0]: (s, params) for s, params in sent if "WHERE seek_depth.id" in s}
    explained = {}
    for after in (1000, 45000):
        statement, params = pages[after]
        result = await connection.exec_driver_sql(
            "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + statement, params
        )
        found = result.scalar()
        explained[after] = _scan(
            (json.loads(found) if isinstance(found, str) else found)[0]["Plan"]
        )
    for after, scan in explained.items():
        assert scan["Node Type"] in ("Index Scan", "Index Only Scan"), scan
        assert scan.get("Index Cond") == f"(id > {after})"
        assert "Filter" not in scan
        assert scan["Actual Rows"] == 1001
    assert _blocks(explained[45000]) <= 2 * _blocks(explained[1000])


async def test_an_outer_join_keeps_the_is_null_branch_of_a_not_null_column(
    session: AsyncSession,
) -> None:
    await _partsupp(session)
    await session.execute(text("CREATE TABLE parts (p_partkey integer PRIMARY KEY)"))
    await session.execute(text("INSERT INTO parts VALUES (1), (2), (3), (4)"))
    parts = table("parts", column("p_partkey"))
    query = select(parts.c.p_partkey, partsupp.c.ps_suppkey).outerjoin(
        partsupp, partsupp.c.ps_partkey == parts.c.p_partkey
    )
    key = [parts.c.p_partkey, partsupp.c.ps_suppkey]
    with _statements(await _sync_connection(session)) as sent:
        rows = await _rows(tk.keyset(query, key=key, size=1, session=session))
    assert rows == [*sorted((p, s) for p, s, _, _ in PARTSUPP_ROWS), (4, None)]
    assert any("partsupp.ps_suppkey IS NULL" in s for s, _ in sent)
