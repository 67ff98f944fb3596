"""Keyset keys that cannot page (not unique, unvouched, not selected) and argument checks."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.pagination.conftest import _collect, _ours, _users
from toolkit.models import Post, User
from toolkit.pagination import PaginationError, keyset, keyset_page


async def test_a_non_unique_key_is_refused_with_a_tiebreaker_to_add(
    session: AsyncSession,
) -> None:
    message = r"key \(users.created_at\) is not unique - the unique column sets of users are "
    message += r"\(id\), \(email\); add a tiebreaker, e.g. key=\[User.created_at, User.id\]"
    with pytest.raises(PaginationError, match=message):
        await keyset_page(_ours(), key=User.created_at, session=session)
    with pytest.raises(
        PaginationError, match=r"key=\[User.created_at.desc\(\), User.id.desc\(\)\]"
    ):
        await keyset_page(_ours(), key=User.created_at.desc(), session=session)
    posts = Post.__table__
    with pytest.raises(PaginationError, match=r"key=\[posts.author_id, posts.id\]"):
        await keyset_page(select(posts), key=posts.c.author_id, session=session)


async def test_a_primary_key_or_not_null_unique_column_is_a_valid_key(
    session: AsyncSession,
) -> None:
    await _users(session, "b", "a")
    for key in (User.id, User.email, [User.created_at, User.id], [User.name, User.email]):
        page = await keyset_page(_ours(), key=key, session=session)
        assert len(page) == 2


async def test_an_expression_key_must_be_vouched_for(session: AsyncSession) -> None:
    await _users(session, "Ada", "Alan")
    lowered = func.lower(User.email)
    query = select(User.name, lowered.label("email")).where(User.email.like("page%"))
    with pytest.raises(PaginationError, match=r"cannot be checked.*unique=True"):
        await keyset_page(query, key=lowered, session=session)
    pages = await _collect(keyset(query, key=lowered, unique=True, size=1, session=session))
    assert [[row.name for row in page] for page in pages] == [["Ada"], ["Alan"]]


async def test_the_key_must_be_among_the_selected_columns(session: AsyncSession) -> None:
    users = User.__table__
    with pytest.raises(PaginationError, match=r"users.id is not among the selected columns"):
        await keyset_page(select(users.c.name), key=users.c.id, session=session)
    with pytest.raises(PaginationError, match=r"Post.id is not a column of User"):
        await keyset_page(select(User).join(Post), key=Post.id, session=session)


async def test_keyset_validates_its_arguments(session: AsyncSession) -> None:
    with pytest.raises(ValueError, match="size must be 1 or more"):
        await keyset_page(_ours(), key=User.id, size=0, session=session)
    with pytest.raises(TypeError, match="needs a Select"):
        await keyset_page("SELECT 1", key=User.id, session=session)  # type: ignore[arg-type]
    with pytest.raises(PaginationError, match="key is empty"):
        await keyset_page(_ours(), key=[], session=session)
