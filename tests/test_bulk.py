"""toolkit.bulk: atomic bulk insert, update, delete and upsert, past the parameter limit."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

import toolkit as tk
from toolkit import queries
from toolkit.errors import IntegrityViolation, ToolkitError
from toolkit.models import Post, User

MANY = 40_000  # more rows than asyncpg's 32,767 bind parameters could carry one per value


def _users(n: int, start: int = 0) -> list[dict[str, object]]:
    return [{"email": f"u{i}@example.com", "name": f"User {i}"} for i in range(start, start + n)]


async def _count(session: AsyncSession, *where: object) -> int:
    return int(await session.scalar(select(func.count()).select_from(User).where(*where)) or 0)


# Insert ----------------------------------------------------------------------------


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


# Update ----------------------------------------------------------------------------


async def test_bulk_update_of_many_rows_by_primary_key(session: AsyncSession) -> None:
    ids = await tk.bulk_insert(User, _users(MANY), returning=True, session=session)
    assert isinstance(ids, list)
    changes = [{"id": i, "name": f"Renamed {i}", "is_active": i % 2 == 0} for i in ids]
    assert await tk.bulk_update(User, changes, session=session) == MANY
    assert await _count(session, User.name.like("Renamed %")) == MANY
    assert await _count(session, User.is_active) == sum(1 for i in ids if i % 2 == 0)


async def test_bulk_update_skips_missing_keys_and_counts_only_real_rows(
    session: AsyncSession,
) -> None:
    ids = await tk.bulk_insert(User, _users(2), returning=True, session=session)
    assert isinstance(ids, list)
    changes = [{"id": ids[0], "name": "A"}, {"id": -1, "name": "nobody"}]
    assert await tk.bulk_update(User, changes, session=session) == 1


async def test_a_failing_row_in_a_bulk_update_leaves_nothing_changed(
    session: AsyncSession,
) -> None:
    ids = await tk.bulk_insert(User, _users(10_000), returning=True, session=session)
    assert isinstance(ids, list)
    changes = [{"id": i, "email": f"new{i}@example.com"} for i in ids]
    changes[9_000]["email"] = "new" + str(ids[0]) + "@example.com"  # duplicate at row 9,000
    with pytest.raises(IntegrityViolation):
        await tk.bulk_update(User, changes, session=session)
    assert await _count(session, User.email.like("new%")) == 0


async def test_bulk_update_refuses_duplicate_keys_before_sending(session: AsyncSession) -> None:
    with pytest.raises(ToolkitError, match="more than once"):
        await tk.bulk_update(User, [{"id": 1, "name": "a"}, {"id": 1, "name": "b"}])


async def test_bulk_update_needs_the_key_and_something_to_set(session: AsyncSession) -> None:
    with pytest.raises(ToolkitError, match="primary key"):
        await tk.bulk_update(User, [{"name": "no key"}], session=session)
    with pytest.raises(ToolkitError, match="only the key"):
        await tk.bulk_update(User, [{"id": 1}], session=session)


async def test_bulk_update_takes_a_dataframe(session: AsyncSession) -> None:
    ids = await tk.bulk_insert(User, _users(3), returning=True, session=session)
    frame = pd.DataFrame({"id": ids, "name": ["x", "y", "z"]})
    assert await tk.bulk_update(User, frame, session=session) == 3
    assert await _count(session, User.name.in_(["x", "y", "z"])) == 3


# Delete ----------------------------------------------------------------------------


async def test_bulk_delete_by_ids_and_by_where(session: AsyncSession) -> None:
    ids = await tk.bulk_insert(User, _users(MANY), returning=True, session=session)
    assert isinstance(ids, list)
    assert await tk.bulk_delete(User, ids[: MANY // 2], session=session) == MANY // 2
    # Users 39990-39999 remain (3999 itself went with the first half).
    assert await tk.bulk_delete(User, User.name.like("User 3999%"), session=session) == 10
    assert await _count(session) == MANY // 2 - 10
    assert await tk.bulk_delete(User, [-1, -2], session=session) == 0


async def test_bulk_delete_refused_by_a_foreign_key_deletes_nothing(
    session: AsyncSession,
) -> None:
    ids = await tk.bulk_insert(User, _users(3), returning=True, session=session)
    assert isinstance(ids, list)
    await queries.create_post(session, ids[2], "kept", "text")
    with pytest.raises(IntegrityViolation):
        await tk.bulk_delete(User, ids, session=session)
    assert await _count(session) == 3


# Upsert ----------------------------------------------------------------------------


async def test_upsert_inserts_new_rows_and_updates_existing_ones(session: AsyncSession) -> None:
    await tk.bulk_insert(User, _users(3), session=session)
    rows = [{"email": f"u{i}@example.com", "name": f"Upserted {i}"} for i in range(1, 5)]
    assert await tk.upsert(User, rows, on=["email"], session=session) == 4
    names = (await session.execute(select(User.name).order_by(User.email))).scalars().all()
    assert names == ["User 0", "Upserted 1", "Upserted 2", "Upserted 3", "Upserted 4"]


async def test_upsert_with_nothing_to_update_keeps_existing_rows(session: AsyncSession) -> None:
    await tk.bulk_insert(User, _users(2), session=session)
    rows = [{"email": "u0@example.com", "name": "changed"}, {"email": "new@x.org", "name": "n"}]
    assert await tk.upsert(User, rows, on=[User.email], update=[], session=session) == 1
    assert await session.scalar(select(User.name).where(User.email == "u0@example.com")) == (
        "User 0"
    )


async def test_upsert_refuses_a_batch_with_a_duplicate_key(session: AsyncSession) -> None:
    rows = [{"email": "same@example.com", "name": "a"}, {"email": "same@example.com", "name": "b"}]
    with pytest.raises(ToolkitError, match=r"same@example\.com"):
        await tk.upsert(User, rows, on=["email"], session=session)
    assert await _count(session) == 0


async def test_a_failing_row_in_an_upsert_leaves_nothing_changed(session: AsyncSession) -> None:
    (owner,) = await tk.bulk_insert(User, _users(1), returning=True, session=session)  # type: ignore[misc]
    rows = [
        {"id": i, "title": f"t{i}", "content": "c", "author_id": owner} for i in range(1, 10_001)
    ]
    rows[9_000]["author_id"] = -1  # a foreign key violation at row 9,000
    with pytest.raises(IntegrityViolation):
        await tk.upsert(Post, rows, session=session)
    assert await session.scalar(select(func.count()).select_from(Post)) == 0
    assert await session.scalar(text("SELECT 1")) == 1  # the session is still usable


# Types from a DataFrame --------------------------------------------------------------


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
