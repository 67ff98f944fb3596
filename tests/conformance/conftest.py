"""The differential conformance suite's shared parts: psycopg 3 as the reference decoder.

Every way the toolkit reads (or writes and reads back) a value is compared with what
psycopg 3 - a second, independent decoder - gives for the same value, on the same
scratch database, after one normalisation (``normalise``) applied to both sides. Where
the toolkit cannot give psycopg's value, the difference is a named loss (``LOSSES``),
asserted exactly and stated in the README's type table; any other difference is a
defect.

For the write-direction tests too: ``conformance_url`` (a scratch database with the
extensions and user-defined types below), ``conformance_db`` (a ``Database`` on it),
``reference`` (a psycopg connection to it), ``psycopg_url`` and ``normalise``.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import math
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
import pytest
from asyncpg import BitString, Range, Record
from asyncpg.pgproto import types as geometry
from psycopg.types.composite import CompositeInfo, register_composite
from psycopg.types.range import Range as PsycopgRange
from sqlalchemy.engine import URL

from tests.conftest import MakeDatabase
from toolkit.database import Database

SCHEMA = [
    "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy', 'très \"joyeux\"')",
    "CREATE DOMAIN positive AS int4 CHECK (VALUE > 0)",
    "CREATE DOMAIN label AS text",
    "CREATE DOMAIN stamp AS timestamptz",
    "CREATE DOMAIN amount AS numeric(10, 2)",
    "CREATE TYPE pair AS (n int4, t text, at timestamptz)",
]
EXTENSIONS = ("citext", "hstore")
"""Created where the server has them (the embedded server ships neither)."""


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
            available = await conn.execute(
                "SELECT 1 FROM pg_available_extensions WHERE name = %s", (name,)
            )
            if await available.fetchone():
                await conn.execute(f"CREATE EXTENSION {name}")  # type: ignore[arg-type]
    return url


@pytest.fixture(scope="session")
async def extensions(conformance_url: URL) -> frozenset[str]:
    """The extensions created in the scratch database."""
    async with await psycopg.AsyncConnection.connect(psycopg_url(conformance_url)) as conn:
        cursor = await conn.execute("SELECT extname FROM pg_extension")
        return frozenset(row[0] for row in await cursor.fetchall())


@pytest.fixture(scope="session")
async def conformance_db(conformance_url: URL) -> AsyncIterator[Database]:
    """The toolkit's ``Database`` on the scratch database."""
    async with Database(conformance_url) as database:
        yield database


@pytest.fixture(scope="session")
async def reference(conformance_url: URL) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """The reference decoder: a psycopg connection (autocommit) to the scratch database,
    with the composite type ``pair`` registered so its values load as tuples."""
    conn = await psycopg.AsyncConnection.connect(psycopg_url(conformance_url), autocommit=True)
    info = await CompositeInfo.fetch(conn, "pair")
    assert info is not None
    register_composite(info, conn)
    yield conn
    await conn.close()


# The normalisation ------------------------------------------------------------------


@dataclass(frozen=True)
class Unloadable:
    """A value psycopg refuses to load into Python (a date before year 1, the time
    24:00...): the reference is then PostgreSQL's text of it."""

    text: str


def normalise(value: Any) -> Any:
    """One canonical Python value for what psycopg or the toolkit gives; two readings
    agree when their normalised values are equal (``==``). The specification:

    * Missing: ``None``, ``pd.NA`` and ``pd.NaT`` are ``None`` (SQL NULL). Float NaN is
      *not* missing: it stays a float.
    * Scalars from numpy, Arrow and pandas become Python's: numpy/Arrow scalars their
      ``item()``/``as_py()``, ``pd.Timestamp`` a ``datetime``, ``pd.Timedelta`` a
      ``timedelta``.
    * A float is ``("float", repr(x))``: NaN equals NaN, -0.0 differs from 0.0, and a
      float never equals an int. A bool is ``("bool", x)`` (``True`` is not ``1``).
    * A ``Decimal`` is its exact value (``("numeric", Fraction)``), or its text for NaN
      and +-Infinity: the scale (trailing zeros) is not compared, as one Arrow decimal
      column has one scale, its largest value's (``2.1`` reads ``2.10`` next to ``2.25``).
    * An aware ``datetime`` is its instant in UTC: the toolkit gives timestamptz in UTC,
      psycopg in the session's time zone. Naive ones, dates, times (a timetz keeps its
      offset), timedeltas, UUIDs, IP addresses, str and bytes compare as they are
      (``memoryview``/``bytearray`` as bytes).
    * JSON, arrays and composites: lists, tuples (a composite is the tuple of its
      fields, psycopg's named tuple and asyncpg's ``Record`` alike) and dicts, normalised
      item by item.
    * Ranges (asyncpg's and psycopg's) are ``("range", lower, upper, bounds, empty)``;
      a multirange is the list of its ranges.
    * asyncpg's objects for types psycopg loads as text become the text PostgreSQL
      writes: bit strings (``BitString``), geometry (``Point``, ``Line``, ``LineSegment``,
      ``Box``, ``Path``, ``Polygon``, ``Circle``; floats as PostgreSQL prints them for the
      values tested: ``1`` not ``1.0``).
    """
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, pa.Scalar):
        return normalise(value.as_py())
    if isinstance(value, np.generic):
        if isinstance(value, np.datetime64 | np.timedelta64) and np.isnat(value):
            return None
        return normalise(value.item())
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return ("float", repr(value))
    if isinstance(value, Decimal):
        return ("numeric", Fraction(value)) if value.is_finite() else ("numeric", str(value))
    if isinstance(value, pd.Timestamp):
        return normalise(value.to_pydatetime())
    if isinstance(value, pd.Timedelta):
        return value.to_pytimedelta()
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            return value.astimezone(dt.UTC)
        return value
    if isinstance(value, str | dt.date | dt.time | dt.timedelta | uuid.UUID | Unloadable):
        return value
    if isinstance(value, ipaddress.IPv4Interface | ipaddress.IPv6Interface):
        return value
    if isinstance(value, ipaddress.IPv4Network | ipaddress.IPv6Network):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, BitString):
        return value.as_string()
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
    if isinstance(value, list | np.ndarray):
        return [normalise(v) for v in value]
    raise TypeError(f"normalise() has no rule for {type(value).__name__}: {value!r}")


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


def _range(value: Any) -> tuple[Any, ...]:
    if value.isempty:
        return ("range", None, None, "", True)
    bounds = ("[" if value.lower_inc else "(") + ("]" if value.upper_inc else ")")
    return ("range", normalise(value.lower), normalise(value.upper), bounds, False)


def lsn(value: int) -> str:
    """A ``pg_lsn`` as PostgreSQL writes it (asyncpg gives the 64-bit position)."""
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"


def same(a: Any, b: Any) -> bool:
    """Whether two readings agree after ``normalise`` (NaN agrees with NaN)."""
    return bool(normalise(a) == normalise(b))


def is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)
