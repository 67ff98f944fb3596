"""toolkit.demo: deterministic demo data, loaded atomically with COPY."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

import toolkit as tk
from tests.conftest import MakeDatabase
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


# reset_demo ---------------------------------------------------------------------------------


async def _everything(database: tk.Database) -> dict[str, pd.DataFrame]:
    async with database.session() as s:
        return {
            **await _snapshot(s),
            "tags": await tk.df(select(Tag).order_by(Tag.id), session=s),
            "post_tags": await tk.df("select * from post_tags order by 1, 2", session=s),
        }


def _assert_same(left: dict[str, pd.DataFrame], right: dict[str, pd.DataFrame]) -> None:
    assert left.keys() == right.keys()
    for table in left:
        pd.testing.assert_frame_equal(left[table], right[table], obj=table)


async def test_reset_demo_restores_the_seeded_rows_after_any_change(
    make_database: MakeDatabase,
) -> None:
    async with tk.Database(await make_database()) as database:
        first = await tk.reset_demo(users=20, posts_per_user=3, database=database)
        seeded = await _everything(database)
        async with database.session() as s:  # what a notebook does to the demo data
            await queries.create_user(s, "extra@example.com", "Extra")
            await s.execute(delete(Comment).where(Comment.id < 10))
            await s.execute(update(User).values(name="Renamed"))

        again = await tk.reset_demo(users=20, posts_per_user=3, database=database)

        assert again == first
        _assert_same(await _everything(database), seeded)
        assert seeded["users"]["id"].tolist() == list(range(1, 21))  # ids start at 1 again


async def test_reset_demo_leaves_tables_it_does_not_own(make_database: MakeDatabase) -> None:
    async with tk.Database(await make_database()) as database:
        await tk.to_table(pd.DataFrame({"n": [1, 2]}), "my_results", database=database)

        await tk.reset_demo(users=2, posts_per_user=1, database=database)

        assert (await tk.df("select n from my_results", database=database))["n"].tolist() == [1, 2]


async def test_reset_demo_that_fails_changes_nothing(make_database: MakeDatabase) -> None:
    """A table of the user's that references users blocks TRUNCATE: the demo data stays."""
    async with tk.Database(await make_database()) as database:
        await tk.reset_demo(users=5, posts_per_user=1, database=database)
        async with database.session() as s:
            await s.execute(text("create table mine (user_id int references users(id))"))
            await s.execute(text("insert into mine values (1)"))
        before = await _everything(database)

        with pytest.raises(tk.ToolkitError, match=r"cannot empty the demo tables: .*unchanged"):
            await tk.reset_demo(users=9, posts_per_user=1, database=database)

        _assert_same(await _everything(database), before)


async def test_reset_demo_refuses_a_database_the_toolkit_never_migrated(
    make_database: MakeDatabase,
) -> None:
    async with tk.Database(await make_database(migrated=False)) as database:
        with pytest.raises(tk.ToolkitError, match="run `toolkit migrate`"):
            await tk.reset_demo(database=database)

        assert (await tk.tables(database=database)).empty
