"""The write direction: DataFrames as pandas users hold them, written by ``bulk_insert``,
``to_table`` and ``upsert``, then read back by psycopg (the reference) and by ``tk.df``.

The specification: every value comes back as it was written (after ``normalise``), or
the write is refused with an error naming the column, the row and the column's type,
and then nothing is written - with or without a caller's session. The README's "Bulk
operations" section states the same rules for users.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import psycopg
import pytest
from sqlalchemy import JSON, Column, Integer, MetaData, String, Table, text
from sqlalchemy.ext.asyncio import AsyncSession

import toolkit as tk
from tests.conformance.conftest import normalise
from toolkit.database import Database
from toolkit.errors import IntegrityViolation, InvalidCharacter

HELPERS = ("bulk_insert", "to_table", "upsert")

UTC = dt.UTC
_UNITS = ("s", "ms", "us", "ns")


def _table(name: str) -> Table:
    """The target as an analyst describes a table nobody here designed: names only. The
    toolkit reads the column types from the catalog, not from this description."""
    return Table(name, MetaData(), Column("id", Integer, primary_key=True), Column("v"))


async def _write(helper: str, name: str, frame: pd.DataFrame, **where: Any) -> Any:
    if helper == "bulk_insert":
        return await tk.bulk_insert(_table(name), frame, **where)
    if helper == "to_table":
        return await tk.to_table(frame, name, if_exists="append", **where)
    return await tk.upsert(_table(name), frame, **where)


def _name(prefix: str, case: str, helper: str) -> str:
    return f"{prefix}_{re.sub(r'[^a-z0-9]+', '_', case.lower())}_{helper}"


def _ids(helper: str) -> list[int]:
    """Row 0 already exists (v NULL): upsert updates it and inserts the others."""
    return [0, 1, 2] if helper == "upsert" else [1, 2, 3]


# Values that come back as they were written -----------------------------------------


@dataclass(frozen=True)
class Written:
    id: str
    type: str
    """The target column's SQL type."""
    values: Any
    """Three values as a pandas array or Series (one dtype)."""
    expected: list[Any]
    """What psycopg reads back."""


def _nan_float64() -> Any:
    with pd.option_context("future.distinguish_nan_and_na", True):
        return pd.array([1.5, np.nan, None], dtype="Float64")


def _naive(unit: str) -> pd.Series:
    """Three timestamps the unit holds exactly (seconds have no fraction)."""
    fraction = "" if unit == "s" else ".789"
    return pd.Series(
        pd.to_datetime([f"2024-02-29 12:34:56{fraction}", None, "1970-01-01"], format="ISO8601")
    ).dt.as_unit(unit)


def _stamps(unit: str, tz: dt.tzinfo | None = None, hours: int = 0) -> list[Any]:
    micros = 0 if unit == "s" else 789_000
    first = dt.datetime(2024, 2, 29, 12, 34, 56, micros) - dt.timedelta(hours=hours)
    last = dt.datetime(1970, 1, 1) - dt.timedelta(hours=hours)
    return [first.replace(tzinfo=tz), None, last.replace(tzinfo=tz)]


