"""count_queries(): the statements SQLAlchemy sends, counted per task."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import event, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import lazyload, selectinload

from toolkit.database import Database
from toolkit.explore import _counting, count_queries
from toolkit.models import Post, User


async def _users_with_posts(session: AsyncSession, count: int = 5) -> None:
    for i in range(count):
        user = User(email=f"nplus1-{i}@example.com", name=f"N{i}")
        user.posts = [Post(title=f"t{i}{j}", content="c") for j in range(2)]
        session.add(user)
    await session.flush()
    session.expunge_all()  # the loops below start from an empty identity map


def _ours() -> Any:
    return select(User).where(User.email.like("nplus1-%")).order_by(User.id)


async def test_a_lazy_loading_loop_is_one_plus_n_statements(session: AsyncSession) -> None:
    await _users_with_posts(session)
    with count_queries() as q:
        users = (await session.scalars(_ours().options(lazyload(User.posts)))).all()
        titles = [len(await user.awaitable_attrs.posts) for user in users]
    assert titles == [2] * 5
    assert q.count == 1 + 5
    assert all("FROM posts" in statement for statement in q.statements[1:])
    assert "6 statements" in repr(q)


async def test_selectinload_is_two_statements(session: AsyncSession) -> None:
    await _users_with_posts(session)
    with count_queries() as q:
        users = (await session.scalars(_ours().options(selectinload(User.posts)))).all()
        titles = [len(await user.awaitable_attrs.posts) for user in users]
    assert titles == [2] * 5
    assert q.count == 2


async def test_only_the_current_task_is_counted(db: Database) -> None:
    async def work(statements: int) -> int:
        with count_queries() as q:
            async with db.engine.connect() as conn:
                for _ in range(statements):
                    await conn.execute(text("SELECT 1"))
                    await asyncio.sleep(0)  # let the other task run in between
        return q.count

    async def uncounted() -> None:
        async with db.engine.connect() as conn:
            for _ in range(10):
                await conn.execute(text("SELECT 2"))
                await asyncio.sleep(0)

    assert await asyncio.gather(work(3), work(5), uncounted()) == [3, 5, None]


async def test_nested_blocks_and_the_listener_is_removed(db: Database) -> None:
    with count_queries() as outer:
        async with db.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            with count_queries() as inner:
                await conn.execute(text("SELECT 2"))
            assert event.contains(Engine, "before_cursor_execute", _counting._record)
            await conn.execute(text("SELECT 3"))
    assert inner.statements == ["SELECT 2"]
    assert outer.statements == ["SELECT 1", "SELECT 2", "SELECT 3"]
    assert not event.contains(Engine, "before_cursor_execute", _counting._record)
    async with db.engine.connect() as conn:
        await conn.execute(text("SELECT 4"))
    assert outer.count == 3
