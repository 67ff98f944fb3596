"""The seed's async query patterns, with its names and signatures, and the same for posts.

Each function teaches one rule; its docstring names it. Where the seed errs it is
improved, and the docstring says how:

* ``scalars().all()`` returns a ``Sequence``; the functions return real lists, as typed.
* ``get_users_paginated`` adds ``id`` as a tie-breaker: ``created_at`` alone is not unique
  (rows inserted in one transaction share ``now()``), so pages could repeat or skip rows.
* ``update_user`` rejects unknown field names instead of silently setting a plain
  Python attribute that is never saved.

None of them commits: the caller's unit of work (``tk.session()``) decides.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

from sqlalchemy import CursorResult, delete, inspect, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapper, joinedload, selectinload

from toolkit.models import Comment, Post, User

__all__ = [
    "create_post",
    "create_user",
    "deactivate_users",
    "delete_post",
    "delete_user",
    "get_all_posts",
    "get_all_users",
    "get_post_with_author",
    "get_post_with_comments",
    "get_posts_by_author",
    "get_posts_paginated",
    "get_user_by_email",
    "get_user_with_posts",
    "get_users_paginated",
    "move_posts",
    "update_post",
    "update_user",
]


# Users: the seed's functions ---------------------------------------------------------


async def get_all_users(session: AsyncSession) -> list[User]:
    """Select all: ``execute(select(...))`` then ``.scalars()`` for the entities."""
    result = await session.execute(select(User))
    return list(result.scalars().all())


async def get_user_by_email(session: AsyncSession, email: str) -> User | None:
    """Select with a filter: ``scalar_one_or_none()`` for an optional single result.

    It returns None for no row and raises ``MultipleResultsFound`` for more than one,
    so a broken uniqueness assumption is loud instead of silently picking a row.
    """
    result = await session.execute(select(User).where(User.email == email))
    return result.scalar_one_or_none()


async def get_user_with_posts(session: AsyncSession, user_id: int) -> User | None:
    """Eager loading: ``selectinload`` fetches the posts in a second SELECT ... IN query.

    In async code a relationship must be loaded before it is touched: an implicit lazy
    load would need I/O inside attribute access, which raises MissingGreenlet.
    """
    result = await session.execute(
        select(User).options(selectinload(User.posts)).where(User.id == user_id)
    )
    return result.scalar_one_or_none()


async def get_users_paginated(
    session: AsyncSession,
    skip: int = 0,
    limit: int = 100,
) -> list[User]:
    """Offset pagination, newest first: ``offset(skip).limit(limit)``.

    The order must be total for pages to be stable, so ``id`` breaks ties between equal
    ``created_at`` values. Offset cost grows with ``skip``; see ``tk.keyset`` for deep pages.
    """
    result = await session.execute(
        select(User).offset(skip).limit(limit).order_by(User.created_at.desc(), User.id.desc())
    )
    return list(result.scalars().all())


async def create_user(session: AsyncSession, email: str, name: str) -> User:
    """Create: ``add`` then ``await session.flush()`` to get the id without committing.

    The flush sends the INSERT (with RETURNING id, created_at) inside the open transaction;
    the commit, or a rollback, is still the caller's.
    """
    user = User(email=email, name=name)
    session.add(user)
    await session.flush()  # Get ID without committing
    return user


async def update_user(session: AsyncSession, user_id: int, **kwargs: Any) -> User | None:
    """Update one row through the unit of work: ``session.get``, set attributes, flush.

    Unknown field names raise ``AttributeError`` (the seed would set an unsaved attribute).
    """
    _check_columns(User, kwargs)
    user = await session.get(User, user_id)
    if not user:
        return None
    for key, value in kwargs.items():
        setattr(user, key, value)
    await session.flush()
    return user


async def deactivate_users(session: AsyncSession, user_ids: list[int]) -> int:
    """Bulk update: one ``UPDATE ... WHERE id IN (...)`` and its ``rowcount``.

    No objects are loaded; objects already in the session are synchronised for you.
    """
    result = await session.execute(
        update(User).where(User.id.in_(user_ids)).values(is_active=False)
    )
    return _rowcount(result)


async def delete_user(session: AsyncSession, user_id: int) -> bool:
    """Delete: ``DELETE ... WHERE id = :id``; ``rowcount > 0`` says whether it existed.

    A user who still has posts is protected by the foreign key: PostgreSQL raises an
    IntegrityError and nothing is deleted.
    """
    result = await session.execute(delete(User).where(User.id == user_id))
    return _rowcount(result) > 0


# Posts: the same patterns ------------------------------------------------------------


async def get_all_posts(session: AsyncSession) -> list[Post]:
    """Select all posts, oldest first."""
    result = await session.execute(select(Post).order_by(Post.id))
    return list(result.scalars().all())


async def get_posts_by_author(session: AsyncSession, author_id: int) -> list[Post]:
    """Select with a filter on an indexed foreign key column."""
    result = await session.execute(
        select(Post).where(Post.author_id == author_id).order_by(Post.id)
    )
    return list(result.scalars().all())


async def get_post_with_author(session: AsyncSession, post_id: int) -> Post | None:
    """Many-to-one eager loading: ``joinedload`` adds the author to the same query (a JOIN)."""
    result = await session.execute(
        select(Post).options(joinedload(Post.author)).where(Post.id == post_id)
    )
    return result.scalar_one_or_none()


async def get_post_with_comments(session: AsyncSession, post_id: int) -> Post | None:
    """Nested eager loading: the post's comments, each with its author, and its tags."""
    result = await session.execute(
        select(Post)
        .options(
            selectinload(Post.comments).joinedload(Comment.author),
            selectinload(Post.tags),
        )
        .where(Post.id == post_id)
    )
    return result.scalar_one_or_none()


