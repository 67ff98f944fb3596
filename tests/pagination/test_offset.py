"""toolkit.pagination.paginate: numbered pages with a total (OFFSET)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import URL, Row
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload, selectinload

from tests.pagination.conftest import USER_COLUMNS, _ours, _users
from toolkit import queries
from toolkit.database import Database
from toolkit.models import User
from toolkit.pagination import PaginationError, paginate


async def test_a_page_holds_size_items_in_order_and_the_total(session: AsyncSession) -> None:
    users = await _users(session, *"abcdefg")
    page = await paginate(_ours().order_by(User.id), page=1, size=3, session=session)
    assert page.items == users[:3]
    assert all(isinstance(u, User) for u in page)
    assert (len(page), page.total, page.pages) == (3, 7, 3)
    assert page.has_next
    assert not page.has_prev
    assert repr(page) == "Page(page=1/3, size=3, total=7, items=3)"


async def test_the_last_page_is_partial(session: AsyncSession) -> None:
    users = await _users(session, *"abcdefg")
    page = await paginate(_ours().order_by(User.id), page=3, size=3, session=session)
    assert page.items == users[6:]
    assert (page.total, page.pages, page.has_next, page.has_prev) == (7, 3, False, True)


async def test_a_page_past_the_end_is_empty_but_knows_the_total(session: AsyncSession) -> None:
    await _users(session, *"abcdefg")
    page = await paginate(_ours().order_by(User.id), page=9, size=3, session=session)
    assert page.items == []
    assert (page.total, page.pages, page.has_next) == (7, 3, False)


async def test_an_empty_result_has_no_pages(session: AsyncSession) -> None:
    page = await paginate(_ours().order_by(User.id), session=session)
    assert page.items == []
    assert (page.total, page.pages, page.has_next, page.has_prev) == (0, 0, False, False)
    assert list(page.to_df().columns) == USER_COLUMNS


@pytest.mark.parametrize(
    ("page", "size", "message"),
    [(0, 50, "page must be 1 or more"), (-1, 50, "page"), (1, 0, "size must be 1 or more")],
)
async def test_page_and_size_must_be_positive(
    session: AsyncSession, page: int, size: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        await paginate(_ours().order_by(User.id), page=page, size=size, session=session)


async def test_the_total_counts_only_rows_matching_the_where_clause(
    session: AsyncSession,
) -> None:
    users = await _users(session, *"abcdefghij")
    await queries.deactivate_users(session, [u.id for u in users[::2]])
    active = _ours().where(User.is_active).order_by(User.id)
    page = await paginate(active, page=1, size=2, session=session)  # a full page: counted
    assert (page.total, page.pages) == (5, 3)
    assert page.items == users[1:5:2]


async def test_a_select_of_columns_gives_rows(session: AsyncSession) -> None:
    await _users(session, "Ada", "Alan")
    query = select(User.id, User.name).where(User.email.like("page%")).order_by(User.name)
    page = await paginate(query, session=session)
    assert all(isinstance(row, Row) for row in page)
    assert [row.name for row in page] == ["Ada", "Alan"]
    assert list(page.to_df().columns) == ["id", "name"]


async def test_a_select_without_order_by_is_refused(session: AsyncSession) -> None:
    with pytest.raises(PaginationError, match=r"needs an ORDER BY.*\.order_by\(User\.id\)"):
        await paginate(select(User), session=session)


async def test_models_page_with_selectinload_but_not_a_joinedload_collection(
    session: AsyncSession,
) -> None:
    (ada,) = await _users(session, "Ada")
    for title in ("one", "two"):
        await queries.create_post(session, ada.id, title, "...")
    session.expunge_all()  # load afresh, as a new notebook session would
    joined = _ours().options(joinedload(User.posts)).order_by(User.id)
    with pytest.raises(PaginationError, match=r"joinedload\(\).*use selectinload\(\)"):
        await paginate(joined, session=session)
    selected = _ours().options(selectinload(User.posts)).order_by(User.id)
    page = await paginate(selected, session=session)
    assert [sorted(p.title for p in u.posts) for u in page] == [["one", "two"]]


async def test_sql_text_is_paged_as_a_subquery_with_bound_params(session: AsyncSession) -> None:
    hostile = "x'); drop table users; --"
    sql = "SELECT n, :tag AS tag FROM generate_series(1, :last) AS n ORDER BY n;"
    page = await paginate(sql, page=2, size=4, params={"last": 10, "tag": hostile}, session=session)
    assert [row.n for row in page] == [5, 6, 7, 8]
    assert {row.tag for row in page} == {hostile}
    assert (page.total, page.pages) == (10, 3)
    assert list(page.to_df().columns) == ["n", "tag"]


async def test_without_a_session_paginate_uses_and_returns_its_own(database_url: URL) -> None:
    async with Database(database_url, pool_size=1) as own:
        sql = "SELECT n FROM generate_series(1, 7) AS n ORDER BY n"
        page = await paginate(sql, page=3, size=3, database=own)
        assert [row.n for row in page] == [7]
        pool: Any = own.engine.pool
        assert pool.checkedout() == 0
