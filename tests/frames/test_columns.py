"""Arrow columns as the frames package builds them: numeric text batch by batch, sent
timestamps, JSON decoded once, and columns turned into pandas without needless copies.

Each is compared with what asyncpg itself decodes or what pandas builds on its own.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

import toolkit as tk
from tests.conftest import spy_on_copy
from toolkit.frames import _assemble, _columns, _estimate, _types


async def _driver(session: AsyncSession) -> Any:
    """The session's asyncpg connection, to see what asyncpg itself decodes."""
    return (await (await session.connection()).get_raw_connection()).driver_connection


# Numeric text converted batch by batch (the COPY path) ------------------------------


def _decimal_text(*batches: list[str | None]) -> Any:
    decimals = _columns.DecimalText()
    for batch in batches:
        decimals.add(pa.array(batch, type=pa.string()))
    return decimals.finish()


def test_numeric_batches_are_widened_to_the_largest_scale_of_the_column() -> None:
    column = _decimal_text(["1.5", None], ["2.125", "3"], ["2.10"])
    assert column.type == pa.decimal128(38, 3)
    assert column.to_pylist() == [
        Decimal("1.500"), None, Decimal("2.125"), Decimal("3.000"), Decimal("2.100")
    ]  # fmt: skip


def test_numeric_trailing_zeros_count_towards_the_scale() -> None:
    assert _decimal_text(["1.5"], ["2.1000"]).type == pa.decimal128(38, 4)


def test_numeric_fractions_of_38_digits_still_fit_when_the_whole_part_is_zero() -> None:
    tiny = "-0." + "1" * 38
    column = _decimal_text(["0.5"], [tiny])
    assert column.type == pa.decimal128(38, 38)
    assert column.to_pylist()[1] == Decimal(tiny)


@pytest.mark.parametrize(
    "batches",
    [[["-1.5"], ["0." + "1" * 37]], [["-0.5", "-9"], ["1." + "2" * 37]], [["-9." + "1" * 37]]],
    ids=["sign-then-long-fraction", "leading-zero", "one-batch"],
)
def test_a_sign_or_a_leading_zero_is_not_a_digit_at_the_38_digit_limit(
    batches: list[list[str]],
) -> None:
    """Columns of exactly 38 digits stay Arrow decimals, as on the row path."""
    values = [Decimal(v) for batch in batches for v in batch]
    row_path = _columns._decimals_from_values(values)
    column = _decimal_text(*batches)
    assert isinstance(row_path, pa.Array)
    assert column.type == row_path.type == pa.decimal128(38, 37)
    assert column.to_pylist() == values


@pytest.mark.parametrize("late", ["NaN", "Infinity", "1" * 39, "-0." + "1" * 37 + "0"])
def test_a_numeric_column_falling_back_to_objects_keeps_every_value_as_sent(late: str) -> None:
    """A value Arrow cannot hold in a later batch turns the whole column into ``Decimal``
    objects, each exactly the text PostgreSQL sent - as asyncpg decodes them."""
    sent = [["1.5", "2.25", None], ["7.10", "7.20"], ["3", late]]
    column = _decimal_text(*sent)
    expected = [None if v is None else Decimal(v) for batch in sent for v in batch]
    assert [str(v) for v in column] == [str(v) for v in expected]


async def test_the_copy_path_converts_numerics_exactly_across_many_batches(
    session: AsyncSession,
) -> None:
    """Wide rows make the COPY output span several parser blocks (batches)."""
    await session.execute(
        text(
            "CREATE TEMP TABLE wide ON COMMIT DROP AS SELECT g AS n, repeat('x', 2000) AS pad, "
            "(CASE WHEN g % 1000 = 0 THEN round(g / 8.0, 3) ELSE round(g / 2.0, 1) END) AS fixed, "
            "(CASE WHEN g = 4999 THEN 'NaN' ELSE round(g / 4.0, 2) END)::numeric AS loose "
            "FROM generate_series(1, 5000) g"
        )
    )
    await session.execute(text("ANALYZE wide"))
    raw = await _driver(session)
    expected = await raw.fetch("SELECT fixed, loose FROM wide ORDER BY n")

    frame = await tk.df("SELECT pad, fixed, loose FROM wide ORDER BY n", session=session)

    assert str(frame["fixed"].dtype) == "decimal128(38, 3)[pyarrow]"
    assert frame["fixed"].tolist() == [r["fixed"] for r in expected]
    assert frame["loose"].dtype == object  # NaN: Decimal objects, each as sent
    assert [str(v) for v in frame["loose"]] == [str(r["loose"]) for r in expected]