WRITTEN: tuple[Written, ...] = (
    Written("int64-int8", "int8", pd.Series([1, -(2**63), 2**63 - 1]), [1, -(2**63), 2**63 - 1]),
    Written("int64-int2", "int2", pd.Series([1, -32768, 32767]), [1, -32768, 32767]),
    Written("int64-int4", "int4", pd.Series([7, 0, -7]), [7, 0, -7]),
    Written("Int64-NA", "int8", pd.array([1, None, 3], dtype="Int64"), [1, None, 3]),
    Written("float64-int4", "int4", pd.Series([1.0, np.nan, -3.0]), [1, None, -3]),
    Written(
        "float64-float8",
        "float8",
        pd.Series([-0.0, np.inf, 5e-324]),
        [-0.0, float("inf"), 5e-324],
    ),
    Written(
        "float64-NaN-is-missing", "float8", pd.Series([0.1, np.nan, 1e308]), [0.1, None, 1e308]
    ),
    Written("Float64-NaN-and-NA", "float8", _nan_float64(), [1.5, float("nan"), None]),
    Written(
        "Float64-NaN-numeric", "numeric", _nan_float64(), [Decimal("1.5"), Decimal("NaN"), None]
    ),
    Written(
        "float64-numeric",
        "numeric",
        pd.Series([0.1, -2.5, 1e20]),
        [Decimal("0.1"), Decimal("-2.5"), Decimal("1e20")],
    ),
    Written(
        "Decimal-numeric",
        "numeric",
        pd.Series([Decimal("2.10"), None, Decimal("-12345678901234567890.123456789")]),
        [Decimal("2.10"), None, Decimal("-12345678901234567890.123456789")],
    ),
    Written(
        "Decimal-NaN-Infinity",
        "numeric",
        pd.Series([Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity")]),
        [Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity")],
    ),
    Written(
        "Decimal-numeric(10,2)-rounds",
        "numeric(10,2)",
        pd.Series([Decimal("1.10"), None, Decimal("12.345")]),
        [Decimal("1.10"), None, Decimal("12.35")],
    ),
    Written(
        "string[pyarrow]",
        "text",
        pd.array(["a,b", None, ""], dtype="string[pyarrow]"),
        ["a,b", None, ""],
    ),
    Written(
        "string[python]",
        "text",
        pd.array(['tab\there\nline\r"q"\\', None, "\\N"], dtype="string[python]"),
        ['tab\there\nline\r"q"\\', None, "\\N"],
    ),
    Written(
        "str-varchar(5)", "varchar(5)", pd.Series(["a\nb", "abcde", None]), ["a\nb", "abcde", None]
    ),
    Written(
        "object-str",
        "text",
        pd.Series(["ünï 🐘", None, "NULL"], dtype=object),
        ["ünï 🐘", None, "NULL"],
    ),
    Written(
        "category-text",
        "text",
        pd.Series(["x", None, "y"], dtype="category"),
        ["x", None, "y"],
    ),
    Written(
        "boolean-NA", "bool", pd.array([True, None, False], dtype="boolean"), [True, None, False]
    ),
    Written("bool", "bool", pd.Series([True, False, True]), [True, False, True]),
    *(Written(f"datetime64[{u}]", "timestamp", _naive(u), _stamps(u)) for u in _UNITS),
    *(
        Written(f"datetime64[{u}]-timestamptz-is-UTC", "timestamptz", _naive(u), _stamps(u, UTC))
        for u in _UNITS
    ),
    *(
        Written(
            f"datetime64[{u}, Europe/Paris]",
            "timestamptz",
            _naive(u).dt.tz_localize("Europe/Paris"),
            _stamps(u, UTC, hours=1),
        )
        for u in _UNITS
    ),
    Written(
        "aware-into-text-keeps-its-offset",
        "text",
        _naive("us").dt.tz_localize("Europe/Paris"),
        ["2024-02-29 11:34:56.789000Z", None, "1969-12-31 23:00:00.000000Z"],
    ),
    Written(
        "numpy-datetime64-objects",
        "timestamp",
        pd.Series(
            [np.datetime64("2024-02-29T12:34:56.789"), np.datetime64("NaT"), None], dtype=object
        ),
        [dt.datetime(2024, 2, 29, 12, 34, 56, 789000), None, None],
    ),
    Written(
        "datetime64-midnight-date",
        "date",
        pd.Series(pd.to_datetime(["2024-02-29", None, "1970-01-01"])),
        [dt.date(2024, 2, 29), None, dt.date(1970, 1, 1)],
    ),
    Written(
        "date-objects",
        "date",
        pd.Series([dt.date(1, 1, 1), None, dt.date(9999, 12, 31)]),
        [dt.date(1, 1, 1), None, dt.date(9999, 12, 31)],
    ),
    Written(
        "datetime-objects-extremes",
        "timestamp",
        pd.Series([dt.datetime(1, 1, 1), None, dt.datetime(9999, 12, 31, 23, 59, 59, 999999)]),
        [dt.datetime(1, 1, 1), None, dt.datetime(9999, 12, 31, 23, 59, 59, 999999)],
    ),
    Written(
        "timedelta64",
        "interval",
        pd.Series(pd.to_timedelta(["1 day 02:00:00.000001", None, "-3s"])),
        [dt.timedelta(days=1, hours=2, microseconds=1), None, dt.timedelta(seconds=-3)],
    ),
    Written(
        "dict-json",
        "json",
        pd.Series([{"a": [1, None]}, None, {"é": '\u00e9 \\ "'}]),
        [{"a": [1, None]}, None, {"é": '\u00e9 \\ "'}],
    ),
    Written(
        "dict-list-jsonb",
        "jsonb",
        pd.Series([{"a": {"b": [1.5, True]}}, None, [1, "2", None]]),
        [{"a": {"b": [1.5, True]}}, None, [1, "2", None]],
    ),
    Written(
        "str-is-a-JSON-string",
        "jsonb",
        pd.Series(["42", None, "text"]),
        ["42", None, "text"],
    ),
    Written("int-jsonb", "jsonb", pd.Series([42, 2**62, -1]), [42, 2**62, -1]),
    Written(
        "list-int4[]",
        "int4[]",
        pd.Series([[1, None, 3], None, []]),
        [[1, None, 3], None, []],
    ),
    Written(
        "ndarray-int4[]",
        "int4[]",
        pd.Series([np.array([1, 2]), np.array([[1, 2], [3, 4]]), np.array([], dtype=int)]),
        [[1, 2], [[1, 2], [3, 4]], []],
    ),
    Written(
        "list-text[]",
        "text[]",
        pd.Series([["a", None, "NULL", ""], None, ["b,c", '"q"', "\\", "{x}"]]),
        [["a", None, "NULL", ""], None, ["b,c", '"q"', "\\", "{x}"]],
    ),
    Written(
        "bytes-bytea",
        "bytea",
        pd.Series([bytes(range(256)), None, b""]),
        [bytes(range(256)), None, b""],
    ),
    Written(
        "UUID-uuid",
        "uuid",
        pd.Series([uuid.UUID(int=1), None, uuid.UUID(int=2**128 - 1)]),
        [uuid.UUID(int=1), None, uuid.UUID(int=2**128 - 1)],
    ),
    Written(
        "str-uuid",
        "uuid",
        pd.Series([str(uuid.UUID(int=5)), None, None]),
        [uuid.UUID(int=5), None, None],
    ),
    Written("int-domain", "positive", pd.Series([1, 2, 2147483647]), [1, 2, 2147483647]),
    Written(
        "Decimal-domain-numeric(10,2)",
        "amount",
        pd.Series([Decimal("1.5"), None, Decimal("-0.01")]),
        [Decimal("1.50"), None, Decimal("-0.01")],
    ),
)


async def _ddl(reference: psycopg.AsyncConnection[Any], name: str, kind: str) -> None:
    for sql in _definition(name, kind):
        await reference.execute(sql)  # type: ignore[arg-type]


async def _rows(reference: psycopg.AsyncConnection[Any], name: str) -> list[tuple[Any, ...]]:
    cursor = await reference.execute(f'SELECT id, v FROM "{name}" ORDER BY id')  # type: ignore[arg-type]
    return list(await cursor.fetchall())


@pytest.mark.parametrize("helper", HELPERS)
@pytest.mark.parametrize("case", WRITTEN, ids=[c.id for c in WRITTEN])
async def test_a_written_value_reads_back_the_same(
    case: Written,
    helper: str,
    conformance_db: Database,
    reference: psycopg.AsyncConnection[Any],
) -> None:
    name = _name("w", case.id, helper)
    await _ddl(reference, name, case.type)
    frame = pd.DataFrame({"id": _ids(helper), "v": case.values})
    assert await _write(helper, name, frame, database=conformance_db) == 3
    rows = await _rows(reference, name)
    written = [v for i, v in rows if i in _ids(helper)]
    assert normalise(written) == normalise(case.expected)
    # tk.df reads what psycopg reads (pyarrow keeps NaN apart from NULL).
    back = await tk.df(
        f'SELECT v FROM "{name}" ORDER BY id', database=conformance_db, dtype_backend="pyarrow"
    )
    assert normalise(back["v"].tolist()) == normalise([v for _, v in rows])


@pytest.mark.parametrize("helper", HELPERS)
async def test_the_sessions_text_settings_do_not_change_what_is_written(
    helper: str, conformance_db: Database, reference: psycopg.AsyncConnection[Any]
) -> None:
    """The text COPY sends is read back under pinned settings: under the session's
    ``IntervalStyle = sql_standard`` '-1 days +23:59:57' read as -(1 day 23:59:57)."""
    name = _name("w", "session_settings", helper)
    await _ddl(reference, name, "interval")
    values = [pd.Timedelta(seconds=-3), pd.Timedelta(days=-2, hours=5), None]
    frame = pd.DataFrame({"id": _ids(helper), "v": pd.Series(values, dtype="timedelta64[us]")})
    async with conformance_db.session() as session:
        for setting, value in {"IntervalStyle": "sql_standard", "DateStyle": "SQL, DMY"}.items():
            await session.execute(text(f"SET {setting} = '{value}'"))
        await _write(helper, name, frame, session=session)

    written = [v for i, v in await _rows(reference, name) if i in _ids(helper)]
    assert written == [dt.timedelta(seconds=-3), dt.timedelta(days=-2, hours=5), None]


async def test_a_json_str_is_a_json_string_in_every_helper_and_every_row_form(
    conformance_db: Database, reference: psycopg.AsyncConnection[Any]
) -> None:
    """A str into json/jsonb is a JSON string - as ``tk.df`` reads it back - whether it
    comes in a DataFrame or in mappings (the COPY, binary COPY and array paths)."""
    await _ddl(reference, "json_strs", "jsonb")
    table = Table(
        "json_strs", MetaData(), Column("id", Integer, primary_key=True), Column("v", JSON)
    )
    await tk.bulk_insert(table, [{"id": 1, "v": "42"}], database=conformance_db)
    await tk.upsert(table, [{"id": 2, "v": '{"a": 1}'}], database=conformance_db)
    await tk.to_table(
        pd.DataFrame({"id": [3], "v": ["null"]}),
        "json_strs",
        if_exists="append",
        database=conformance_db,
    )
    assert [v for _, v in await _rows(reference, "json_strs")] == [None, "42", '{"a": 1}', "null"]
    back = await tk.df("SELECT v FROM json_strs ORDER BY id", database=conformance_db)
    assert back["v"].tolist()[1:] == ["42", '{"a": 1}', "null"]


async def test_upserted_mappings_too_long_for_varchar_are_refused_not_truncated(
    conformance_db: Database, reference: psycopg.AsyncConnection[Any]
) -> None:
    """The array path cast to ``varchar(5)[]``, and an explicit cast truncates silently."""
    await _ddl(reference, "short_text", "varchar(5)")
    table = Table(
        "short_text", MetaData(), Column("id", Integer, primary_key=True), Column("v", String(5))
    )
    with pytest.raises(tk.DatabaseError, match="too long"):
        await tk.upsert(table, [{"id": 1, "v": "abcdef"}], database=conformance_db)
    assert await _rows(reference, "short_text") == [(0, None)]


# Values refused: column, row and type named; nothing written ------------------------


@dataclass(frozen=True)
class Refused:
    id: str
    type: str
    values: Any
    row: int
    """The frame position of the first value the column cannot hold."""
    error: type[Exception] = tk.ToolkitError


REFUSED: tuple[Refused, ...] = (
    Refused("int64-overflows-int4", "int4", pd.Series([1, 2, 2**40]), 2, tk.DatabaseError),
    Refused(
        "Int64-overflows-int2",
        "int2",
        pd.array([1, 40_000, None], dtype="Int64"),
        1,
        tk.DatabaseError,
    ),
    Refused("fraction-into-int4", "int4", pd.Series([1.5, np.nan, 3.0]), 0, tk.DatabaseError),
    Refused(
        "too-long-for-varchar(5)",
        "varchar(5)",
        pd.Series(["a\nb", "abcdef", None]),
        1,
        tk.DatabaseError,
    ),
    Refused(
        "overflows-numeric(10,2)",
        "numeric(10,2)",
        pd.Series([Decimal("1"), None, Decimal("123456789012")]),
        2,
        tk.DatabaseError,
    ),
    Refused(
        "infinity-into-numeric(10,2)",
        "numeric(10,2)",
        pd.Series([1.0, np.inf, 2.0]),
        1,
        tk.DatabaseError,
    ),
    Refused("NUL-in-text", "text", pd.Series(["ok", "nul\x00here", None]), 1, InvalidCharacter),
    Refused("domain-check", "positive", pd.Series([1, 2, -1]), 2, IntegrityViolation),
    Refused(
        "nanoseconds-into-timestamp",
        "timestamp",
        pd.Series(
            pd.to_datetime(["2024-01-01", "2024-01-01 00:00:00.000000001"], format="ISO8601")
        ).reindex([0, 1, 2]),
        1,
    ),
    Refused(
        "nanoseconds-into-timestamptz",
        "timestamptz",
        pd.Series(
            pd.to_datetime(
                ["2024-01-01 00:00:00.000000001", None, None], format="ISO8601", utc=True
            )
        ),
        0,
    ),
    Refused(
        "nanoseconds-Timestamp-object",
        "timestamp",
        pd.Series([None, None, pd.Timestamp("2024-01-01 00:00:00.000000001")], dtype=object),
        2,
    ),
    Refused(
        "nanoseconds-numpy-datetime64-object",
        "timestamp",
        pd.Series([None, np.datetime64("2024-01-01T00:00:00.000000001"), None], dtype=object),
        1,
    ),
    Refused(
        "aware-into-timestamp",
        "timestamp",
        pd.Series(pd.to_datetime([None, "2024-01-01 12:00"]))
        .dt.tz_localize("UTC")
        .reindex([0, 1, 2]),
        1,
    ),
    Refused(
        "aware-datetime-object-into-timestamp",
        "timestamp",
        pd.Series([dt.datetime(2024, 1, 1, tzinfo=UTC), None, None], dtype=object),
        0,
    ),
    Refused(
        "time-of-day-into-date",
        "date",
        pd.Series(
            pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03 00:00:01"], format="ISO8601")
        ),
        2,
    ),
    Refused(
        "nanoseconds-into-interval",
        "interval",
        pd.Series(pd.to_timedelta(["1s", "1ns", None])),
        1,
    ),
    Refused("set-into-jsonb", "jsonb", pd.Series([{"a": 1}, None, {1, 2}]), 2),
    Refused("NaN-into-json", "json", pd.Series([[1.5], [float("nan")], None]), 1),
    Refused("bytes-into-text", "text", pd.Series(["a", b"\x00", None], dtype=object), 1),
    Refused("dict-into-text", "text", pd.Series([{"a": 1}, None, None]), 0),
    Refused("int-into-int4[]", "int4[]", pd.Series([[1], 5, None], dtype=object), 1),
    Refused(
        "bad-element-into-int4[]", "int4[]", pd.Series([[1], None, ["x"]]), 2, tk.DatabaseError
    ),
)


@pytest.fixture
async def conformance_session(conformance_db: Database) -> AsyncIterator[AsyncSession]:
    """A caller's session on the conformance database, rolled back after the test (the
    ``session`` fixture's recipe: the helpers' savepoints inside an outer transaction)."""
    async with conformance_db.engine.connect() as conn:
        outer = await conn.begin()
        session = AsyncSession(bind=conn, join_transaction_mode="create_savepoint")
        try:
            yield session
        finally:
            await session.close()
            await outer.rollback()


@pytest.mark.parametrize("in_session", [False, True], ids=["own-transaction", "in-session"])
@pytest.mark.parametrize("helper", HELPERS)
@pytest.mark.parametrize("case", REFUSED, ids=[c.id for c in REFUSED])
async def test_a_value_its_column_cannot_hold_is_refused_and_nothing_is_written(
    case: Refused,
    helper: str,
    in_session: bool,
    conformance_db: Database,
    conformance_session: AsyncSession,
    reference: psycopg.AsyncConnection[Any],
) -> None:
    name = _name("r", case.id, helper)
    if in_session:  # the table and its row exist only in the caller's transaction
        for sql in _definition(name, case.type):
            await conformance_session.execute(text(sql))
        where: dict[str, Any] = {"session": conformance_session}
    else:
        for sql in _definition(name, case.type):
            await reference.execute(sql)  # type: ignore[arg-type]
        where = {"database": conformance_db}
    declared = await tk.df(  # PostgreSQL's spelling of the type, which the error names
        "SELECT format_type(atttypid, atttypmod) AS t FROM pg_attribute "
        "WHERE attrelid = CAST(:name AS regclass) AND attname = 'v'",
        {"name": name},
        **where,
    )
    located = rf"column 'v', row {case.row} into {re.escape(declared['t'][0])}: "
    frame = pd.DataFrame({"id": _ids(helper), "v": case.values})
    with pytest.raises(case.error, match=located):
        await _write(helper, name, frame, **where)
    back = await tk.df(f'SELECT id, v::text AS v FROM "{name}"', **where)
    assert back["id"].tolist() == [0], "nothing was written"
    assert back["v"].isna().tolist() == [True], "nothing was changed"


def _definition(name: str, kind: str) -> list[str]:
    return [
        f'DROP TABLE IF EXISTS "{name}"',
        f'CREATE TABLE "{name}" (id int PRIMARY KEY, v {kind})',
        f'INSERT INTO "{name}" VALUES (0, NULL)',
    ]


async def test_a_refused_to_table_creates_nothing_and_keeps_a_replaced_table(
    conformance_db: Database, reference: psycopg.AsyncConnection[Any]
) -> None:
    bad = pd.DataFrame({"v": pd.Series(pd.to_timedelta(["1ns"]))})
    await reference.execute("DROP TABLE IF EXISTS never_made")
    with pytest.raises(tk.ToolkitError, match="column 'v', row 0 into interval"):
        await tk.to_table(bad, "never_made", database=conformance_db)
    cursor = await reference.execute("SELECT to_regclass('never_made') IS NULL")
    assert await cursor.fetchone() == (True,)
    await _ddl(reference, "kept", "int4")
    with pytest.raises(tk.ToolkitError, match="row 0"):
        await tk.to_table(bad, "kept", if_exists="replace", database=conformance_db)
    assert await _rows(reference, "kept") == [(0, None)]


async def test_a_refusal_names_the_frame_s_index_label(
    conformance_db: Database, reference: psycopg.AsyncConnection[Any]
) -> None:
    await _ddl(reference, "labelled", "int2")
    frame = pd.DataFrame({"id": [5, 6], "v": [1, 99_999]}, index=["first", "second"])
    with pytest.raises(
        tk.DatabaseError, match=r"column 'v', row 1 \(index 'second'\) into smallint"
    ):
        await tk.bulk_insert(_table("labelled"), frame, database=conformance_db)


# Types to_table creates -----------------------------------------------------------


CREATED: dict[str, tuple[Any, str]] = {
    "int64": (pd.Series([1, 2]), "bigint"),
    "int32": (pd.Series([1, 2], dtype="int32"), "integer"),
    "Int16": (pd.array([1, None], dtype="Int16"), "smallint"),
    "Int64": (pd.array([1, None], dtype="Int64"), "bigint"),
    "uint64": (pd.Series([2**64 - 1, 0], dtype="uint64"), "numeric(20,0)"),
    "float64": (pd.Series([1.5, np.nan]), "double precision"),
    "Float32": (pd.array([1.5, None], dtype="Float32"), "real"),
    "bool": (pd.Series([True, False]), "boolean"),
    "boolean": (pd.array([True, None], dtype="boolean"), "boolean"),
    "string[pyarrow]": (pd.array(["a", None], dtype="string[pyarrow]"), "text"),
    "string[python]": (pd.array(["a", None], dtype="string[python]"), "text"),
    "object-str": (pd.Series(["a", None], dtype=object), "text"),
    "category": (pd.Series(["a", None], dtype="category"), "text"),
    "datetime64[ns]": (
        pd.Series(pd.to_datetime(["2024-01-01", None])),
        "timestamp without time zone",
    ),
    "datetime64[s]": (
        pd.Series(pd.to_datetime(["2024-01-01", None])).dt.as_unit("s"),
        "timestamp without time zone",
    ),
    "datetime64[ns, UTC]": (
        pd.Series(pd.to_datetime(["2024-01-01", None], utc=True)),
        "timestamp with time zone",
    ),
    "timedelta64": (pd.Series(pd.to_timedelta(["1s", None])), "interval"),
    "Decimal": (pd.Series([Decimal("1.10"), None]), "numeric"),
    "dict": (pd.Series([{"a": 1}, None]), "jsonb"),
    "list": (pd.Series([[1, 2], None]), "jsonb"),
    "bytes": (pd.Series([b"\x00", None]), "bytea"),
    "UUID": (pd.Series([uuid.UUID(int=3), None]), "uuid"),
    "date": (pd.Series([dt.date(2024, 1, 1), None]), "date"),
}


async def test_to_table_creates_each_dtype_s_column_type_and_reads_back_equal(
    conformance_db: Database, reference: psycopg.AsyncConnection[Any]
) -> None:
    frame = pd.DataFrame({name: values for name, (values, _) in CREATED.items()})
    await reference.execute("DROP TABLE IF EXISTS created")
    assert await tk.to_table(frame, "created", database=conformance_db) == 2
    cursor = await reference.execute(
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
        "WHERE attrelid = 'created'::regclass AND attnum > 0 ORDER BY attnum"
    )
    assert dict(await cursor.fetchall()) == {name: kind for name, (_, kind) in CREATED.items()}
    rows = await (await reference.execute("SELECT * FROM created")).fetchall()
    for position, name in enumerate(CREATED):
        given = [None if pd.isna(v) is True else v for v in frame[name].astype(object)]
        if name == "uint64":  # numeric(20,0): psycopg gives Decimal
            given = [Decimal(v) for v in given]
        assert normalise([r[position] for r in rows]) == normalise(given), name


async def test_to_table_refuses_an_object_column_of_several_kinds(conformance_db: Database) -> None:
    mixed = pd.DataFrame({"v": pd.Series([1, "a"], dtype=object)})
    with pytest.raises(tk.ToolkitError, match=r"column 'v' holds values of several kinds"):
        await tk.to_table(mixed, "mixed_kinds", database=conformance_db)


# Round trips and rows given as mappings ---------------------------------------------


ROUND_TRIP = """
SELECT i::int2 AS a, i::int4 AS b, i::int8 AS c, i::float4 / 3 AS d, i::float8 / 3 AS e,
       (i / 3.0)::numeric(10, 4) AS f, i % 2 = 0 AS g, 'x' || i AS h,
       '2024-01-01'::date + i AS k, '12:00'::time + i * interval '1.5 s' AS l,
       '2024-01-01'::timestamp + i * interval '1.5 s' AS m,
       '2024-01-01 00:00+00'::timestamptz + i * interval '1 hour' AS n,
       i * interval '1 min' AS o, md5(i::text)::uuid AS p, jsonb_build_object('i', i) AS q,
       decode(lpad(to_hex(i), 2, '0'), 'hex') AS s
FROM generate_series(1, 3) AS i
UNION ALL SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
                 NULL, NULL, NULL, NULL
"""


@pytest.mark.parametrize("backend", ["numpy_nullable", "pyarrow"])
async def test_a_frame_tk_df_read_is_written_back_by_to_table_and_reads_the_same(
    backend: Any, conformance_session: AsyncSession
) -> None:
    """``tk.df`` -> ``to_table`` -> ``tk.df`` gives the same frame, dtypes included."""
    read = await tk.df(ROUND_TRIP, session=conformance_session, dtype_backend=backend)
    assert await tk.to_table(read, "round_trip", session=conformance_session) == 4
    again = await tk.df(
        "SELECT * FROM round_trip", session=conformance_session, dtype_backend=backend
    )
    assert dict(again.dtypes) == dict(read.dtypes)
    for name in read.columns:
        assert normalise(again[name].tolist()) == normalise(read[name].tolist()), name


_OPEN_ENDED = [
    (dt.date(9999, 12, 31), dt.datetime(9999, 12, 31, 23, 59, 59, 999999)),
    (dt.date(1, 1, 1), dt.datetime(1, 1, 1)),
]


@pytest.mark.parametrize("form", ["bulk_insert-dicts", "bulk_insert-tuples", "upsert-dicts"])
async def test_open_ended_dates_in_mappings_are_not_sent_as_infinity(
    form: str, conformance_db: Database, reference: psycopg.AsyncConnection[Any]
) -> None:
    """asyncpg's binary encoders send date.max/min and datetime.max/min as +-infinity; a
    9999-12-31 "valid until" must come back as written."""
    name = _name("open", form, "")
    for sql in [
        f'DROP TABLE IF EXISTS "{name}"',
        f'CREATE TABLE "{name}" (id int PRIMARY KEY, d date, ts timestamp, tz timestamptz)',
    ]:
        await reference.execute(sql)  # type: ignore[arg-type]
    table = Table(
        name,
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("d"),
        Column("ts"),
        Column("tz"),
    )
    rows = [
        {"id": i, "d": d, "ts": ts, "tz": ts.replace(tzinfo=UTC)}
        for i, (d, ts) in enumerate(_OPEN_ENDED)
    ]
    if form == "bulk_insert-dicts":
        await tk.bulk_insert(table, rows, database=conformance_db)
    elif form == "bulk_insert-tuples":
        tuples = [tuple(r.values()) for r in rows]
        await tk.bulk_insert(name, tuples, columns=list(rows[0]), database=conformance_db)
    else:
        await tk.upsert(table, rows, database=conformance_db)
    cursor = await reference.execute(f'SELECT id, d, ts, tz FROM "{name}" ORDER BY id')  # type: ignore[arg-type]
    assert [dict(zip(rows[0], r, strict=True)) for r in await cursor.fetchall()] == rows


async def test_a_timedelta_fills_the_interval_s_days_and_time_as_asyncpg_does(
    conformance_db: Database, reference: psycopg.AsyncConnection[Any]
) -> None:
    """'1 day 02:00' and '26:00' are different intervals to PostgreSQL (a day across a DST
    change); every path writes what asyncpg's binary encoder writes for mappings."""
    spans = [dt.timedelta(days=1, hours=2, microseconds=1), dt.timedelta(seconds=-3)]
    spans.append(dt.timedelta(days=365_000))  # past int64 microseconds' ~292 years in ns
    texts = []
    for form in ["mappings", *HELPERS]:
        name = _name("spans", form, "")
        await _ddl(reference, name, "interval")
        rows = [{"id": i, "v": v} for i, v in enumerate(spans, 1)]
        frame = pd.DataFrame({"id": [1, 2, 3], "v": pd.Series(spans, dtype=object)})
        if form == "mappings":
            await tk.bulk_insert(_table(name), rows, database=conformance_db)
        else:
            frame = frame if form == "upsert" else frame.iloc[:2].astype({"v": "timedelta64[us]"})
            await _write(form, name, frame, database=conformance_db)
        cursor = await reference.execute(f'SELECT v::text FROM "{name}" WHERE id > 0 ORDER BY id')  # type: ignore[arg-type]
        texts.append([r[0] for r in await cursor.fetchall()][:2])
    assert texts == [["1 day 02:00:00.000001", "-1 days +23:59:57"]] * 4
