"""The type mapping through tk.df: every PostgreSQL type round-trips to asyncpg's values.

The same table is read by both of tk.df's paths - rows over the binary protocol (a few
rows) and COPY + Arrow (many rows) - and each value is compared with what asyncpg itself
decodes. Both paths must also give identical dtypes.
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pandas as pd
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

import toolkit as tk
from tests.conftest import spy_on_copy
from toolkit import frames
from toolkit.frames import _estimate

SCHEMA = """
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE every_type (
    pos int4 NOT NULL,
    i2 int2, i4 int4, i8 int8,
    f4 float4, f8 float8,
    num numeric, money_like numeric(12, 2),
    flag bool,
    txt text, vc varchar(20), ch char(3),
    d date, t time, ts timestamp, tstz timestamptz,
    iv interval, id uuid, js json, jsb jsonb, raw bytea,
    ints int4[], words text[],
    feeling mood
)
"""

# Pathological text: commas, quotes, newlines, backslashes, the word NULL, '' vs NULL.
TEXTS = [
    "plain",
    "a,b",
    'say "hi"',
    "line\nbreak\r\n",
    "back\\slash",
    "NULL",
    "",
    None,
    "ünï 🐘",
    "tab\there",
    "\\N",
    "\\\\n\b\f\v\x01",
]


def _row(pos: int) -> dict[str, Any]:
    text_value = TEXTS[pos % len(TEXTS)]
    special = pos % 7 == 0
    return {
        "pos": pos,
        "i2": None if pos % 5 == 0 else (pos % 30000) - 15000,
        "i4": None if pos % 6 == 0 else pos * 1000,
        "i8": None if pos % 4 == 0 else pos * 10**12,
        "f4": float("nan") if special else pos / 8,
        "f8": [float("inf"), float("-inf"), None, 0.1 + 0.2][pos % 4] if special else pos / 3,
        "num": None if pos % 3 == 0 else Decimal(f"{pos}.{pos % 1000:03d}"),
        "money_like": Decimal(pos % 100000) / 100,
        "flag": [True, False, None][pos % 3],
        "txt": text_value,
        "vc": None if text_value is None else text_value[:20],
        "ch": ["ab", "xyz", None][pos % 3],
        "d": date(2000, 1, 1) + timedelta(days=pos),
        "t": time(pos % 24, pos % 60, pos % 60, pos % 1000000),
        "ts": datetime(2020, 1, 1) + timedelta(seconds=pos, microseconds=pos),
        "tstz": None if special else datetime(2020, 1, 1) + timedelta(minutes=pos),
        "iv": timedelta(days=pos % 10, seconds=pos),
        "id": None if special else f"00000000-0000-0000-0000-{pos:012d}",
        "js": None if special else json.dumps({"n": pos, "s": text_value}),
        "jsb": json.dumps([pos, {"k": "v"}]),
        "raw": None if special else bytes([pos % 256, 0, 92]),
        "ints": [pos, None, -pos],
        "words": ["a,b", None, '"q"'],
        "feeling": ["sad", "ok", "happy", None][pos % 4],
    }


@pytest.fixture
async def typed(
    session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[AsyncSession]:
    """The every_type table, inside the test's rolled-back transaction."""
    # Each test re-creates the table with other row counts: never reuse a row estimate.
    monkeypatch.setattr(_estimate, "ESTIMATE_TTL", 0.0)
    conn = await session.connection()
    raw = (await conn.get_raw_connection()).driver_connection
    # The type and table are created anew (new OIDs) in every test's rolled-back
    # transaction: make asyncpg forget statements and codecs cached for the old ones.
    await raw.reload_schema_state()
    for statement in SCHEMA.split(";"):
        if statement.strip():
            await raw.execute(statement)
    yield session
    await raw.reload_schema_state()


async def _fill(session: AsyncSession, rows: int) -> list[Any]:
    """Insert ``rows`` rows, then return them as asyncpg decodes them."""
    conn = await session.connection()
    raw = (await conn.get_raw_connection()).driver_connection
    values = [_row(pos) for pos in range(rows)]
    columns = list(values[0])
    placeholders = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    await raw.executemany(
        f"INSERT INTO every_type ({', '.join(columns)}) VALUES ({placeholders})",
        [
            tuple(
                (datetime.fromisoformat(v.isoformat() + "+00:00") if k == "tstz" and v else v)
                for k, v in row.items()
            )
            for row in values
        ],
    )
    await raw.execute("ANALYZE every_type")
    return list(await raw.fetch("SELECT * FROM every_type ORDER BY pos"))


