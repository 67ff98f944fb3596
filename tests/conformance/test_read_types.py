"""Every type of the README's type table, edge values included, read through every path
(``PATHS``) gives what psycopg gives, after ``normalise`` - or the documented loss.

The cases are ``CASES`` (one query per type); the losses ``LOSSES``, each stated in the
README's row for its type. Values Python cannot hold at all (``UNDECODABLE``) raise an
error that says what to do, on every path.
"""

from __future__ import annotations

import collections
from typing import Any

import pandas as pd
import psycopg
import pytest
from IPython.core.error import UsageError
from sqlalchemy import text

from tests.conformance.conftest import (
    CASES,
    LOSSES,
    PATHS,
    STREAMED_ROW_PATH_ONLY,
    UNDECODABLE,
    Case,
    Raised,
    Raises,
    Reader,
    Unloadable,
    expected,
    reference_values,
    type_table,
)
from toolkit.database import Database
from toolkit.errors import ToolkitError


def _ids(cases: tuple[Case, ...]) -> list[str]:
    seen: collections.Counter[str] = collections.Counter()
    ids = []
    for case in cases:
        seen[case.type] += 1
        ids.append(case.type if seen[case.type] == 1 else f"{case.type}#{seen[case.type]}")
    return ids


@pytest.fixture
def reader(conformance_db: Database, request: pytest.FixtureRequest, path: str) -> Reader:
    """A reader; the kernel is started only for the magic's cases."""
    kernel = request.getfixturevalue("magic_kernel") if path.startswith("magic") else None
    return Reader(conformance_db, kernel)


_REFERENCES: dict[str, list[Any]] = {}


async def _reference(conn: psycopg.AsyncConnection[Any], case: Case) -> list[Any]:
    sql = case.sql()
    if sql not in _REFERENCES:
        _REFERENCES[sql] = await reference_values(conn, case)
    return _REFERENCES[sql]


def _skip_without(case: Case, available: frozenset[str]) -> None:
    if case.needs is not None and case.needs not in available:
        pytest.skip(f"this server has no {case.needs}: {case.type} is not tested here")


def _copy_answer(case: Case) -> list[bool]:
    """What the COPY spy must see for ``case`` on a ``copy/`` path."""
    if not case.copy:
        return []  # a type COPY's text cannot carry: the row path answers from the start
    fell_back = any((case.type, v or "") in STREAMED_ROW_PATH_ONLY for v in case.values)
    return [not fell_back]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
async def test_every_value_reads_as_psycopg_gives_it(
    case: Case,
    path: str,
    reader: Reader,
    reference: psycopg.AsyncConnection[Any],
    available: frozenset[str],
) -> None:
    _skip_without(case, available)
    want = expected(case, path, await _reference(reference, case))
    got = await reader.read(path, case.sql())
    if isinstance(want, Raises):
        assert isinstance(got, Raised), got
        assert got.matches(want), got
        return
    assert not isinstance(got, Raised), got
    differences = [
        (value, g, w) for value, g, w in zip(case.values, got, want, strict=True) if g != w
    ]
    assert not differences, differences
    assert len(got) == len(want)
    if path.startswith("copy/"):
        assert reader.copy_answered == _copy_answer(case)


COPIED = tuple(c for c in CASES if c.copy)


@pytest.mark.parametrize("backend", ["numpy_nullable", "pyarrow"])
@pytest.mark.parametrize(
    "case", [c for c in CASES if c.copy], ids=_ids(tuple(c for c in CASES if c.copy))
)
async def test_the_row_and_copy_paths_give_equal_frames(
    case: Case, backend: str, conformance_db: Database, available: frozenset[str]
) -> None:
    _skip_without(case, available)
    row = await Reader(conformance_db).frame(f"row/{backend}", case.sql())
    copy = await Reader(conformance_db).frame(f"copy/{backend}", case.sql())
    pd.testing.assert_frame_equal(row, copy, check_exact=True)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("case", UNDECODABLE, ids=[f"{c.type}:{c.values[0]}" for c in UNDECODABLE])
