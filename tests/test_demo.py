"""toolkit.demo: deterministic demo data, loaded atomically with COPY."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

import toolkit as tk
from toolkit import queries
from toolkit.demo import DemoCounts
from toolkit.models import Comment, Post, Tag, User


async def _snapshot(session: AsyncSession) -> dict[str, pd.DataFrame]:
    return {
        "users": await tk.df(select(User).order_by(User.id), session=session),
        "posts": await tk.df(select(Post).order_by(Post.id), session=session),
        "comments": await tk.df(select(Comment).order_by(Comment.id), session=session),
    }


async def test_counts_are_exact_and_match_the_tables(session: AsyncSession) -> None:
    counts = await tk.seed_demo(users=30, posts_per_user=4, seed=1, progress=False, session=session)
    assert counts == DemoCounts(
        users=30, posts=120, comments=240, tags=counts.tags, post_tags=counts.post_tags
    )
    for model, expected in ((User, 30), (Post, 120), (Comment, 240), (Tag, counts.tags)):
        assert await session.scalar(select(func.count()).select_from(model)) == expected


async def test_the_same_seed_gives_the_same_rows(db: tk.Database) -> None:
    snapshots = []
    for _ in range(2):
        async with db.engine.connect() as conn:
            outer = await conn.begin()
            s = AsyncSession(bind=conn, expire_on_commit=False)
            await tk.seed_demo(users=20, posts_per_user=3, seed=7, progress=False, session=s)
            snapshots.append(await _snapshot(s))
            await s.close()
            await outer.rollback()
    for table in snapshots[0]:
        pd.testing.assert_frame_equal(snapshots[0][table], snapshots[1][table])


async def test_a_different_seed_gives_different_rows(session: AsyncSession) -> None:
    await tk.seed_demo(users=10, posts_per_user=1, seed=1, progress=False, session=session)
    first = await tk.df(select(User.name).order_by(User.id), session=session)
    await session.rollback()
    await tk.seed_demo(users=10, posts_per_user=1, seed=2, progress=False, session=session)
    second = await tk.df(select(User.name).order_by(User.id).limit(10), session=session)
    assert first["name"].tolist() != second["name"].tolist()


async def test_ids_continue_after_seeding_so_inserts_still_work(session: AsyncSession) -> None:
    await tk.seed_demo(users=5, posts_per_user=2, progress=False, session=session)
    user = await queries.create_user(session, "after-seed@example.com", "After")
    assert user.id == 6
    post = await queries.create_post(session, user.id, "t", "c")
    assert post.id == 11


async def test_seeding_twice_appends_without_conflicts(session: AsyncSession) -> None:
    await tk.seed_demo(users=5, posts_per_user=1, progress=False, session=session)
    await tk.seed_demo(users=5, posts_per_user=1, progress=False, session=session)
    assert await session.scalar(select(func.count()).select_from(User)) == 10
    emails = (await session.execute(select(User.email))).scalars().all()
    assert len(set(emails)) == 10


async def test_timestamps_are_aware_and_posts_follow_their_authors(session: AsyncSession) -> None:
    await tk.seed_demo(users=20, posts_per_user=5, progress=False, session=session)
    late = await session.scalar(
        select(func.count())
        .select_from(Post)
        .join(User, Post.author_id == User.id)
        .where(Post.created_at < User.created_at)
    )
    assert late == 0
    frame = await tk.df(select(Post.created_at), session=session)
    assert str(frame["created_at"].dt.tz) == "UTC"


async def test_negative_sizes_are_rejected() -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        await tk.seed_demo(users=-1, progress=False)
