"""Property-based conformance: values Hypothesis generates, written by psycopg (bound
parameters), read back through the toolkit's paths, must equal psycopg's reading of the
same rows (after ``normalise``; float NaN reads ``<NA>`` on the ``numpy_nullable`` paths,
the documented loss).

The example budget is fixed and the examples derandomized, so CI's time is bounded and
every run tries the same values. Hypothesis runs in a worker thread; each example's
reads run on the test's event loop (where the fixtures' connections live).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any, TypeVar

import psycopg
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from psycopg.types.json import Json, Jsonb

from tests.conformance.conftest import NULLABLE_PATHS, Raised, Reader, normalise
from tests.conformance.strategies import JSON, TEXT, ZONES, numeric
from toolkit.database import Database

EXAMPLES = 40
"""Examples per property (each a table of up to 8 rows read through ``PROPERTY_PATHS``)."""
PROPERTY_PATHS = (
    "row/numpy_nullable",
    "row/pyarrow",
    "copy/numpy_nullable",
    "copy/pyarrow",
    "stream-copy/numpy_nullable",
    "stream-cursor/pyarrow",
    "page",
)
"""Every path but the magic (it reads through ``tk.df``'s, with a kernel round trip)."""
BUDGET = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None)

T = TypeVar("T")

_FIRST, _LAST = dt.datetime(1, 1, 2), dt.datetime(9999, 12, 30, 23, 59, 59, 999999)


_NAN = float("nan")
EDGES: dict[str, list[Any]] = {
    "text": ["", "\\N", "\t\n\r\\", "\U0010ffff", None],
    "numeric": [Decimal("NaN"), Decimal("Infinity"), Decimal("-1E-60"), Decimal(10**60), None],
    "float8": [_NAN, math.inf, -math.inf, -0.0, 5e-324, 1.7976931348623157e308, None],
    "float4": [_NAN, math.inf, -0.0, 1.401298464324817e-45, 3.4028234663852886e38, None],
    "timestamp": [_FIRST, _LAST, dt.datetime(1970, 1, 1), None],
    "timestamptz": [_FIRST.replace(tzinfo=ZONES[3]), _LAST.replace(tzinfo=dt.UTC), None],
    "json": ["42", 2**100, 1e300, -0.0, {"a": [None, True]}, [], None],
    "jsonb": ["42", 2**100, 1e300, -0.0, {"a": [None, True]}, [], None],
}
"""One explicit example per property: the edges a small budget may not reach."""

PROPERTIES: dict[str, tuple[str, st.SearchStrategy[Any], Callable[[Any], Any]]] = {
    "text": ("text", TEXT, lambda v: v),
    "numeric": ("numeric", numeric(), lambda v: v),
    "float8": ("float8", st.floats(), lambda v: v),
    "float4": ("float4", st.floats(width=32), lambda v: v),  # float32 values: stored exactly
    "timestamp": ("timestamp", st.datetimes(_FIRST, _LAST), lambda v: v),
    "timestamptz": (
        "timestamptz",
        st.datetimes(_FIRST, _LAST, timezones=st.sampled_from(ZONES)),
        lambda v: v,
    ),
    "json": ("json", JSON, Json),
    "jsonb": ("jsonb", JSON.filter(lambda v: "\x00" not in repr(v)), Jsonb),
}
"""name: (SQL type, values, how psycopg binds one)."""


@pytest.mark.parametrize("name", list(PROPERTIES))
async def test_generated_values_read_as_psycopg_reads_them(
    name: str, conformance_db: Database, reference: psycopg.AsyncConnection[Any]
) -> None:
    type_, values, bind = PROPERTIES[name]
    table = f"property_{name}"
    await reference.execute(f"CREATE TABLE {table} (i int, v {type_})")  # type: ignore[arg-type]
    loop = asyncio.get_running_loop()
    examples = 0

    def on_loop(work: Awaitable[T]) -> T:
        return asyncio.run_coroutine_threadsafe(_awaited(work), loop).result()

    @BUDGET
    @example(EDGES[name])
    @given(st.lists(st.none() | values, min_size=1, max_size=8))
    def reads_as_psycopg(rows: list[Any]) -> None:
        nonlocal examples
        examples += 1
        on_loop(
            _check(
                conformance_db,
                reference,
                table,
                type_,
                [None if v is None else bind(v) for v in rows],
            )
        )

    try:
        await asyncio.to_thread(reads_as_psycopg)
    finally:
        await reference.execute(f"DROP TABLE {table}")  # type: ignore[arg-type]
    print(f"{name}: {examples} examples")
    assert examples >= EXAMPLES  # the explicit one and the generated ones