async def test_a_value_python_cannot_hold_raises_an_error_naming_the_cast(
    case: Case, path: str, reader: Reader, reference: psycopg.AsyncConnection[Any]
) -> None:
    [refused] = await reference_values(reference, case)
    assert isinstance(refused, Unloadable), "psycopg cannot load it either"
    got = await reader.read(path, case.sql())
    assert isinstance(got, Raised), got
    assert issubclass(got.error, UsageError if path.startswith("magic") else ToolkitError), got
    assert "to text" in got.message, got


@pytest.mark.parametrize("row", list(type_table()))
def test_each_row_of_the_readme_type_table_has_cases(row: str) -> None:
    """The README's type table is the specification: each of its rows is read above."""
    cases = [case for case in CASES if case.row == row]
    assert cases, f"no conformance case for the README row {row!r}"
    assert sum(len(case.values) for case in cases) >= 2


def test_every_case_belongs_to_a_readme_row() -> None:
    assert {case.row for case in CASES} <= set(type_table())


def test_every_loss_is_stated_in_its_readme_row() -> None:
    table = type_table()
    rows = {case.type: case.row for case in CASES}
    for loss in LOSSES:
        assert any(loss.type == c.type and loss.value in c.values for c in CASES), loss
        assert loss.readme in table[rows[loss.type]], loss


ZONES = ("UTC", "America/New_York", "Asia/Kathmandu", "Pacific/Chatham", "Etc/GMT+12")
ZONED = Case(
    "timestamp / timestamptz",
    "timestamptz",
    (
        "0001-01-01 12:00:00+00",
        "1900-01-01 00:00:00+00",
        "1970-01-01 00:00:00+00",
        "2024-03-10 07:00:00+00",
        "2024-11-03 05:30:00.000001+00",
        "9999-12-31 00:00:00+00",
        "infinity",
        None,
    ),
    copy=True,
)
ZONE_PATHS = [p for p in PATHS if not p.startswith("magic")]


@pytest.mark.parametrize("path", ZONE_PATHS)
@pytest.mark.parametrize("zone", ZONES)
async def test_timestamptz_reads_the_same_instant_in_every_session_time_zone(
    zone: str, path: str, conformance_db: Database, reference: psycopg.AsyncConnection[Any]
) -> None:
    await reference.execute(f"SET TIME ZONE '{zone}'")  # type: ignore[arg-type]
    try:
        want = expected(ZONED, path, await reference_values(reference, ZONED))
    finally:
        await reference.execute("RESET TIME ZONE")
    async with conformance_db.session() as session:
        await session.execute(text(f"SET TIME ZONE '{zone}'"))
        got = await Reader(conformance_db).read(path, ZONED.sql(), session=session)
    if isinstance(want, Raises):
        assert isinstance(got, Raised), got
        assert got.matches(want)
    else:
        assert got == want


HOSTILE_SESSION = {
    "DateStyle": "SQL, DMY",
    "IntervalStyle": "sql_standard",
    "extra_float_digits": "-15",
    "bytea_output": "escape",
    "TimeZone": "Pacific/Chatham",
}
"""Session settings that change how PostgreSQL writes values as text."""
SESSION_PATHS = [p for p in PATHS if not p.startswith("magic")]


@pytest.mark.parametrize("path", SESSION_PATHS)
@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
async def test_session_settings_do_not_change_what_is_read(
    case: Case,
    path: str,
    conformance_db: Database,
    reference: psycopg.AsyncConnection[Any],
    available: frozenset[str],
) -> None:
    """COPY's text depends on the session's DateStyle, float digits, bytea output...: the
    COPY path pins them, the binary row path ignores them."""
    _skip_without(case, available)
    want = expected(case, path, await _reference(reference, case))
    async with conformance_db.session() as session:
        for name, value in HOSTILE_SESSION.items():
            await session.execute(
                text("SELECT set_config(:name, :value, false)"), {"name": name, "value": value}
            )
        got = await Reader(conformance_db).read(path, case.sql(), session=session)
        shown = await session.execute(text("SHOW DateStyle"))
        assert shown.scalar() == "SQL, DMY"  # restored after a COPY
    if isinstance(want, Raises):
        assert isinstance(got, Raised), got
        assert got.matches(want), got
    else:
        assert got == want