_ARROW_COLUMNS = [
    pa.array([1, -2, 3], pa.int16()),
    pa.array([1, None, 3], pa.int32()),
    pa.array([2**40, -1, 0], pa.int64()),
    pa.array([True, False, True]),
    pa.array([True, None, False]),
    pa.array([1.5, float("nan"), None], pa.float64()),
    pa.array(["a", None, "c"], pa.large_string()),
    pa.array([datetime(2024, 1, 1, 12), None, datetime(1900, 1, 1)], pa.timestamp("us")),
    pa.array([datetime(2024, 1, 1, 12), None, datetime(1900, 1, 1)], pa.timestamp("us", tz="UTC")),
    pa.array([Decimal("1.50"), None], pa.decimal128(38, 2)),
    pa.array([date(2024, 2, 29), None], pa.date32()),
]


@pytest.mark.parametrize("chunked", [False, True], ids=["array", "chunked"])
@pytest.mark.parametrize("column", _ARROW_COLUMNS, ids=lambda c: str(c.type))
@pytest.mark.parametrize("backend", ["numpy_nullable", "pyarrow"])
def test_columns_built_directly_equal_what_pandas_builds(
    column: pa.Array, chunked: bool, backend: _types.DtypeBackend
) -> None:
    data = pa.chunked_array([column[:1], column[1:]]) if chunked else column
    built = pd.Series(_assemble.to_pandas(data, backend))
    if backend == "pyarrow":
        expected = pd.Series(data.to_pandas(types_mapper=pd.ArrowDtype))
    elif pa.types.is_timestamp(column.type) and column.type.tz is None:
        expected = pd.Series(data.to_numpy(zero_copy_only=False))
    elif pa.types.is_timestamp(column.type):
        expected = pd.Series(pd.DatetimeTZDtype("us", "UTC").__from_arrow__(data))
    elif column.type in _types.NULLABLE:
        expected = pd.Series(_types.NULLABLE[column.type].__from_arrow__(data))
    else:
        expected = pd.Series(pd.ArrowDtype(column.type).__from_arrow__(data))
    pd.testing.assert_series_equal(built, expected, check_exact=True)
    built.iloc[0] = built.iloc[-1]  # writable, as pandas' own arrays are


def test_a_column_of_no_chunks_becomes_an_empty_array() -> None:
    assert len(_assemble._numpy(pa.chunked_array([], type=pa.int64()))) == 0


@pytest.mark.parametrize(
    ("pg_type", "values"),
    [
        ("int2", (1, -2, 32767)),
        ("int4", (1, None, -(2**31))),
        ("int8", (None, None)),
        ("int8", ()),
        ("bool", (True, False)),
        ("bool", (True, None, False)),
    ],
)
def test_row_path_masked_columns_equal_the_arrow_route(
    pg_type: str, values: tuple[Any, ...]
) -> None:
    column = _types.Column("c", pg_type)
    built = pd.Series(_columns.column_from_values(column, values, "numpy_nullable"))
    assert column.arrow_type is not None
    arrow = pa.array(values, type=column.arrow_type)
    expected = pd.Series(_types.NULLABLE[column.arrow_type].__from_arrow__(arrow))
    pd.testing.assert_series_equal(built, expected, check_exact=True)


# Timestamps in their binary form (the COPY path) ---------------------------------------