async def get_posts_paginated(
    session: AsyncSession,
    skip: int = 0,
    limit: int = 100,
) -> list[Post]:
    """Offset pagination of posts, newest first, with ``id`` as the tie-breaker."""
    result = await session.execute(
        select(Post).offset(skip).limit(limit).order_by(Post.created_at.desc(), Post.id.desc())
    )
    return list(result.scalars().all())


async def create_post(session: AsyncSession, author_id: int, title: str, content: str) -> Post:
    """Create a post and flush to get its id (a missing author fails here, not at commit)."""
    post = Post(author_id=author_id, title=title, content=content)
    session.add(post)
    await session.flush()
    return post


async def update_post(session: AsyncSession, post_id: int, **kwargs: Any) -> Post | None:
    """Update one post through the unit of work; unknown field names raise AttributeError."""
    _check_columns(Post, kwargs)
    post = await session.get(Post, post_id)
    if not post:
        return None
    for key, value in kwargs.items():
        setattr(post, key, value)
    await session.flush()
    return post


async def move_posts(session: AsyncSession, post_ids: list[int], author_id: int) -> int:
    """Bulk update of posts: reassign them to another author; returns the rowcount."""
    result = await session.execute(
        update(Post).where(Post.id.in_(post_ids)).values(author_id=author_id)
    )
    return _rowcount(result)


async def delete_post(session: AsyncSession, post_id: int) -> bool:
    """Delete a post (its comments go with it: ``ON DELETE CASCADE``)."""
    result = await session.execute(delete(Post).where(Post.id == post_id))
    return _rowcount(result) > 0


# Helpers -----------------------------------------------------------------------------


def _rowcount(result: Any) -> int:
    return cast(CursorResult[Any], result).rowcount


def _check_columns(model: type[User] | type[Post], fields: Iterable[str]) -> None:
    mapper: Mapper[Any] = inspect(model)
    known = set(mapper.column_attrs.keys())
    unknown = sorted(set(fields) - known)
    if unknown:
        raise AttributeError(
            f"{model.__name__} has no column {', '.join(unknown)}; "
            f"known columns: {', '.join(sorted(known))}"
        )
