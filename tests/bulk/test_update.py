"""tk.bulk_update: updates by primary key in array statements, atomic."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

import toolkit as tk
from tests.bulk.conftest import MANY, _count, _users
from toolkit.errors import IntegrityViolation, ToolkitError
from toolkit.models import User


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
