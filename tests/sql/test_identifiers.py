"""toolkit.sql's names: one check (``checked``), then quoting - only where needed for SQL
(``quote``, ``qualified``, ``table_name``), always (``quote_always``), or as the server
prints a name (``quote_like_postgres``).

Names that reach the database (hostile characters, names PostgreSQL would truncate) are
tested end to end in tests/faults/test_hostile_input.py; these are the rules themselves.
"""

from __future__ import annotations

import pytest
from sqlalchemy import Column, Integer, MetaData, Table

from toolkit.errors import InvalidIdentifier
from toolkit.sql import (
    MAX_BYTES,
    checked,
    qualified,
    quote,
    quote_always,
    quote_like_postgres,
    table_name,
)


def _table(name: str, schema: str | None = None) -> Table:
    return Table(name, MetaData(), Column("id", Integer, primary_key=True), schema=schema)


# checked ------------------------------------------------------------------------------


def test_a_name_postgresql_can_hold_is_returned_as_it_is() -> None:
    for name in ("users", 'Odd "Name"; DROP TABLE x; --', "café", "a" * MAX_BYTES):
        assert checked(name) is name


def test_the_limit_counts_utf8_bytes_not_characters() -> None:
    assert MAX_BYTES == 63
    assert checked("é" * 31 + "a") == "é" * 31 + "a"  # 63 bytes
    with pytest.raises(InvalidIdentifier, match="64 bytes long"):
        checked("é" * 32)  # 32 characters, 64 bytes


def test_an_empty_name_is_refused_naming_what_it_is() -> None:
    with pytest.raises(InvalidIdentifier, match="the column name is empty"):
        checked("", "column name")


def test_a_name_that_is_not_a_str_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="a table name must be a str, got int"):
        checked(7, "table name")  # type: ignore[arg-type]


# quote and qualified ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "sql"),
    [
        ("users", "users"),
        ("_x1", "_x1"),
        ("Users", '"Users"'),
        ("user", '"user"'),  # a reserved word
        ("1x", '"1x"'),
        ("with space", '"with space"'),
        ('a"b', '"a""b"'),  # an inner quote is doubled
        ("a%b", '"a%b"'),  # asyncpg's dialect: a % stays single
    ],
)
def test_quote_quotes_only_where_sql_needs_it(name: str, sql: str) -> None:
    assert quote(name) == sql


def test_quote_checks_the_name_first() -> None:
    with pytest.raises(InvalidIdentifier, match="column name 'x\\\\x00y' contains a NUL"):
        quote("x\x00y", "column name")


def test_qualified_joins_schema_and_table_each_quoted() -> None:
    assert qualified("users", None) == "users"
    assert qualified("t", "public") == "public.t"
    assert qualified("Users", "My Schema") == '"My Schema"."Users"'


def test_qualified_names_the_part_it_refuses() -> None:
    with pytest.raises(InvalidIdentifier, match=r"^schema name"):
        qualified("t", "s" * 64)
    with pytest.raises(InvalidIdentifier, match=r"^table name"):
        qualified("t" * 64, "public")


# table_name -----------------------------------------------------------------------------


def test_table_name_is_a_tables_name_as_sql() -> None:
    assert table_name(_table("t")) == "t"
    assert table_name(_table("t", schema="s")) == "s.t"
    assert table_name(_table("user", schema="Weird")) == '"Weird"."user"'


def test_table_name_checks_table_and_schema() -> None:
    with pytest.raises(InvalidIdentifier, match=r"^table name"):
        table_name(_table("t" * 64))
    with pytest.raises(InvalidIdentifier, match=r"^schema name"):
        table_name(_table("t", schema="s" * 64))


# quote_always and quote_like_postgres ---------------------------------------------------


def test_quote_always_quotes_everything_and_checks_nothing() -> None:
    assert quote_always("users") == '"users"'
    assert quote_always('a"b') == '"a""b"'
    assert quote_always("") == '""'
    assert quote_always("t" * 64) == '"' + "t" * 64 + '"'  # a lookup may try any name


@pytest.mark.parametrize(
    ("name", "shown"),
    [  # what PostgreSQL's quote_ident() returns for each
        ("users", "users"),
        ("_x1", "_x1"),
        ("Users", '"Users"'),
        ("user", '"user"'),
        ("between", '"between"'),
        ("1x", '"1x"'),
        ("café", '"café"'),
        ("x-y", '"x-y"'),
        ('a"b', '"a""b"'),
        ("", '""'),
    ],
)
def test_quote_like_postgres_shows_a_name_as_the_server_prints_it(name: str, shown: str) -> None:
    assert quote_like_postgres(name) == shown
