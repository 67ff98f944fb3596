"""tk.upsert: insert or update by key, atomic, duplicates refused."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

import toolkit as tk
from tests.bulk.conftest import _count, _users
from toolkit.errors import IntegrityViolation, ToolkitError
from toolkit.models import Post, User


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