async def _awaited(work: Awaitable[T]) -> T:
    return await work


async def _check(
    db: Database,
    reference: psycopg.AsyncConnection[Any],
    table: str,
    type_: str,
    rows: list[Any],
) -> None:
    await reference.execute(f"TRUNCATE {table}")  # type: ignore[arg-type]
    async with reference.cursor() as cursor:
        await cursor.executemany(
            f"INSERT INTO {table} VALUES (%s, %s)",  # type: ignore[arg-type]
            list(enumerate(rows)),
        )
    sql = f"SELECT v FROM {table} ORDER BY i"
    cursor = await reference.execute(sql, binary=type_ == "float4")  # type: ignore[arg-type]
    psycopg_values = [row[0] for row in await cursor.fetchall()]
    for path in PROPERTY_PATHS:
        want = [_as_read_on(path, v) for v in psycopg_values]
        reader = Reader(db)
        got = await reader.read(path, sql)
        assert not isinstance(got, Raised), (path, got)
        assert got == want, (path, rows)
        if path.startswith("copy/"):
            assert reader.copy_answered == [True]


def _as_read_on(path: str, value: Any) -> Any:
    """psycopg's value as ``path`` gives it: NaN is ``<NA>`` where pandas masks floats."""
    if isinstance(value, float) and math.isnan(value) and path in NULLABLE_PATHS:
        return None
    return normalise(value)


BOUND: dict[str, tuple[str, st.SearchStrategy[Any]]] = {
    "text": ("text", TEXT),
    "numeric": ("numeric", numeric()),
    "float8": ("float8", st.floats()),
    "int8": ("int8", st.integers(min_value=-(2**63), max_value=2**63 - 1)),
    "timestamptz": ("timestamptz", st.datetimes(_FIRST, _LAST, timezones=st.sampled_from(ZONES))),
}
"""Values bound as ``tk.df`` parameters (COPY cannot take bind values: asyncpg has the
server quote them into the statement)."""
BOUND_PATHS = ("row/numpy_nullable", "copy/pyarrow", "stream-copy/numpy_nullable")


@pytest.mark.parametrize("name", list(BOUND))
async def test_bound_parameters_read_back_as_psycopg_reads_them(
    name: str, conformance_db: Database, reference: psycopg.AsyncConnection[Any]
) -> None:
    type_, values = BOUND[name]
    loop = asyncio.get_running_loop()
    examples = 0

    @BUDGET
    @example(EDGES.get(name, [None])[0])
    @given(st.none() | values)
    def bound_values_read_back(value: Any) -> None:
        nonlocal examples
        examples += 1
        work = _check_bound(conformance_db, reference, type_, value)
        asyncio.run_coroutine_threadsafe(work, loop).result()

    await asyncio.to_thread(bound_values_read_back)
    print(f"bound {name}: {examples} examples")
    assert examples >= EXAMPLES


async def _check_bound(
    db: Database, reference: psycopg.AsyncConnection[Any], type_: str, value: Any
) -> None:
    sql = f"SELECT CAST(:v AS {type_}) AS v FROM generate_series(1, 2) ORDER BY 1"
    cursor = await reference.execute(  # type: ignore[arg-type]
        f"SELECT CAST(%s AS {type_}) AS v FROM generate_series(1, 2)", (value,)
    )
    psycopg_values = [row[0] for row in await cursor.fetchall()]
    for path in BOUND_PATHS:
        reader = Reader(db)
        got = await reader.read(path, sql, params={"v": value})
        assert not isinstance(got, Raised), (path, got)
        assert got == [_as_read_on(path, v) for v in psycopg_values], (path, value)
        if path.startswith("copy/"):
            assert reader.copy_answered == [True]
