"""What the pagination tests share: this test's users, a temp ``scores`` table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Column, Integer, MetaData, Table, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from toolkit.models import User
from toolkit.pagination import KeysetPage

USER_COLUMNS = ["id", "email", "name", "is_active", "created_at"]


async def _users(session: AsyncSession, *names: str) -> list[User]:
    users = [User(email=f"page{i:03}@example.com", name=name) for i, name in enumerate(names)]
    session.add_all(users)
    await session.flush()
    return users


def _ours() -> Any:
    """Only this test's users, whatever else the database holds."""
    return select(User).where(User.email.like("page%@example.com"))


scores = Table(
    "scores",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("score", Integer),  # nullable: NULLs sort last ascending, first descending
)


async def _scores(session: AsyncSession, rows: Sequence[tuple[int, int | None]]) -> None:
    await session.execute(
        text("CREATE TEMP TABLE scores (id integer PRIMARY KEY, score integer) ON COMMIT DROP")
    )
    if rows:
        await session.execute(insert(scores), [{"id": i, "score": s} for i, s in rows])


async def _collect(pages: Any) -> list[KeysetPage]:
    return [page async for page in pages]
