"""tk.bulk_delete: by ids or by a WHERE clause, atomic."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

import toolkit as tk
from tests.bulk.conftest import MANY, _count, _users
from toolkit import queries
from toolkit.errors import IntegrityViolation
from toolkit.models import User


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