def _same(expected: Any, actual: Any, column: str, exact_nan: bool) -> bool:
    missing = actual is None or actual is pd.NA or actual is pd.NaT
    if expected is None:
        return missing
    if isinstance(expected, float) and math.isnan(expected):
        # pandas' nullable Float64 folds NaN into <NA>; the pyarrow backend keeps NaN.
        return (isinstance(actual, float) and math.isnan(actual)) or (missing and not exact_nan)
    if column == "id":
        return str(expected) == str(actual)
    if isinstance(actual, pd.Timestamp):
        actual = actual.to_pydatetime()
    if isinstance(actual, pd.Timedelta):
        actual = actual.to_pytimedelta()
    if hasattr(actual, "tolist") and not isinstance(actual, str | bytes):
        actual = actual.tolist()
    return bool(expected == actual)


def _compare(records: list[Any], frame: pd.DataFrame, exact_nan: bool = False) -> None:
    assert list(frame.columns) == list(records[0].keys())
    assert len(frame) == len(records)
    for column in frame.columns:
        values = frame[column].tolist()
        for record, actual in zip(records, values, strict=True):
            expected = record[column]
            assert _same(expected, actual, column, exact_nan), (
                column,
                record["pos"],
                expected,
                actual,
            )


COPY_SAFE = (
    "pos, i2, i4, i8, f4, f8, num, money_like, flag, txt, vc, ch, d, t, ts, tstz, id, js, jsb, "
    "feeling"
)
EXOTIC = "pos, iv, raw, ints, words"


@pytest.mark.parametrize("backend", ["numpy_nullable", "pyarrow"])
@pytest.mark.parametrize("rows", [9, 3 * frames.COPY_THRESHOLD], ids=["row-path", "copy-path"])
async def test_every_type_round_trips_to_the_values_asyncpg_decodes(
    typed: AsyncSession, rows: int, backend: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = await _fill(typed, rows)
    copied = spy_on_copy(monkeypatch)
    for columns in (COPY_SAFE, EXOTIC):
        frame = await tk.df(
            f"SELECT {columns} FROM every_type ORDER BY pos", session=typed, dtype_backend=backend
        )
        wanted = [{k: r[k] for k in columns.split(", ")} for r in records]
        _compare(wanted, frame, exact_nan=backend == "pyarrow")
    # COPY carries the safe columns of a large result; exotic types always go row by row.
    assert copied == ([True] if rows > frames.COPY_THRESHOLD else [])


async def test_both_paths_give_the_same_dtypes(typed: AsyncSession) -> None:
    await _fill(typed, 3 * frames.COPY_THRESHOLD)
    few = await tk.df("SELECT * FROM every_type WHERE pos < 9 ORDER BY pos", session=typed)
    many = await tk.df("SELECT * FROM every_type ORDER BY pos", session=typed)
    assert few.dtypes.to_dict() == many.dtypes.to_dict()
    pd.testing.assert_frame_equal(few, many.head(9))


async def test_the_copy_path_is_taken_only_for_large_copy_safe_results(
    typed: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _fill(typed, 3 * frames.COPY_THRESHOLD)
    copied = spy_on_copy(monkeypatch)
    await tk.df("SELECT pos, i8, num, txt, tstz, id, jsb FROM every_type", session=typed)
    await tk.df("SELECT pos, iv FROM every_type", session=typed)
    await tk.df("SELECT pos FROM every_type WHERE pos < 5", session=typed)
    assert copied == [True]


async def test_dtypes_are_exact_and_nullable(typed: AsyncSession) -> None:
    await _fill(typed, 9)
    frame = await tk.df(
        "SELECT i2, i4, i8, f8, flag, txt, num, d, tstz FROM every_type", session=typed
    )
    assert [str(t) for t in frame.dtypes] == [
        "Int16", "Int32", "Int64", "Float64", "boolean", "string",
        "decimal128(38, 3)[pyarrow]", "date32[day][pyarrow]", "datetime64[us, UTC]",
    ]  # fmt: skip


async def test_the_pyarrow_backend_keeps_arrow_types(typed: AsyncSession) -> None:
    await _fill(typed, 9)
    frame = await tk.df("SELECT i8, txt FROM every_type", session=typed, dtype_backend="pyarrow")
    assert [str(t) for t in frame.dtypes] == ["int64[pyarrow]", "string[pyarrow]"]


async def test_duplicate_column_names_are_kept(session: AsyncSession) -> None:
    frame = await tk.df("SELECT 1 AS a, 2 AS a", session=session)
    assert list(frame.columns) == ["a", "a"]
    assert frame.iloc[0].tolist() == [1, 2]
