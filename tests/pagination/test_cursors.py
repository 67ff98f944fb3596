"""Keyset cursors: every key type round-trips, the format is URL-safe, garbage is refused."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Integer,
    Interval,
    LargeBinary,
    MetaData,
    Numeric,
    Table,
    Text,
    Time,
    Uuid,
    insert,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import TypeEngine

from tests.pagination.conftest import _collect, _ours, _users
from toolkit.models import User
from toolkit.pagination import PaginationError, keyset, keyset_page

TYPED_VALUES: list[tuple[TypeEngine[Any], str, list[Any]]] = [
    (
        DateTime(timezone=True),
        "timestamptz",
        [datetime(2026, 1, 1, 12, 0, 0, 123456, tzinfo=UTC), datetime(2025, 6, 1, tzinfo=UTC)],
    ),
    (DateTime(), "timestamp", [datetime(2026, 1, 1, 12, 0, 0, 1), datetime(2026, 1, 1, 12)]),
    (Date(), "date", [date(2026, 1, 2), date(1999, 12, 31)]),
    (Time(), "time", [time(23, 59, 59, 999999), time(0, 0)]),
    (Interval(), "interval", [timedelta(days=2, microseconds=7), timedelta(seconds=-5)]),
    (Numeric(12, 4), "numeric(12, 4)", [Decimal("0.1000"), Decimal("-12345678.0001")]),
    (Uuid(), "uuid", [uuid.UUID(int=7), uuid.UUID(int=2**100)]),
    (Float(), "double precision", [0.1, -1e300]),
    (Text(), "text", ['é ☃ "quoted"', ""]),
    (LargeBinary(), "bytea", [b"\x00\xff", b""]),
    (Boolean(), "boolean", [True, False]),
]


@pytest.mark.parametrize(
    ("sa_type", "pg_type", "values"), TYPED_VALUES, ids=[t[1] for t in TYPED_VALUES]
)
async def test_cursors_round_trip_key_values_of_each_type(
    session: AsyncSession, sa_type: TypeEngine[Any], pg_type: str, values: list[Any]
) -> None:
    """Pages of one row, so every page boundary goes through a cursor of that type."""
    name = "typed_" + pg_type.split("(")[0].replace(" ", "_")  # one name per type: asyncpg
    await session.execute(  # caches statements per connection, and a table's types with them
        text(f"CREATE TEMP TABLE {name} (id integer PRIMARY KEY, v {pg_type}) ON COMMIT DROP")
    )
    typed = Table(name, MetaData(), Column("id", Integer, primary_key=True), Column("v", sa_type))
    rows = [{"id": i, "v": v} for i, v in enumerate([*values, *values, None])]
    await session.execute(insert(typed), rows)
    key = [typed.c.v, typed.c.id]
    expected = (await session.execute(select(typed).order_by(*key))).all()
    pages = await _collect(keyset(select(typed), key=key, size=1, session=session))
    assert [row for page in pages for row in page] == expected


async def test_a_cursor_is_url_safe_base64_json_with_tagged_types(session: AsyncSession) -> None:
    await _users(session, "Ada", "Alan")
    page = await keyset_page(_ours(), key=[User.created_at, User.id], size=1, session=session)
    cursor = page.next_cursor
    assert cursor is not None
    assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    created_at, user_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    assert created_at["$"] == "datetime"
    assert datetime.fromisoformat(created_at["v"]) == page.items[0].created_at
    assert user_id == page.items[0].id


def _b64(data: str) -> str:
    return base64.urlsafe_b64encode(data.encode()).decode()


@pytest.mark.parametrize(
    "cursor",
    [
        "not a cursor!",
        _b64("[1"),
        _b64("[1, 2]"),  # the key has one column
        _b64('{"id": 1}'),
        _b64('[{"$": "pickle", "v": "gASV"}]'),
        _b64('[{"$": "decimal", "v": "abc"}]'),
        _b64("[[1]]"),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    ],
)
async def test_a_malformed_cursor_is_refused(session: AsyncSession, cursor: str) -> None:
    with pytest.raises(PaginationError, match="malformed cursor"):
        await keyset_page(_ours(), key=User.id, after=cursor, session=session)
