"""Case 7: bulk operations that fail part way change nothing.

A constraint violation at row 9,000 of a 10,000-row insert, update or upsert leaves 0
rows changed (the batches before it included); a batch with a duplicate key is refused
before anything is sent; and lists far beyond PostgreSQL's 32,767 bind parameters work,
because each column travels as one array parameter.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import Integer, any_, func, literal, select, text
from sqlalchemy.dialects.postgresql import ARRAY

import toolkit as tk
from toolkit.bulk import _batches
from toolkit.database import Database
from toolkit.errors import IntegrityViolation, ToolkitError
from toolkit.models import User

ROWS = 10_000
BAD_ROW = 9_000
MANY = 40_000  # more than 32,767: too many for one bind parameter per value


async def _snapshot(db: Database) -> list[tuple[Any, ...]]:
    async with db.session() as s:
        result = await s.execute(
            select(User.id, User.email, User.name, User.is_active).order_by(User.id)
        )
        return [tuple(row) for row in result]


async def _seed(db: Database, count: int) -> list[int]:
    rows = [{"email": f"user{i}@example.com", "name": f"User {i}"} for i in range(count)]
    keys = await tk.bulk_insert(User, rows, returning=True, database=db)
    return list(keys)  # type: ignore[arg-type]


def _insert_with_a_duplicate_email_at_row_9000(db: Database) -> Awaitable[object]:
    rows = [{"email": f"new{i}@example.com", "name": f"New {i}"} for i in range(ROWS)]
    rows[BAD_ROW]["email"] = "user0@example.com"  # already taken by a seeded row
    return tk.bulk_insert(User, rows, database=db)


def _update_with_a_null_name_at_row_9000(db: Database, ids: list[int]) -> Awaitable[object]:
    rows: list[dict[str, Any]] = [{"id": key, "name": "renamed"} for key in ids]
    rows[BAD_ROW]["name"] = None  # NOT NULL
    return tk.bulk_update(User, rows, database=db)


def _upsert_with_a_null_name_at_row_9000(db: Database, ids: list[int]) -> Awaitable[object]:
    rows: list[dict[str, Any]] = [
        {"id": key, "email": f"upserted{key}@example.com", "name": "upserted"} for key in ids
    ]
    rows += [
        {"id": 1_000_000 + i, "email": f"extra{i}@example.com", "name": "extra"}
        for i in range(ROWS - len(ids))
    ]
    rows[BAD_ROW]["name"] = None  # NOT NULL
    return tk.upsert(User, rows, database=db)


@pytest.mark.parametrize("operation", ["insert", "update", "upsert"])
async def test_a_violation_at_row_9000_of_10000_changes_nothing(
    fault_db: Database, operation: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_batches, "CHUNK", 1_000)  # ten batches: nine succeed before the bad one
    ids = await _seed(fault_db, ROWS // 2)
    before = await _snapshot(fault_db)
    calls: dict[str, Callable[[], Awaitable[object]]] = {
        "insert": lambda: _insert_with_a_duplicate_email_at_row_9000(fault_db),
        "update": lambda: _update_with_a_null_name_at_row_9000(fault_db, ids),
        "upsert": lambda: _upsert_with_a_null_name_at_row_9000(fault_db, ids),
    }
    if operation == "update":  # needs 10,000 existing rows
        ids += await _seed_more(fault_db, ROWS - len(ids))
        before = await _snapshot(fault_db)

    with pytest.raises(IntegrityViolation) as caught:
        await calls[operation]()

    assert "no change was made" in str(caught.value)
    assert await _snapshot(fault_db) == before
    # The database is usable at once: the same operation, corrected, goes through.
    assert await tk.df("select count(*) as n from users", database=fault_db) is not None


async def _seed_more(db: Database, count: int) -> list[int]:
    rows = [{"email": f"more{i}@example.com", "name": f"More {i}"} for i in range(count)]
    return list(await tk.bulk_insert(User, rows, returning=True, database=db))  # type: ignore[arg-type]


async def test_an_upsert_batch_with_a_duplicate_key_is_refused_before_anything_is_sent(
    fault_db: Database,
) -> None:
    ids = await _seed(fault_db, 100)
    before = await _snapshot(fault_db)
    rows = [{"id": key, "email": f"u{key}@example.com", "name": "changed"} for key in ids]
    rows.append({"id": ids[50], "email": "again@example.com", "name": "again"})

    with pytest.raises(ToolkitError, match="more than once"):
        await tk.upsert(User, rows, database=fault_db)
    # Refused before any I/O: against a server that does not exist, the same error.
    nowhere = Database("postgresql://nobody@127.0.0.1:1/nothing", connect_timeout=1)
    with pytest.raises(ToolkitError, match="more than once"):
        await tk.upsert(User, rows, database=nowhere)

    assert await _snapshot(fault_db) == before


async def test_bulk_operations_take_lists_far_beyond_32767_parameters(fault_db: Database) -> None:
    ids = await _seed(fault_db, MANY)
    assert len(ids) == MANY

    updated = await tk.bulk_update(
        User, [{"id": key, "name": "bulk", "is_active": False} for key in ids], database=fault_db
    )
    upserted = await tk.upsert(
        User,
        [{"id": key, "email": f"up{key}@example.com", "name": "up"} for key in ids],
        database=fault_db,
    )
    frame = await tk.df(
        select(func.count()).select_from(User).where(User.name == "up", User.is_active.is_(False)),
        database=fault_db,
    )
    deleted = await tk.bulk_delete(User, ids, database=fault_db)

    assert (updated, upserted, int(frame.iloc[0, 0]), deleted) == (MANY, MANY, MANY, MANY)
    async with fault_db.session() as s:
        assert (await s.execute(text("select count(*) from users"))).scalar_one() == 0


async def test_a_query_with_too_many_parameters_says_how_to_send_the_list_as_one_array(
    fault_db: Database,
) -> None:
    ids = await _seed(fault_db, 10)
    values = list(range(MANY))
    too_many = select(User.id).where(User.id.in_(values))

    with pytest.raises(ToolkitError, match="40,000 bind parameters") as caught:
        await tk.df(too_many, database=fault_db)

    assert "any_(literal(values, ARRAY(Integer)))" in str(caught.value)
    # The advice works: one array parameter, however long the list.
    as_array = select(User.id).where(User.id == any_(literal(values, ARRAY(Integer))))
    frame = await tk.df(as_array.order_by(User.id), database=fault_db)
    assert frame["id"].tolist() == [key for key in ids if key < MANY]
