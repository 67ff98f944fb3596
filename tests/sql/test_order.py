"""order_keys: a statement's own ORDER BY, read from its text as PostgreSQL reads it."""

from __future__ import annotations

import pytest

from toolkit.sql import OrderKey, limits, order_keys


def test_a_query_without_order_by_has_no_keys() -> None:
    assert order_keys("SELECT * FROM t WHERE a = 1") == ()


@pytest.mark.parametrize(
    ("clause", "expected"),
    [
        ("a", OrderKey("a", descending=False, nulls_first=False)),
        ("a ASC", OrderKey("a", descending=False, nulls_first=False)),
        ("a DESC", OrderKey("a", descending=True, nulls_first=True)),
        ("a desc nulls last", OrderKey("a", descending=True, nulls_first=False)),
        ("a NULLS FIRST", OrderKey("a", descending=False, nulls_first=True)),
        ("t.a", OrderKey("t.a", descending=False, nulls_first=False)),
        ("lower(a) DESC", OrderKey("lower(a)", descending=True, nulls_first=True)),
        ("1", OrderKey("1", descending=False, nulls_first=False)),
    ],
)
def test_the_first_key_its_direction_and_where_nulls_go(clause: str, expected: OrderKey) -> None:
    assert order_keys(f"SELECT a, b FROM t ORDER BY {clause}, b LIMIT 5")[0] == expected


def test_every_key_is_read_up_to_limit_offset_fetch_or_for() -> None:
    keys = order_keys("SELECT * FROM t ORDER BY a, coalesce(b, 0) DESC OFFSET 3 FOR UPDATE")
    assert [k.expression for k in keys] == ["a", "coalesce(b, 0)"]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT string_agg(a, ',' ORDER BY a) FROM t",
        "SELECT row_number() OVER (ORDER BY a) FROM t",
        "SELECT * FROM (SELECT * FROM t ORDER BY a) s",
        "SELECT 'ORDER BY a' FROM t",
        'SELECT "order by" FROM t',
        "SELECT a FROM t -- ORDER BY a",
        "SELECT a FROM t /* ORDER BY a */",
        "SELECT $x$ ORDER BY a $x$ FROM t",
    ],
)
def test_an_order_by_inside_parentheses_literals_or_comments_is_not_the_statements(
    sql: str,
) -> None:
    assert order_keys(sql) == ()


def test_the_order_by_of_a_union_is_the_statements() -> None:
    keys = order_keys("SELECT a FROM t UNION ALL SELECT a FROM u ORDER BY a DESC")
    assert keys == (OrderKey("a", descending=True, nulls_first=True),)


@pytest.mark.parametrize(
    ("expression", "column", "names"),
    [
        ("a", "a", True),
        ("A", "a", True),
        ("t.a", "a", True),
        ('"A"', "A", True),
        ('s."T"."A"', "A", True),
        ('"A"', "a", False),
        ("a + 1", "a", False),
        ("b", "a", False),
    ],
)
def test_a_key_names_a_column_as_postgresql_folds_names(
    expression: str, column: str, names: bool
) -> None:
    assert OrderKey(expression, False, False).names(column) is names


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT * FROM t ORDER BY a LIMIT 5", True),
        ("SELECT * FROM t OFFSET 5", True),
        ("SELECT * FROM t FETCH FIRST 3 ROWS ONLY", True),
        ("SELECT * FROM (SELECT * FROM t LIMIT 5) s", False),
        ("SELECT 'limit 5' FROM t", False),
        ("SELECT * FROM t", False),
    ],
)
def test_limits_says_whether_the_statements_own_limit_picks_rows(sql: str, expected: bool) -> None:
    assert limits(sql) is expected
