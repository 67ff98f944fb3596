"""toolkit.queries: the seed's patterns behave as the seed says, with its names and signatures."""

from __future__ import annotations

import inspect
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, MissingGreenlet
from sqlalchemy.ext.asyncio import AsyncSession

from tests.verbatim import seed_queries as seed
from toolkit import queries
from toolkit.models import Comment, Post, Tag, User

SEED_FUNCTIONS = [
    "get_all_users",
    "get_user_by_email",
    "get_user_with_posts",
    "get_users_paginated",
    "create_user",
    "update_user",
    "deactivate_users",
    "delete_user",
]


async def _users(session: AsyncSession, n: int) -> list[User]:
    return [
        await queries.create_user(session, f"user{i}@example.com", f"User {i}") for i in range(n)
    ]


@pytest.mark.parametrize("name", SEED_FUNCTIONS)
def test_every_seed_function_keeps_its_name_and_parameters(name: str) -> None:
    ours = inspect.signature(getattr(queries, name))
    theirs = inspect.signature(getattr(seed, name))
    assert list(ours.parameters) == list(theirs.parameters)
    for param in ours.parameters.values():
        assert param.default == theirs.parameters[param.name].default


async def test_create_user_gets_an_id_and_created_at_from_flush_before_commit(
    session: AsyncSession,
) -> None:
    user = await queries.create_user(session, "ada@example.com", "Ada")
    assert isinstance(user.id, int)
    assert user.is_active is True
    # The server default arrives with the INSERT's RETURNING: aware, and just now.
    assert user.created_at.tzinfo is not None
    assert abs(datetime.now(UTC) - user.created_at) < timedelta(minutes=5)
    assert session.in_transaction()


async def test_get_user_by_email_returns_the_user_or_none(session: AsyncSession) -> None:
    created = await queries.create_user(session, "grace@example.com", "Grace")
    assert await queries.get_user_by_email(session, "grace@example.com") is created
    assert await queries.get_user_by_email(session, "nobody@example.com") is None


async def test_get_all_users_returns_a_list_of_every_user(session: AsyncSession) -> None:
    created = await _users(session, 3)
    found = await queries.get_all_users(session)
    assert isinstance(found, list)
    assert {u.id for u in found} == {u.id for u in created}


async def test_get_user_with_posts_loads_posts_eagerly(session: AsyncSession) -> None:
    (user,) = await _users(session, 1)
    for i in range(3):
        await queries.create_post(session, user.id, f"Post {i}", "text")
    session.expunge_all()  # forget what the session holds: the load must come from SQL
    loaded = await queries.get_user_with_posts(session, user.id)
    assert loaded is not None
    assert sorted(p.title for p in loaded.posts) == ["Post 0", "Post 1", "Post 2"]
    assert await queries.get_user_with_posts(session, 10**9) is None


async def test_get_users_paginated_pages_newest_first_without_overlap(
    session: AsyncSession,
) -> None:
    await _users(session, 7)  # one transaction: equal created_at, so id breaks ties
    first = await queries.get_users_paginated(session, skip=0, limit=3)
    second = await queries.get_users_paginated(session, skip=3, limit=3)
    third = await queries.get_users_paginated(session, skip=6, limit=3)
    ids = [u.id for u in first + second + third]
    assert len(ids) == 7
    assert len(set(ids)) == 7
    assert ids == sorted(ids, reverse=True)


async def test_update_user_sets_fields_and_returns_none_for_a_missing_user(
    session: AsyncSession,
) -> None:
    (user,) = await _users(session, 1)
    updated = await queries.update_user(session, user.id, name="Renamed", is_active=False)
    assert updated is not None
    assert (updated.name, updated.is_active) == ("Renamed", False)
    stored = await session.scalar(select(User.name).where(User.id == user.id))
    assert stored == "Renamed"
    assert await queries.update_user(session, 10**9, name="x") is None


async def test_update_user_rejects_an_unknown_field_instead_of_losing_it(
    session: AsyncSession,
) -> None:
    (user,) = await _users(session, 1)
    with pytest.raises(AttributeError, match="no column nmae"):
        await queries.update_user(session, user.id, nmae="typo")


