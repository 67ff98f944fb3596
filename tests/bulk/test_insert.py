"""tk.bulk_insert: COPY-speed inserts of rows, tuples and DataFrames, atomic."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

import toolkit as tk
from tests.bulk.conftest import MANY, _count, _users
from toolkit import queries
from toolkit.errors import IntegrityViolation
from toolkit.models import User


async def test_bulk_insert_of_many_rows_applies_server_defaults(session: AsyncSession) -> None:
    assert await tk.bulk_insert(User, _users(MANY), session=session) == MANY
    assert await _count(session) == MANY
    assert await _count(session, User.is_active, User.created_at.is_not(None)) == MANY


async def test_bulk_insert_can_return_the_new_keys_in_row_order(session: AsyncSession) -> None:
    ids = await tk.bulk_insert(User, _users(3), returning=True, session=session)
    assert isinstance(ids, list)
    names = [await session.scalar(select(User.name).where(User.id == i)) for i in ids]
    assert names == ["User 0", "User 1", "User 2"]
    later = await queries.create_user(session, "later@example.com", "Later")
    assert later.id > max(ids), "the sequence moved past the reserved keys"


async def test_bulk_insert_takes_tuples_with_column_names(session: AsyncSession) -> None:
    rows = [("t1@example.com", "T1"), ("t2@example.com", "T2")]
    assert await tk.bulk_insert(User, rows, columns=["email", "name"], session=session) == 2
    assert await _count(session) == 2


async def test_bulk_insert_takes_a_dataframe(session: AsyncSession) -> None:
    frame = pd.DataFrame(_users(1_000))
    frame["is_active"] = [i % 2 == 0 for i in range(1_000)]
    assert await tk.bulk_insert(User, frame, session=session) == 1_000
    assert await _count(session, User.is_active) == 500


async def test_a_failing_row_in_a_bulk_insert_leaves_nothing_inserted(
    session: AsyncSession,
) -> None:
    rows = _users(10_000)
    rows[9_000]["email"] = rows[10]["email"]  # a unique violation at row 9,000
    with pytest.raises(IntegrityViolation):
        await tk.bulk_insert(User, rows, session=session)
    assert await _count(session) == 0
    await tk.bulk_insert(User, _users(2), session=session)  # the session is still usable
    assert await _count(session) == 2


async def test_bulk_insert_in_a_session_is_undone_by_its_rollback(db: tk.Database) -> None:
    async with db.async_session() as fresh:
        await tk.bulk_insert(User, _users(5, start=900_000), session=fresh)
        await fresh.rollback()
    assert (await tk.df("SELECT count(*) AS n FROM users WHERE email LIKE 'u9000%'", database=db))[
        "n"
    ].tolist() == [0]


async def test_a_dataframe_keeps_every_type_exactly(session: AsyncSession) -> None:
    """Durations, aware timestamps, bytes, UUIDs and JSON arrive as the same values."""
    import uuid
    from datetime import timedelta

    from sqlalchemy import (
        JSON,
        Column,
        DateTime,
        Integer,
        Interval,
        LargeBinary,
        MetaData,
        String,
        Table,
        Uuid,
    )

    await session.execute(
        text(
            "CREATE TABLE typed_target (id int PRIMARY KEY, span interval, "
            "at timestamptz, blob bytea, ident uuid, doc jsonb, label text DEFAULT 'server')"
        )
    )
    typed = Table(
        "typed_target",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("span", Interval),
        Column("at", DateTime(timezone=True)),
        Column("blob", LargeBinary),
        Column("ident", Uuid),
        Column("doc", JSON),
        Column("label", String, default="python"),
    )
    spans = [timedelta(hours=1), timedelta(seconds=90), None]
    times = pd.to_datetime(["2024-03-01T12:00:00+02:00", "2024-03-02T00:00:00Z", None], utc=True)
    fast = pd.DataFrame({"id": [1, 2, 3], "span": spans, "at": times})
    assert await tk.bulk_insert(typed, fast, session=session) == 3
    rows = (
        await session.execute(text("SELECT span, at, label FROM typed_target ORDER BY id"))
    ).all()
    assert [r.span for r in rows] == spans
    assert [r.at for r in rows][:2] == list(times[:2])
    assert {r.label for r in rows} == {"python"}, "the Python-side default is applied"

    ident = uuid.uuid4()
    slow = pd.DataFrame(
        {"id": [4], "blob": [b"\x00\xff\\"], "ident": [ident], "doc": [{"k": [1, None]}]}
    )
    assert await tk.bulk_insert(typed, slow, session=session) == 1
    row = (
        await session.execute(text("SELECT blob, ident, doc FROM typed_target WHERE id = 4"))
    ).one()
    assert (bytes(row.blob), row.ident, row.doc) == (b"\x00\xff\\", ident, {"k": [1, None]})