@pytest.mark.parametrize("kind", ["timestamp", "timestamptz"])
async def test_copied_timestamps_keep_every_microsecond_from_year_1_to_9999(
    session: AsyncSession, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    edges = (
        "'0001-01-01 00:00:00', '1969-12-31 23:59:59.999999', '2000-01-01', "
        "'9999-12-31 23:59:59.999999'"
    )
    query = (
        f"SELECT g, (ARRAY[{edges}]::{kind}[])[g % 5] AS at "
        "FROM generate_series(1, 3 * 2000) g ORDER BY g"
    )
    copied = spy_on_copy(monkeypatch)
    monkeypatch.setattr(_estimate, "COPY_THRESHOLD", 10)  # where it is read
    frame = await tk.df(query, session=session)
    raw = await _driver(session)
    expected = [r["at"] for r in await raw.fetch(query)]
    assert copied == [True]
    assert frame["at"].isna().sum() == expected.count(None) > 0
    got = [None if pd.isna(v) else v.to_pydatetime() for v in frame["at"]]
    assert got == expected


async def _outcome(query: str, session: AsyncSession) -> Any:
    try:
        return (await tk.df(query, session=session))["at"].tolist()
    except Exception as error:  # the row path's own answer, compared as it is
        return type(error)


@pytest.mark.parametrize("value", ["infinity", "-infinity", "0044-03-15 BC", "10000-01-01"])
async def test_a_timestamp_beyond_years_1_to_9999_sends_the_result_down_the_row_path(
    session: AsyncSession, value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pandas and Python cannot hold these as they are: the row path answers, as it does
    for the value alone (+-infinity, read as the row path reads them, COPY keeps)."""
    at = f"CASE WHEN g = 4000 THEN '{value}' ELSE '2020-01-01' END::timestamptz AS at"
    many = f"SELECT g, {at} FROM generate_series(1, 3 * 2000) g ORDER BY g"
    one = f"SELECT g, {at} FROM generate_series(4000, 4000) g"
    monkeypatch.setattr(_estimate, "COPY_THRESHOLD", 10)  # where it is read
    copied = spy_on_copy(monkeypatch)
    outcome, alone = await _outcome(many, session), await _outcome(one, session)
    assert copied == ([True] if value.endswith("infinity") else [False])
    assert outcome == alone if isinstance(alone, type) else outcome[3999:4000] == alone


def test_sent_timestamps_decode_with_their_nulls() -> None:
    sent = [
        b"\\\\x" + (v - 946_684_800_000_000).to_bytes(8, "big", signed=True).hex().encode()
        if v is not None
        else None
        for v in (0, None, -1, 1_700_000_000_123_456)
    ]
    column = _columns.timestamps_from_sent(pa.array(sent, pa.binary()), pa.timestamp("us"))
    assert column.type == pa.timestamp("us")
    assert column.cast(pa.int64()).to_pylist() == [0, None, -1, 1_700_000_000_123_456]
    nothing = _columns.timestamps_from_sent(pa.array([None, None], pa.binary()), pa.timestamp("us"))
    assert nothing.to_pylist() == [None, None]


JSON_SCALARS = ['"42"', '"text"', '"\\u00e9 \\ud83d\\udc18"', "42", "null", '{"a": "1"}', '["2"]']


@pytest.mark.parametrize("json_type", ["json", "jsonb"])
@pytest.mark.parametrize("many", [False, True], ids=["row path", "copy path"])
async def test_a_json_string_is_decoded_once(
    session: AsyncSession, json_type: str, many: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The JSON string '"42"' is the str '42', not the number 42 (issue 14, defect 1)."""
    monkeypatch.setattr(_estimate, "COPY_THRESHOLD", 10)  # where it is read
    copied = spy_on_copy(monkeypatch)
    values = ", ".join(f"({i}, $j${v}$j$::{json_type})" for i, v in enumerate(JSON_SCALARS))
    repeat = 500 if many else 1
    query = (
        f"SELECT v.j FROM (VALUES {values}) AS v(i, j), generate_series(1, {repeat}) g "
        "ORDER BY g, v.i"
    )
    frame = await tk.df(query, session=session)
    expected = [json.loads(v) for v in JSON_SCALARS] * repeat
    assert frame["j"].tolist() == expected
    assert all(type(a) is type(b) for a, b in zip(frame["j"], expected, strict=True))
    assert copied == ([True] if many else [])
