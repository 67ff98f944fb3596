"""The differential conformance suite's shared parts: psycopg 3 as the reference decoder.

Every way the toolkit reads (or writes and reads back) a value is compared with what
psycopg 3 - a second, independent decoder - gives for the same value, on the same
scratch database, after one normalisation (``normalise``) applied to both sides. Where
the toolkit cannot give psycopg's value, the difference is a named loss (``LOSSES``),
asserted exactly and stated in the README's type table; any other difference is a
defect.

For the write-direction tests too: ``conformance_url`` (a scratch database with the
extensions and user-defined types below), ``conformance_db`` (a ``Database`` on it),
``reference`` (a psycopg connection to it), ``available`` (its optional types),
``psycopg_url`` and ``normalise``.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import math
import os
import pickle
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
import pytest
from asyncpg import BitString, Range, Record
from asyncpg.pgproto import types as geometry
from IPython.core.error import UsageError
from psycopg.types import TypeInfo
from psycopg.types.composite import CompositeInfo, register_composite
from psycopg.types.multirange import Multirange
from psycopg.types.range import Range as PsycopgRange
from sqlalchemy.engine import URL

import toolkit as tk
from tests.conftest import MakeDatabase, spy_on_copy
from tests.runtime.test_interrupt import Kernel
from toolkit.database import Database
from toolkit.errors import ToolkitError
from toolkit.frames import _estimate, _types

SCHEMA = [
    "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy', 'très \"joyeux\"')",
    "CREATE DOMAIN positive AS int4 CHECK (VALUE > 0)",
    "CREATE DOMAIN label AS text",
    "CREATE DOMAIN stamp AS timestamptz",
    "CREATE DOMAIN amount AS numeric(10, 2)",
    "CREATE TYPE pair AS (n int4, t text, at timestamptz)",
    "CREATE TABLE magic_noop (i int)",
]
EXTENSIONS = ("citext", "hstore", "vector")
"""Created where the server has them (the embedded server ships only pgvector)."""


def psycopg_url(url: URL) -> str:
    """The libpq URL of a SQLAlchemy URL (``postgresql+asyncpg://`` without its driver)."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
async def conformance_url(make_database: MakeDatabase) -> URL:
    """A scratch database holding the user-defined types the cases read (and the
    extensions the server has), shared by the whole conformance suite."""
    url = await make_database(migrated=False)
    async with await psycopg.AsyncConnection.connect(psycopg_url(url), autocommit=True) as conn:
        for statement in SCHEMA:
            await conn.execute(statement)  # type: ignore[arg-type]  # constants, not input
        for name in EXTENSIONS:
            found = await conn.execute(
                "SELECT 1 FROM pg_available_extensions WHERE name = %s", (name,)
            )
            if await found.fetchone():
                await conn.execute(f"CREATE EXTENSION {name}")  # type: ignore[arg-type]
    return url


@pytest.fixture(scope="session")
async def available(conformance_url: URL) -> frozenset[str]:
    """What this server offers of ``Case.needs``: the extensions created in the scratch
    database, and "xml" when the server is built with libxml (the embedded one is not)."""
    async with await psycopg.AsyncConnection.connect(psycopg_url(conformance_url)) as conn:
        cursor = await conn.execute("SELECT extname FROM pg_extension")
        names = {row[0] for row in await cursor.fetchall()}
        try:
            await conn.execute("SELECT '<x/>'::xml")
            names.add("xml")
        except psycopg.errors.FeatureNotSupported:
            await conn.rollback()
        return frozenset(names)


@pytest.fixture(scope="session")
async def conformance_db(conformance_url: URL) -> AsyncIterator[Database]:
    """The toolkit's ``Database`` on the scratch database."""
    async with Database(conformance_url) as database:
        yield database


@pytest.fixture(scope="session")
async def reference(conformance_url: URL) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """The reference decoder: a psycopg connection (autocommit) to the scratch database,
    taught the scratch types: ``pair`` loads as a tuple, and arrays of the enum ``mood``
    and of the domain ``positive`` as lists of their labels and ints (psycopg leaves
    unknown types as text)."""
    conn = await psycopg.AsyncConnection.connect(psycopg_url(conformance_url), autocommit=True)
    info = await CompositeInfo.fetch(conn, "pair")
    assert info is not None
    register_composite(info, conn)
    for name, base in (("mood", "text"), ("positive", "int4")):
        type_info = await TypeInfo.fetch(conn, name)
        base_info = await TypeInfo.fetch(conn, base)
        assert type_info is not None
        assert base_info is not None
        type_info.register(conn)
        loader = conn.adapters.get_loader(base_info.oid, psycopg.pq.Format.TEXT)
        assert loader is not None
        conn.adapters.register_loader(type_info.oid, loader)
    yield conn
    await conn.close()


# The normalisation ------------------------------------------------------------------


@dataclass(frozen=True)
class Unloadable:
    """A value psycopg refuses to load into Python (a date before year 1, the time
    24:00...): the reference is then PostgreSQL's text of it."""

    text: str


@dataclass(frozen=True)
class Float:
    """A normalised float: its ``repr`` (NaN equals NaN, -0.0 differs from 0.0)."""

    text: str


@dataclass(frozen=True)
class Bool:
    value: bool


@dataclass(frozen=True)
class Numeric:
    """A normalised ``Decimal``: its exact value, or its text for NaN and +-Infinity."""

    value: Fraction | str


@dataclass(frozen=True)
class RangeValue:
    lower: Any
    upper: Any
    bounds: str
    empty: bool


def normalise(value: Any) -> Any:
    """One canonical Python value for what psycopg or the toolkit gives; two readings
    agree when their normalised values are equal (``==``). The specification:

    * Missing: ``None``, ``pd.NA`` and ``pd.NaT`` are ``None`` (SQL NULL). Float NaN is
      *not* missing: it stays a float.
    * Scalars from numpy, Arrow and pandas become Python's: numpy/Arrow scalars their
      ``item()``/``as_py()``, ``pd.Timestamp`` a ``datetime``, ``pd.Timedelta`` a
      ``timedelta``.
    * A float is ``Float(repr(x))``: NaN equals NaN, -0.0 differs from 0.0, and a float
      never equals an int; a bool is ``Bool(x)`` (``True`` is not ``1``).
    * A ``Decimal`` is ``Numeric`` of its exact value (its text for NaN and +-Infinity):
      the scale (trailing zeros) is not compared, as one Arrow decimal column has one
      scale, its largest value's (``2.1`` reads ``2.10`` next to ``2.25``).
    * An aware ``datetime`` is its instant in UTC: the toolkit gives timestamptz in UTC,
      psycopg in the session's time zone. Naive ones, dates, times (a timetz keeps its
      offset), timedeltas, UUIDs, str and bytes compare as they are
      (``memoryview``/``bytearray`` as bytes). An IP address is an interface
      (``ip_interface``: psycopg gives an address for an inet without a netmask,
      asyncpg an interface with the full one).
    * JSON, arrays and composites: lists, tuples (a composite is the tuple of its
      fields, psycopg's named tuple and asyncpg's ``Record`` alike) and dicts, normalised
      item by item.
    * Ranges (asyncpg's and psycopg's) are ``RangeValue``; a multirange is the list of
      its ranges.
    * asyncpg's objects for types psycopg loads as text become the text PostgreSQL
      writes: bit strings (``BitString``, without the spaces its ``as_string`` puts
      every four bits) and geometry (``Point``, ``Line``, ``LineSegment``, ``Box``,
      ``Path``, ``Polygon``, ``Circle``; floats as PostgreSQL prints them for the values
      tested: ``1`` not ``1.0``).

    Normalising a normalised value changes nothing.
    """
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, Float | Bool | Numeric | RangeValue | Unloadable):
        return value
    if isinstance(value, pa.Scalar):
        return normalise(value.as_py())
    if isinstance(value, np.generic):
        if isinstance(value, np.datetime64 | np.timedelta64) and np.isnat(value):
            return None
        return normalise(value.item())
    if isinstance(value, bool):
        return Bool(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return Float(repr(value))
    if isinstance(value, Decimal):
        return Numeric(Fraction(value) if value.is_finite() else str(value))
    if isinstance(value, pd.Timestamp):
        return normalise(value.to_pydatetime())
    if isinstance(value, pd.Timedelta):
        return value.to_pytimedelta()
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC) if value.tzinfo is not None else value
    if isinstance(value, str | dt.date | dt.time | dt.timedelta | uuid.UUID | _NETWORK):
        return value
    if isinstance(value, _IP):
        return ipaddress.ip_interface(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, BitString):
        return value.as_string().replace(" ", "")
    if isinstance(value, _GEOMETRY):
        return _geometry_text(value)
    if isinstance(value, Range | PsycopgRange):
        return _range(value)
    if isinstance(value, Record):
        return tuple(normalise(v) for v in value.values())
    if isinstance(value, Mapping):
        return {k: normalise(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(normalise(v) for v in value)
    if isinstance(value, list | np.ndarray | Multirange):
        return [normalise(v) for v in value]
    raise TypeError(f"normalise() has no rule for {type(value).__name__}: {value!r}")


_NETWORK = ipaddress.IPv4Network | ipaddress.IPv6Network
_IP = (
    ipaddress.IPv4Address,
    ipaddress.IPv6Address,
    ipaddress.IPv4Interface,
    ipaddress.IPv6Interface,
)
_GEOMETRY = (
    geometry.Point,
    geometry.Line,
    geometry.LineSegment,
    geometry.Box,
    geometry.Path,
    geometry.Circle,
)


def _float_text(x: float) -> str:
    text = repr(x)
    return text[:-2] if text.endswith(".0") else text


def _geometry_text(value: Any) -> str:
    def point(p: Any) -> str:
        return f"({_float_text(p[0])},{_float_text(p[1])})"

    if isinstance(value, geometry.Point):
        return point(value)
    if isinstance(value, geometry.Line):
        return "{" + ",".join(_float_text(x) for x in value) + "}"
    if isinstance(value, geometry.LineSegment):
        return f"[{point(value[0])},{point(value[1])}]"
    if isinstance(value, geometry.Box):
        return f"{point(value[0])},{point(value[1])}"
    if isinstance(value, geometry.Circle):
        return f"<{point(value[0])},{_float_text(value[1])}>"
    points = ",".join(point(p) for p in value.points)  # Path, and Polygon (a Path)
    if isinstance(value, geometry.Polygon) or value.is_closed:
        return f"({points})"
    return f"[{points}]"


def _range(value: Any) -> RangeValue:
    if value.isempty:
        return RangeValue(None, None, "", True)
    bounds = ("[" if value.lower_inc else "(") + ("]" if value.upper_inc else ")")
    return RangeValue(normalise(value.lower), normalise(value.upper), bounds, False)


# The cases: every row of the README's type table, with edge values ------------------

README = Path(__file__).parents[2] / "README.md"


def type_table() -> dict[str, str]:
    """The README's type table (in "## DataFrames"): each row's whole line, by its first
    cell with backticks removed - the names ``Case.row`` uses."""
    section = README.read_text(encoding="utf-8").split("\n## DataFrames\n", 1)[1]
    section = section.split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ")][1:]  # no header
    return {row.split(" | ")[0][2:].replace("`", ""): row for row in rows}


@dataclass(frozen=True)
class Case:
    """Values of one SQL type, read in one query (``SELECT v ... ORDER BY``)."""

    row: str
    """The README type-table row the type belongs to."""
    type: str
    """The SQL type each value is cast to."""
    values: tuple[str | None, ...]
    """The values' input text (None: NULL), quoted by ``Case.sql``."""
    copy: bool = False
    """Whether tk.df's COPY path carries the type (else the row path answers)."""
    needs: str | None = None
    """An extension (or "xml") the type needs: skipped, saying why, where it is missing."""
    binary: bool = False
    """psycopg reads the values in binary: a float4's text is the shortest decimal that
    identifies the float32, which parses to another double than the float32 itself."""

    def sql(self) -> str:
        rows = ", ".join(
            f"({i}, {'NULL' if v is None else quote(v)}::{self.type})"
            for i, v in enumerate(self.values)
        )
        return f"SELECT v FROM (VALUES {rows}) AS c(i, v) ORDER BY i"


def quote(text: str) -> str:
    """A SQL string literal (standard_conforming_strings: only quotes are doubled)."""
    return "'" + text.replace("'", "''") + "'"


INTS = "int2 / int4 / int8 / oid"
FLOATS = "float4 / float8"
NUMERIC = "numeric / numeric(p,s)"
MONEY = "money"
BOOL = "bool"
TEXTS = 'text / varchar / char(n) / name / "char" / citext / enums / hstore'
BYTEA = "bytea"
DATE = "date"
TIMES = "time / timetz"
TIMESTAMPS = "timestamp / timestamptz"
INTERVAL = "interval"
UUID = "uuid"
JSON = "json / jsonb"
AS_TEXT = "xml / macaddr / macaddr8 / tsvector / tsquery / regclass / extension types"
NETWORK = "inet / cidr"
BITS = "bit / varbit"
GEOMETRY = "point / line / lseg / box / path / polygon / circle"
RANGES = "ranges / multiranges"
LSN = "pg_lsn"
DOMAINS = "domains"
COMPOSITES = "composite types"
ARRAYS = "arrays (1-d, 2-d, NULL elements)"

_SCALE_1000 = "0." + "0" * 999 + "1"
_ALL_BYTES = "\\x" + bytes(range(256)).hex()
_JSON = (
    '"42"',
    '"text"',
    '"\\u00e9 \\ud83d\\udc18 \\" \\\\ \\n"',
    "42",
    "-0",
    "1.5",
    "-1.5e300",
    "12345678901234567890123456789012345678901234567890",
    "1e400",
    "null",
    "true",
    "false",
    "[]",
    "{}",
    '{"a": [1, {"b": null}, "x"], "": {"nested": {"deeper": [[], [1.25]]}}}',
    '["2", 2, 2.5, true, null]',
    None,
)
_TIMESTAMPS = (
    "0001-01-01 00:00:00",
    "0001-01-01 12:00:00.000001",
    "1969-12-31 23:59:59.999999",
    "1970-01-01 00:00:00",
    "2000-01-01 00:00:00",
    "2024-02-29 12:34:56.789012",
    "9999-12-31 23:59:59.999999",
    "infinity",
    "-infinity",
    None,
)

CASES: tuple[Case, ...] = (
    Case(INTS, "int2", ("-32768", "32767", "0", "-1", None), copy=True),
    Case(INTS, "int4", ("-2147483648", "2147483647", "0", None), copy=True),
    Case(INTS, "int8", ("-9223372036854775808", "9223372036854775807", "0", None), copy=True),
    Case(INTS, "oid", ("0", "4294967295", None), copy=True),
    Case(
        FLOATS,
        "float4",
        (
            "NaN",
            "Infinity",
            "-Infinity",
            "-0",
            "0",
            "1.4e-45",
            "1.1754942e-38",
            "3.4028235e38",
            "-3.4028235e38",
            "0.1",
            "1.5",
            None,
        ),
        copy=True,
        binary=True,
    ),
    Case(
        FLOATS,
        "float8",
        (
            "NaN",
            "Infinity",
            "-Infinity",
            "-0",
            "0",
            "5e-324",
            "2.225073858507201e-308",
            "1.7976931348623157e308",
            "-1.7976931348623157e308",
            "0.1",
            "1e-05",
            None,
        ),
        copy=True,
    ),
    Case(
        NUMERIC,
        "numeric",
        ("0", "-1.5", "2.10", "12345678901234567890123456789012345678", "1e-20", None),
        copy=True,
    ),
    Case(
        NUMERIC,
        "numeric",
        ("1", "1.5", "0.01", "0.0000000001", "1." + "1" * 38, "2." + "0" * 100 + "1", _SCALE_1000),
        copy=True,
    ),
    Case(NUMERIC, "numeric", ("123456789012345678901234567890123456789", "-1", None), copy=True),
    Case(NUMERIC, "numeric", ("NaN", "Infinity", "-Infinity", "1.25", None), copy=True),
    Case(NUMERIC, "numeric(10,2)", ("1.5", "-99999999.99", "0", None), copy=True),
    Case(NUMERIC, "numeric(38,0)", ("99999999999999999999999999999999999999", "-1"), copy=True),
    Case(NUMERIC, "numeric(1000,1000)", (_SCALE_1000, "0.5", None), copy=True),
    Case(MONEY, "money", ("12.5", "-92233720368547758.08", "92233720368547758.07", "0", None)),
    Case(BOOL, "bool", ("true", "false", None), copy=True),
    Case(TEXTS, "text", ("plain", "", "ünï 🐘", None), copy=True),
    Case(TEXTS, "varchar(5)", ("abc", "", "ab  ", None), copy=True),
    Case(TEXTS, "char(5)", ("ab", "", "abcde", " x", None), copy=True),
    Case(TEXTS, "name", ("pg_class", "with space", "ünï", None), copy=True),
    Case(TEXTS, '"char"', ("x", "\\", "", "é", "\x7f", None), copy=True),
    Case(TEXTS, "citext", ("AbC", "", "ünï\t\\", None), copy=True, needs="citext"),
    Case(TEXTS, "mood", ("sad", "happy", 'très "joyeux"', None), copy=True),
    Case(
        TEXTS,
        "hstore",
        ('a=>1, b=>NULL, "k\\"q"=>"v\\\\"', "", None),
        copy=True,
        needs="hstore",
    ),
    Case(BYTEA, "bytea", (_ALL_BYTES, "\\x", *(f"\\x{b:02x}" for b in range(256)), None)),
    Case(DATE, "date", ("2024-02-29", "0001-01-01", "9999-12-31", "1970-01-01", None), copy=True),
    Case(DATE, "date", ("infinity", "-infinity", "2000-01-01"), copy=True),
    Case(TIMES, "time", ("00:00:00", "23:59:59.999999", "12:34:56.5", None), copy=True),
    Case(TIMES, "timetz", ("00:00:00+00", "23:59:59.999999-15:59", "12:00:00+05:45", None)),
    Case(TIMESTAMPS, "timestamp", _TIMESTAMPS, copy=True),
    Case(
        TIMESTAMPS,
        "timestamptz",
        (
            *(v if v is None or "inf" in v else f"{v}+00" for v in _TIMESTAMPS),
            "2024-07-01 12:00:00+05:45",
            "1900-01-01 00:00:00-04:56:02",
        ),
        copy=True,
    ),
    Case(
        INTERVAL,
        "interval",
        (
            "1 year 2 mons 3 days 04:05:06.7",
            "-1 day +01:00",
            "0",
            "P1M",
            "00:00:00.000001",
            "1000000 years",
            "-1000000 years",
            "-1 mons -1 days",
            None,
        ),
    ),
    Case(
        UUID,
        "uuid",
        (
            "00000000-0000-0000-0000-000000000000",
            "ffffffff-ffff-ffff-ffff-ffffffffffff",
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            None,
        ),
        copy=True,
    ),
    Case(JSON, "json", (*_JSON, '"\\u0000"', '{"a": 1, "a": 2}'), copy=True),
    Case(JSON, "jsonb", _JSON, copy=True),
    Case(AS_TEXT, "xml", ("<a>1</a>", '<b x="ü">&lt;</b>', "text only", None), needs="xml"),
    Case(AS_TEXT, "macaddr", ("08:00:2b:01:02:03", "ff:ff:ff:ff:ff:ff", None)),
    Case(AS_TEXT, "macaddr8", ("08:00:2b:01:02:03:04:05", None)),
    Case(AS_TEXT, "tsvector", ("a fat cat", "'with space':1A,2B 'x'", "", None)),
    Case(AS_TEXT, "tsquery", ("a & !b | c", "'x y' <-> z:*", None)),
    Case(AS_TEXT, "regclass", ("pg_class", "pg_catalog.pg_type", None)),
    Case(AS_TEXT, "vector", ("[1,2,3]", "[-1.5,0,1e-07]", None), copy=True, needs="vector"),
    Case(NETWORK, "inet", ("10.0.0.1/8", "192.168.0.1", "::1", "2001:db8::1/64", None)),
    Case(NETWORK, "cidr", ("10.0.0.0/8", "2001:db8::/32", "0.0.0.0/0", None)),
    Case(BITS, "bit(3)", ("101", "000", None)),
    Case(BITS, "varbit", ("", "1", "10101010101", None)),
    Case(GEOMETRY, "point", ("(1,2)", "(-1.5,0)", None)),
    Case(GEOMETRY, "line", ("{1,2,3}", "{-1,0,2.5}", None)),
    Case(GEOMETRY, "lseg", ("[(1,2),(3,4)]", None)),
    Case(GEOMETRY, "box", ("(3,4),(1,2)", None)),
    Case(GEOMETRY, "path", ("[(1,2),(3,4)]", "((1,2),(3,4),(5,6))", None)),
    Case(GEOMETRY, "polygon", ("((1,2),(3,4),(5,6))", None)),
    Case(GEOMETRY, "circle", ("<(1,2),3>", None)),
    Case(RANGES, "int4range", ("[1,5)", "empty", "(,)", "[3,]", "(1,2]", None)),
    Case(RANGES, "int8range", ("[-9223372036854775808,9223372036854775807)", None)),
    Case(RANGES, "numrange", ("[1.5,2.5]", "(,0.1)", None)),
    Case(RANGES, "daterange", ("[2020-01-01,)", "[2020-01-01,2020-01-02)", None)),
    Case(RANGES, "tsrange", ("[2020-01-01 00:00,2020-01-01 00:00:00.000001]", None)),
    Case(RANGES, "tstzrange", ("[2020-01-01 00:00+05:45,infinity)", None)),
    Case(RANGES, "int4multirange", ("{[1,3),[5,7)}", "{}", None)),
    Case(RANGES, "datemultirange", ("{[2020-01-01,2020-02-01)}", None)),
    Case(RANGES, "nummultirange", ("{(,1.5],[2,)}", None)),
    Case(LSN, "pg_lsn", ("16/B374D848", "0/0", "FFFFFFFF/FFFFFFFF", None), copy=True),
    Case(DOMAINS, "positive", ("1", "2147483647", None), copy=True),
    Case(DOMAINS, "label", ("x", "", "tab\there", None), copy=True),
    Case(DOMAINS, "stamp", ("2024-01-01 00:00:00+00", "infinity", None), copy=True),
    Case(DOMAINS, "amount", ("1.5", "-0.01", None), copy=True),
    Case(
        COMPOSITES,
        "pair",
        (
            "(1,a,2024-01-01 00:00:00+00)",
            '(,"with ""quotes"", commas, (parens)",)',
            "(,,)",
            None,
        ),
    ),
    Case(ARRAYS, "int4[]", ("{1,NULL,3}", "{}", "{NULL}", "{{1,2},{3,4}}", None)),
    Case(ARRAYS, "int2[]", ("{1,2}", "{3,4}", "{{1,2},{3,4}}", "{{5,6},{7,8}}")),  # same shapes
    Case(ARRAYS, "int8[]", ("{-9223372036854775808,9223372036854775807}",)),
    Case(ARRAYS, "float8[]", ("{NaN,Infinity,-0,1.5,NULL}", "{{1,2},{3,4}}")),
    Case(ARRAYS, "numeric[]", ("{1.5,NaN,NULL,1e-20}",)),
    Case(
        ARRAYS,
        "text[]",
        ('{"a","",NULL,"NULL","with,comma","\\\\","\\""}', '{{"a","b"},{"c",NULL}}'),
    ),
    Case(ARRAYS, "bool[]", ("{t,f,NULL}",)),
    Case(ARRAYS, "date[]", ("{2024-02-29,NULL}",)),
    Case(ARRAYS, "timestamptz[]", ("{2024-01-01 00:00:00+05:45,NULL}",)),
    Case(ARRAYS, "uuid[]", ("{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11,NULL}",)),
    Case(ARRAYS, "jsonb[]", ('{"{\\"a\\": 1}","\\"s\\"",NULL}',)),
    Case(ARRAYS, "bytea[]", ('{"\\\\x00ff",NULL}',)),
    Case(ARRAYS, "mood[]", ("{sad,happy,NULL}",)),
    Case(ARRAYS, "pair[]", ('{"(1,a,)",NULL}',)),
    Case(ARRAYS, "positive[]", ("{1,NULL}",)),
    Case(ARRAYS, "int4range[]", ('{"[1,2)",empty}',)),
)
"""Each type's edge values (the issue's list), grouped by the README row they belong to."""

UNDECODABLE: tuple[Case, ...] = tuple(
    Case(row, type_, (value,), copy=copy)
    for row, type_, value, copy in (
        (DATE, "date", "0044-03-15 BC", True),
        (DATE, "date", "10000-01-01", True),
        (TIMES, "time", "24:00:00", True),
        (TIMES, "timetz", "24:00:00+00", False),
        (TIMESTAMPS, "timestamp", "0044-03-15 12:00:00 BC", True),
        (TIMESTAMPS, "timestamp", "10000-01-01 00:00:00", True),
        (TIMESTAMPS, "timestamptz", "0001-01-01 00:00:00+00 BC", True),
        (TIMESTAMPS, "timestamptz", "294276-12-31 23:59:59+00", True),
        (ARRAYS, "date[]", "{2024-01-01,0044-03-15 BC}", False),
        (INTERVAL, "interval", "3000000 years", False),
    )
)
"""Values Python's ``datetime`` and ``timedelta`` cannot hold (psycopg refuses them too):
every read path raises a ``ToolkitError`` that says to cast the column to text."""


# Where the toolkit cannot give psycopg's value ---------------------------------------

PATHS = (
    "row/numpy_nullable",
    "row/pyarrow",
    "copy/numpy_nullable",
    "copy/pyarrow",
    "stream-copy/numpy_nullable",
    "stream-copy/pyarrow",
    "stream-cursor/numpy_nullable",
    "stream-cursor/pyarrow",
    "page",
    "magic",
    "magic-statement",
)
"""Every way the toolkit reads a result: ``tk.df``'s row and COPY paths (forced), each
with both dtype backends; ``tk.stream_df`` over COPY and over a cursor (forced); a
``Page``'s ``to_df()`` (``tk.paginate``); and the ``%%sql`` magic in a real kernel, for a
query (read by ``tk.df``) and for a statement that returns rows (a data-modifying CTE
that writes nothing: read from the session's rows)."""
NULLABLE_PATHS = frozenset(p for p in PATHS if not p.endswith("/pyarrow"))
"""The paths that give pandas' masked dtypes (``numpy_nullable``: the magic's and a page's
frames too)."""
ALL_PATHS = frozenset(PATHS)
STREAM_COPY = frozenset(p for p in PATHS if p.startswith("stream-copy/"))


@dataclass(frozen=True)
class Loss:
    """What the toolkit gives instead of psycopg's value of ``value`` (its text) of
    ``type``, on which paths, and why; the README type table's row states ``readme``
    word for word."""

    type: str
    value: str
    gives: Any
    why: str
    readme: str
    paths: frozenset[str] = ALL_PATHS


@dataclass(frozen=True)
class Raises:
    """A read that raises (the whole query): the error type and a phrase of its message."""

    error: type[BaseException]
    says: str


_NAN_NA = "pandas' masked floats hold no NaN apart from NULL"
_INFINITY = "asyncpg reads +-infinity as the largest and smallest value Python holds"
_INF_STREAM = Raises(ToolkitError, "Cast that column to text")
_TS_MAX = dt.datetime(9999, 12, 31, 23, 59, 59, 999999)
_TS_MIN = dt.datetime(1, 1, 1)
_PAGE = frozenset({"page", "magic-statement"})
_PAGE_ROWS = "rows a session returns are the driver's values"
_NOT_PAGE = ALL_PATHS - _PAGE
LOSSES: tuple[Loss, ...] = (
    Loss("float4", "NaN", None, _NAN_NA, "NaN reads `<NA>`", NULLABLE_PATHS),
    Loss("float8", "NaN", None, _NAN_NA, "NaN reads `<NA>`", NULLABLE_PATHS),
    Loss("date", "infinity", dt.date(9999, 12, 31), _INFINITY, "infinity reads 9999-12-31"),
    Loss("date", "-infinity", dt.date(1, 1, 1), _INFINITY, "-infinity 0001-01-01"),
    Loss("timestamp", "infinity", _TS_MAX, _INFINITY, "infinity reads 9999-12-31 23:59:59.999999"),
    Loss("timestamp", "-infinity", _TS_MIN, _INFINITY, "-infinity 0001-01-01"),
    *(
        Loss(type_, text, limit.replace(tzinfo=dt.UTC), _INFINITY, readme, _NOT_PAGE)
        for type_, text, limit, readme in (
            ("timestamptz", "infinity", _TS_MAX, "infinity reads 9999-12-31 23:59:59.999999"),
            ("timestamptz", "-infinity", _TS_MIN, "-infinity 0001-01-01"),
            ("stamp", "infinity", _TS_MAX, "infinity reads 9999-12-31 23:59:59.999999"),
        )
    ),
    *(
        Loss(
            type_,
            text,
            limit,
            f"{_PAGE_ROWS}: asyncpg's infinity is naive",
            "driver rows give it naive",
            _PAGE,
        )
        for type_, text, limit in (
            ("timestamptz", "infinity", _TS_MAX),
            ("timestamptz", "-infinity", _TS_MIN),
            ("stamp", "infinity", _TS_MAX),
        )
    ),
    Loss(
        "tstzrange",
        "[2020-01-01 00:00+05:45,infinity)",
        Range(dt.datetime(2019, 12, 31, 18, 15, tzinfo=dt.UTC), _TS_MAX, upper_inc=False),
        _INFINITY + " (naive, inside a range)",
        "an infinity bound reads as the datetime limits",
    ),
    *(
        Loss(
            '"char"',
            text,
            byte,
            f'{_PAGE_ROWS}: asyncpg\'s "char" is its byte',
            'driver rows give `"char"` as its byte',
            _PAGE,
        )
        for text, byte in (
            ("x", b"x"),
            ("\\", b"\\"),
            ("", b"\x00"),
            ("é", b"\xc3"),
            ("\x7f", b"\x7f"),
        )
    ),
    *(
        Loss(
            "pg_lsn",
            text,
            position,
            f"{_PAGE_ROWS}: asyncpg's pg_lsn is a signed int8",
            "driver rows give asyncpg's signed int",
            _PAGE,
        )
        for text, position in (
            ("16/B374D848", 0x16_B374D848),
            ("0/0", 0),
            ("FFFFFFFF/FFFFFFFF", -1),
        )
    ),
)
"""Each documented loss."""

STREAMED_ROW_PATH_ONLY: dict[tuple[str, str], Raises] = {
    (loss.type, loss.value): _INF_STREAM
    for loss in LOSSES
    if loss.type == "date" and "infinity" in loss.value
}
"""Values Arrow's parse of COPY's text refuses (a date's +-infinity): ``tk.df`` reads
them on the row path instead (the same values); ``stream_df``'s COPY raises."""


def loss_of(type_: str, value: str | None, path: str) -> Loss | None:
    """The documented loss of ``value`` (its text) of ``type_`` on ``path``, if any."""
    for loss in LOSSES:
        if (loss.type, loss.value) == (type_, value) and path in loss.paths:
            return loss
    return None


def expected(case: Case, path: str, reference: list[Any]) -> list[Any] | Raises:
    """What ``path`` must give for ``case``: psycopg's values, normalised, except for
    the documented losses."""
    if path in STREAM_COPY:
        for value in case.values:
            raised = STREAMED_ROW_PATH_ONLY.get((case.type, value or ""))
            if raised is not None:
                return raised
    values = []
    for text, ref in zip(case.values, reference, strict=True):
        loss = loss_of(case.type, text, path)
        values.append(normalise(ref if loss is None else loss.gives))
    return values


async def reference_values(conn: psycopg.AsyncConnection[Any], case: Case) -> list[Any]:
    """psycopg's value of each of ``case``'s values (``Unloadable`` where it refuses one)."""
    try:
        cursor = await conn.execute(case.sql(), binary=case.binary)  # type: ignore[arg-type]
        return [row[0] for row in await cursor.fetchall()]
    except psycopg.DataError:
        pass
    values: list[Any] = []
    for value in case.values:
        single = Case(case.row, case.type, (value,))
        try:
            cursor = await conn.execute(single.sql(), binary=case.binary)  # type: ignore[arg-type]
            values.append((await cursor.fetchone() or [None])[0])
        except psycopg.DataError:
            cursor = await conn.execute(f"SELECT ({single.sql()})::text")  # type: ignore[arg-type]
            values.append(Unloadable((await cursor.fetchone() or [""])[0]))
    return values


# Reading through every path ------------------------------------------------------------


@pytest.fixture(scope="session")
def magic_kernel(conformance_url: URL) -> Iterator[Kernel]:
    """A real Jupyter kernel with ``%load_ext toolkit``, on the scratch database."""
    env = {**os.environ, "TOOLKIT_DATABASE_URL": conformance_url.render_as_string(False)}
    kernel = Kernel(env)
    outputs = kernel.run("import toolkit as tk\n%load_ext toolkit")
    assert not [o for o in outputs if o["type"] == "error"], outputs
    yield kernel
    kernel.close()


@dataclass
class Reader:
    """Reads a query's column ``v`` through one of ``PATHS``: the normalised values, or
    ``Raises`` (the error type and message) when the read raised."""

    db: Database
    kernel: Kernel | None = None
    copy_answered: list[bool] | None = None
    """Set by the ``copy/`` paths: what the COPY spy saw ([True]: COPY gave the frame,
    [False]: a value did not parse and the row path answered, []: not tried)."""

    async def read(
        self, path: str, sql: str, *, session: Any = None, params: dict[str, Any] | None = None
    ) -> list[Any] | Raised:
        """``params`` are bound (``tk.df``'s ``:name`` placeholders)."""
        try:
            column = await self.column(path, sql, session=session, params=params)
            return [normalise(v) for v in column]
        except Exception as exc:
            return Raised(type(exc), str(exc))

    async def column(
        self, path: str, sql: str, *, session: Any = None, params: dict[str, Any] | None = None
    ) -> list[Any]:
        kind, _, backend = path.partition("/")
        if kind in ("row", "copy", "page"):
            return list((await self.frame(path, sql, session=session, params=params))["v"])
        if kind.startswith("stream"):
            where = {"session": session} if session else {"database": self.db}
            values: list[Any] = []
            with pytest.MonkeyPatch.context() as patch:
                if kind == "stream-cursor":
                    patch.setattr(_types.Column, "copy_safe", property(lambda self: False))
                async for chunk in tk.stream_df(
                    sql,
                    params,
                    chunk_size=STREAM_CHUNK,
                    **where,
                    dtype_backend=backend,
                    progress=False,
                ):
                    assert 0 < len(chunk) <= STREAM_CHUNK
                    values.extend(chunk["v"])
            return values
        assert kind in ("magic", "magic-statement"), path
        assert session is None, "the magic runs on the kernel's own connection"
        assert params is None, "the magic binds notebook variables"
        if kind == "magic-statement":  # writes nothing, but the magic runs it as a statement
            sql = f"WITH _ AS (DELETE FROM magic_noop WHERE false RETURNING 1) {sql}"
        return self.magic(sql)

    async def frame(
        self, path: str, sql: str, *, session: Any = None, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        """The frame of a ``row/``, ``copy/`` or ``page`` path."""
        where: dict[str, Any] = {"session": session} if session else {"database": self.db}
        kind, _, backend = path.partition("/")
        if kind == "page":
            return (await tk.paginate(sql, size=100_000, params=params, **where)).to_df()
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(_estimate, "COPY_THRESHOLD", 0 if kind == "copy" else math.inf)
            answered = spy_on_copy(patch)
            frame = await tk.df(sql, params, **where, dtype_backend=backend)
        self.copy_answered = answered
        if kind == "row":
            assert answered == [], "the row path was forced"
        return frame

    def magic(self, sql: str) -> list[Any]:
        """The ``%%sql`` cell in the kernel; its column normalised there and pickled back
        (asyncpg's objects do not pickle)."""
        assert self.kernel is not None
        outputs = self.kernel.run(f"%%sql -o _conformance --limit 0\n{sql}")
        failed = [o for o in outputs if o["type"] == "error"]
        assert not failed, failed
        stderr = "".join(o["text"] for o in outputs if o.get("name") == "stderr")
        if stderr:
            usage = stderr.strip()
            assert usage.startswith("UsageError: "), usage
            raise UsageError(usage.removeprefix("UsageError: "))
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "values.pickle")
            dumped = self.kernel.run(
                "import pickle\nfrom tests.conformance.conftest import normalise\n"
                f"with open({path!r}, 'wb') as f:\n"
                "    pickle.dump([normalise(v) for v in _conformance['v']], f)\n"
                "del _conformance"
            )
            assert not [o for o in dumped if o["type"] == "error"], dumped
            with open(path, "rb") as f:
                values: list[Any] = pickle.load(f)
        return values


@dataclass(frozen=True)
class Raised:
    """A read that raised: the exception's type and message."""

    error: type[BaseException]
    message: str

    def matches(self, expected: Raises) -> bool:
        return issubclass(self.error, expected.error) and expected.says in self.message


STREAM_CHUNK = 3
"""Rows per ``stream_df`` chunk: several chunks per case."""
