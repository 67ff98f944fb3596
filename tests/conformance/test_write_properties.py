"""Property-based conformance of the write direction: values Hypothesis generates, in the
dtypes pandas users hold them in, written by ``bulk_insert``, ``to_table`` and ``upsert``,
must read back through psycopg (the reference) as they were written (after
``normalise``; numpy ``NaN`` is pandas' missing value, so NULL).

The example budget is fixed and the examples derandomized, so CI's time is bounded and
every run tries the same values. Hypothesis runs in a worker thread; each example's writes
and reads run on the test's event loop (where the fixtures' connections live).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import math
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any, TypeVar

import pandas as pd
import psycopg
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from sqlalchemy import Column, Integer, MetaData, Table

import toolkit as tk
from tests.conformance.conftest import normalise
from tests.conformance.strategies import JSON, TEXT, ZONES, numeric
from toolkit.database import Database

EXAMPLES = 25
"""Examples per property (each up to 8 rows, written by each of the three helpers)."""
BUDGET = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None)
HELPERS = ("bulk_insert", "to_table", "upsert")

T = TypeVar("T")

_FIRST, _LAST = dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31, 23, 59, 59, 999999)


def _json_value(value: Any) -> Any:
    """JSON by value: jsonb keeps numbers as numeric (no -0, ``1e16`` prints as an
    integer), so numbers compare as Decimals."""
    text = json.dumps(value)
    return json.loads(text, parse_float=Decimal, parse_int=Decimal)


def _missing_nan(values: list[Any]) -> list[Any]:
    return [None if isinstance(v, float) and math.isnan(v) else v for v in values]


Property = tuple[str, st.SearchStrategy[Any], Callable[[list[Any]], Any], Callable[[Any], Any]]

PROPERTIES: dict[str, Property] = {
    "string[pyarrow]": ("text", TEXT, lambda v: pd.array(v, dtype="string[pyarrow]"), normalise),
    "object-str": ("text", TEXT, lambda v: pd.Series(v, dtype=object), normalise),
    "Decimal": ("numeric", numeric(), lambda v: pd.Series(v, dtype=object), normalise),
    "float64": (
        "float8",
        st.floats(),
        lambda v: pd.Series([math.nan if x is None else x for x in v], dtype="float64"),
        lambda v: normalise(_missing_nan(v)),
    ),
    "datetime64[us]": (
        "timestamp",
        st.datetimes(_FIRST, _LAST),
        lambda v: pd.Series(v, dtype="datetime64[us]"),
        normalise,
    ),
    "datetime64[us, UTC]": (
        "timestamptz",
        st.datetimes(_FIRST, _LAST, timezones=st.just(dt.UTC)),
        lambda v: pd.Series(v, dtype="datetime64[us, UTC]"),
        normalise,
    ),
    "aware-objects": (
        "timestamptz",
        st.datetimes(
            dt.datetime(2, 1, 1), dt.datetime(9998, 12, 31), timezones=st.sampled_from(ZONES[:3])
        ),
        lambda v: pd.Series(v, dtype=object),
        normalise,
    ),
    "timedelta-objects": (
        "interval",
        st.timedeltas(),
        lambda v: pd.Series(v, dtype=object),
        normalise,
    ),
    "json": ("json", JSON, lambda v: pd.Series(v, dtype=object), normalise),
    "jsonb": (
        "jsonb",
        JSON.filter(lambda v: "\x00" not in repr(v)),
        lambda v: pd.Series(v, dtype=object),
        lambda values: [None if v is None else _json_value(v) for v in values],
    ),
}
"""name: (SQL type, values, the column a user holds them in, how a reading compares)."""

EDGES: dict[str, list[Any]] = {
    "string[pyarrow]": ["", "\\N", "\t\n\r\\", '"', ",", "\U0010ffff", None],
    "object-str": ["", "NULL", "\\.", None],
    "Decimal": [Decimal("NaN"), Decimal("-Infinity"), Decimal("-1E-60"), Decimal(10**60), None],
    "float64": [math.nan, math.inf, -math.inf, -0.0, 5e-324, 1.7976931348623157e308, None],
    "datetime64[us]": [_FIRST, _LAST, dt.datetime(1970, 1, 1), None],
    "datetime64[us, UTC]": [_FIRST.replace(tzinfo=dt.UTC), _LAST.replace(tzinfo=dt.UTC), None],
    "aware-objects": [dt.datetime(2, 1, 1, tzinfo=ZONES[:3][2]), None],
    "timedelta-objects": [dt.timedelta.max, dt.timedelta.min, dt.timedelta(microseconds=-1), None],
    "json": ["42", "", 2**100, 1e300, -0.0, {"a": [None, True]}, [], None],
    "jsonb": ["42", "", 2**100, 1e300, -0.0, 1e16, {"a": [None, True]}, [], None],
}
"""One explicit example per property: the edges a small budget may not reach."""


@pytest.mark.parametrize("name", list(PROPERTIES))
async def test_generated_values_written_by_every_helper_read_back_the_same(
    name: str, conformance_db: Database, reference: psycopg.AsyncConnection[Any]
) -> None:
    type_, values, column, compared = PROPERTIES[name]
    tables = {helper: f"write_property_{helper}" for helper in HELPERS}
    for table in tables.values():
        await reference.execute(f"DROP TABLE IF EXISTS {table}")  # type: ignore[arg-type]
        await reference.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, v {type_})")  # type: ignore[arg-type]
    loop = asyncio.get_running_loop()
    examples = 0

    def on_loop(work: Awaitable[T]) -> T:
        return asyncio.run_coroutine_threadsafe(_awaited(work), loop).result()

    @BUDGET
    @example(EDGES[name])
    @given(st.lists(st.none() | values, min_size=1, max_size=8))
    def writes_back_the_same(rows: list[Any]) -> None:
        nonlocal examples
        examples += 1
        frame = pd.DataFrame({"id": range(len(rows)), "v": column(rows)})
        for helper, table in tables.items():
            read = on_loop(_write_and_read(conformance_db, reference, helper, table, frame))
            assert compared(read) == compared(rows), (helper, rows, read)

    try:
        await asyncio.to_thread(writes_back_the_same)
    finally:
        for table in tables.values():
            await reference.execute(f"DROP TABLE {table}")  # type: ignore[arg-type]
    print(f"{name}: {examples} examples x {len(HELPERS)} helpers")
    assert examples >= EXAMPLES  # the explicit one and the generated ones


async def _awaited(work: Awaitable[T]) -> T:
    return await work


async def _write_and_read(
    db: Database,
    reference: psycopg.AsyncConnection[Any],
    helper: str,
    table: str,
    frame: pd.DataFrame,
) -> list[Any]:
    await reference.execute(f"TRUNCATE {table}")  # type: ignore[arg-type]
    target = Table(table, MetaData(), Column("id", Integer, primary_key=True), Column("v"))
    if helper == "bulk_insert":
        await tk.bulk_insert(target, frame, database=db)
    elif helper == "to_table":
        await tk.to_table(frame, table, if_exists="append", database=db)
    else:
        await tk.upsert(target, frame, database=db)
    cursor = await reference.execute(f"SELECT v FROM {table} ORDER BY id")  # type: ignore[arg-type]
    return [row[0] for row in await cursor.fetchall()]