async def test_deactivate_users_returns_the_rowcount_of_the_bulk_update(
    session: AsyncSession,
) -> None:
    users = await _users(session, 4)
    count = await queries.deactivate_users(session, [users[0].id, users[1].id, 10**9])
    assert count == 2
    active = await session.scalar(select(func.count()).where(User.is_active))
    assert active == 2
    # Objects already in the session are synchronised with the UPDATE.
    assert users[0].is_active is False


async def test_delete_user_says_whether_a_row_was_deleted(session: AsyncSession) -> None:
    (user,) = await _users(session, 1)
    assert await queries.delete_user(session, user.id) is True
    assert await queries.delete_user(session, user.id) is False


async def test_delete_user_with_posts_is_refused_by_the_foreign_key(
    session: AsyncSession,
) -> None:
    (user,) = await _users(session, 1)
    await queries.create_post(session, user.id, "Kept", "text")
    with pytest.raises(IntegrityError):
        async with session.begin_nested():
            await queries.delete_user(session, user.id)
    assert await session.scalar(select(func.count()).select_from(Post)) == 1


async def test_post_patterns_mirror_the_user_patterns(session: AsyncSession) -> None:
    alice, bob = await _users(session, 2)
    posts = [await queries.create_post(session, alice.id, f"T{i}", "c") for i in range(3)]
    assert [p.id for p in await queries.get_posts_by_author(session, alice.id)] == [
        p.id for p in posts
    ]
    assert len(await queries.get_all_posts(session)) == 3
    assert len(await queries.get_posts_paginated(session, skip=1, limit=5)) == 2
    assert await queries.move_posts(session, [posts[0].id, posts[1].id], bob.id) == 2
    assert (await queries.update_post(session, posts[2].id, title="New")).title == "New"  # type: ignore[union-attr]
    assert await queries.delete_post(session, posts[2].id) is True
    assert await queries.delete_post(session, posts[2].id) is False


async def test_get_post_with_author_and_with_comments_load_relationships_eagerly(
    session: AsyncSession,
) -> None:
    alice, bob = await _users(session, 2)
    post = await queries.create_post(session, alice.id, "Hello", "world")
    tag = Tag(name="demo")
    session.add_all([Comment(post_id=post.id, author_id=bob.id, body="nice"), tag])
    await session.flush()
    await session.execute(
        Post.tags.property.secondary.insert().values(post_id=post.id, tag_id=tag.id)
    )  # type: ignore[union-attr]
    session.expunge_all()

    with_author = await queries.get_post_with_author(session, post.id)
    assert with_author is not None
    assert with_author.author.name == alice.name
    session.expunge_all()

    with_comments = await queries.get_post_with_comments(session, post.id)
    assert with_comments is not None
    assert [(c.body, c.author.name) for c in with_comments.comments] == [("nice", bob.name)]
    assert [t.name for t in with_comments.tags] == ["demo"]


async def test_a_lazy_load_in_async_code_raises_missing_greenlet(session: AsyncSession) -> None:
    (user,) = await _users(session, 1)
    post = await queries.create_post(session, user.id, "Lazy", "text")
    session.expunge_all()
    loaded = await session.get(Post, post.id)
    assert loaded is not None
    with pytest.raises(MissingGreenlet):
        _ = loaded.author  # not eagerly loaded: async code cannot do I/O here
    assert (await loaded.awaitable_attrs.author).id == user.id


async def test_the_seed_code_itself_runs_unchanged_against_the_models(
    session: AsyncSession,
) -> None:
    user = await seed.create_user(session, "seed@example.com", "Seed")
    assert isinstance(user.id, int)
    assert await seed.get_user_by_email(session, "seed@example.com") is user
    assert [u.id for u in await seed.get_all_users(session)] == [user.id]
    assert (await seed.get_user_with_posts(session, user.id)).posts == []  # type: ignore[union-attr]
    assert [u.id for u in await seed.get_users_paginated(session)] == [user.id]
    assert (await seed.update_user(session, user.id, name="S")).name == "S"  # type: ignore[union-attr]
    assert await seed.deactivate_users(session, [user.id]) == 1
    assert await seed.delete_user(session, user.id) is True
