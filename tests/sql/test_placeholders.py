"""toolkit.sql's ``:name`` scanner: placeholders outside literals, the SQL as ``text()``
must receive it (used by ``tk.df``, the ``%%sql`` magic and every helper taking SQL text)."""

from __future__ import annotations

import pytest

from toolkit.sql import find_placeholders


def test_placeholders_skip_strings_casts_and_comments() -> None:
    scan = find_placeholders("select '10:30' as t, 1::int as n, :x as x")
    assert scan.names == ("x",)
    assert scan.sql == "select '10:30' as t, 1::int as n, :x as x"


@pytest.mark.parametrize(
    "sql",
    [
        "select 'a :b'",
        "select E'it\\'s :b'",
        "select $$ :b $$",
        "select $tag$ :b $tag$",
        'select 1 as ":b"',
        "select 1 -- :b",
        "select 1 /* :b /* nested :c */ :d */",
        "select (array[1,2,3])[1:2]",
        "select 1::int, '{}'::jsonb",
    ],
)
def test_no_placeholder_inside_literals(sql: str) -> None:
    assert find_placeholders(sql).names == ()


def test_placeholders_in_order_once_each_and_casts_kept() -> None:
    scan = find_placeholders("select :b::int, :a, :b where x = 'a :z'")
    assert scan.names == ("b", "a")
    # text() needs a space before a cast right after a placeholder, and escaped colons
    # inside literals (it would take 'a :z' for a parameter).
    assert scan.sql == "select :b ::int, :a, :b where x = 'a \\:z'"


def test_literal_colons_reach_the_server_unchanged() -> None:
    from sqlalchemy import text
    from sqlalchemy.dialects.postgresql.asyncpg import dialect

    scan = find_placeholders("select 'a :z', $$ :y $$, :x::int")
    compiled = text(scan.sql).compile(dialect=dialect())  # type: ignore[no-untyped-call]
    assert compiled.string == "select 'a :z', $$ :y $$, $1 ::int"
    assert list(compiled.params) == ["x"]


def test_trailing_semicolons_and_comments_are_dropped() -> None:
    assert find_placeholders("select 1; -- done\n/* really */ ;\n").sql == "select 1"
    kept = "-- first\nselect ';' -- x\n, 2"
    assert find_placeholders(kept).sql == kept
