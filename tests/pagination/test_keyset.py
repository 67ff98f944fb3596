"""toolkit.pagination.keyset: seek pages that are complete, in order and stable."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import event, func, insert, select
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncSession

from tests.pagination.conftest import _collect, _ours, _scores, _users, scores
from toolkit import queries
from toolkit.database import Database
from toolkit.models import Post, User
from toolkit.pagination import KeysetPage, keyset, keyset_page, paginate


def _ids_of_pages(pages: list[KeysetPage]) -> list[int]:
    return [item.id for page in pages for item in page]


@pytest.mark.parametrize("rows", [0, 6, 7])
async def test_keyset_ascending_yields_every_row_once_in_order(
    session: AsyncSession, rows: int
) -> None:
    users = await _users(session, *(f"u{i}" for i in range(rows)))
    pages = await _collect(keyset(_ours(), key=User.id, size=3, session=session))
    assert _ids_of_pages(pages) == [u.id for u in users]
    assert [len(p) for p in pages] == {0: [0], 6: [3, 3], 7: [3, 3, 1]}[rows]
    assert [p.has_next for p in pages] == [True] * (len(pages) - 1) + [False]
    assert pages[-1].next_cursor is None


async def test_keyset_descending_yields_every_row_once_in_order(session: AsyncSession) -> None:
    users = await _users(session, *"abcdefg")
    pages = await _collect(keyset(_ours(), key=User.id.desc(), size=3, session=session))
    assert _ids_of_pages(pages) == [u.id for u in reversed(users)]


async def test_a_composite_key_with_ties_in_its_first_column(session: AsyncSession) -> None:
    await _users(session, "b", "a", "b", "c", "a", "b", "a")
    key = [User.name, User.id]
    expected = (await session.scalars(_ours().order_by(*key))).all()
    pages = await _collect(keyset(_ours(), key=key, size=2, session=session))
    assert [u for page in pages for u in page] == list(expected)


async def test_mixed_directions(session: AsyncSession) -> None:
    await _users(session, "b", "a", "b", "c", "a", "b", "a")
    key = [User.name.desc(), User.id]
    expected = (await session.scalars(_ours().order_by(*key))).all()
    pages = await _collect(keyset(_ours(), key=key, size=2, session=session))
    assert [u for page in pages for u in page] == list(expected)


async def test_not_null_keys_in_one_direction_compare_as_a_row_value(
    session: AsyncSession,
) -> None:
    """``(name, id) > (:name, :id)`` lets PostgreSQL seek a composite index."""
    await _users(session, *"abcd")
    statements: list[str] = []
    connection = (await session.connection()).sync_connection
    assert connection is not None

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(connection, "before_cursor_execute", record)
    try:
        await _collect(keyset(_ours(), key=[User.name, User.id], size=3, session=session))
    finally:
        event.remove(connection, "before_cursor_execute", record)
    assert any("(users.name, users.id) > (" in s for s in statements)


SCORES = [(1, 30), (2, None), (3, 10), (4, 30), (5, None), (6, 20), (7, 10), (8, None), (9, 5)]

ORDERINGS: dict[str, Callable[[], list[Any]]] = {
    "score asc (nulls last), id": lambda: [scores.c.score, scores.c.id],
    "score desc (nulls first), id": lambda: [scores.c.score.desc(), scores.c.id],
    "score asc nulls first, id desc": lambda: [
        scores.c.score.asc().nulls_first(),
        scores.c.id.desc(),
    ],
    "score desc nulls last, id desc": lambda: [
        scores.c.score.desc().nulls_last(),
        scores.c.id.desc(),
    ],
}


@pytest.mark.parametrize("ordering", ORDERINGS)
async def test_a_nullable_key_column_pages_through_its_nulls(
    session: AsyncSession, ordering: str
) -> None:
    await _scores(session, SCORES)
    key = ORDERINGS[ordering]()
    expected = (await session.execute(select(scores).order_by(*key))).all()
    for size in (1, 2, 4):
        pages = await _collect(keyset(select(scores), key=key, size=size, session=session))
        assert [row for page in pages for row in page] == expected, size


async def test_an_outer_join_makes_not_null_columns_nullable(session: AsyncSession) -> None:
    """Users without posts have a NULL post id, though ``posts.id`` is NOT NULL."""
    ada, alan, grace = await _users(session, "Ada", "Alan", "Grace")
    for title in ("one", "two"):
        await queries.create_post(session, grace.id, title, "...")
    await queries.create_post(session, ada.id, "three", "...")
    query = (
        select(User.id, Post.id.label("post_id")).outerjoin(Post).where(User.email.like("page%"))
    )
    key = [User.id, Post.id]
    expected = (await session.execute(query.order_by(*key))).all()
    assert (alan.id, None) in expected
    pages = await _collect(keyset(query, key=key, size=1, session=session))
    assert [row for page in pages for row in page] == expected


async def test_iteration_can_resume_after_a_cursor(session: AsyncSession) -> None:
    users = await _users(session, *"abcdefg")
    first = await keyset_page(_ours(), key=User.id, size=2, session=session)
    rest = await _collect(
        keyset(_ours(), key=User.id, size=2, after=first.next_cursor, session=session)
    )
    assert [u.id for u in first] + _ids_of_pages(rest) == [u.id for u in users]


async def test_keyset_is_stable_under_concurrent_inserts(session: AsyncSession) -> None:
    await _scores(session, [(10, 1), (20, 1), (30, 1), (40, 1), (50, 1), (60, 1)])
    first = await keyset_page(select(scores), key=scores.c.id, size=3, session=session)
    assert [row.id for row in first] == [10, 20, 30]

    # Rows arrive between the two requests: two before the cursor, one after it.
    await session.execute(insert(scores), [{"id": 5}, {"id": 15}, {"id": 35}])

    second = await keyset_page(
        select(scores), key=scores.c.id, size=3, after=first.next_cursor, session=session
    )
    third = await keyset_page(
        select(scores), key=scores.c.id, size=3, after=second.next_cursor, session=session
    )
    assert [row.id for row in second] == [35, 40, 50]  # nothing repeated, nothing skipped
    assert [row.id for row in third] == [60]
    assert not third.has_next
    # Offset pagination, for contrast, shows rows 20 and 30 again on page 2.
    shifted = await paginate(select(scores).order_by(scores.c.id), page=2, size=3, session=session)
    assert [row.id for row in shifted] == [20, 30, 35]


async def test_breaking_out_early_closes_the_session(database_url: URL) -> None:
    """Without ``session`` one session serves the loop; it is closed when the loop ends.

    (``contextlib.aclosing(keyset(...))`` closes it at the ``break`` itself.)
    """
    series = func.generate_series(1, 10).table_valued("n").render_derived("series")
    async with Database(database_url, pool_size=1) as own:
        pool: Any = own.engine.pool
        seen = []
        async for page in keyset(
            select(series.c.n), key=series.c.n, unique=True, size=3, database=own
        ):
            seen.append([row.n for row in page])
            assert pool.checkedout() == 1  # the iteration's one session holds a connection
            if len(seen) == 2:
                break
        for _ in range(200):  # the generator's finalizer runs on the next loop turns
            if pool.checkedout() == 0:
                break
            await asyncio.sleep(0.01)
        assert pool.checkedout() == 0
        assert seen == [[1, 2, 3], [4, 5, 6]]

        pages = await _collect(
            keyset(select(series.c.n), key=series.c.n, unique=True, size=4, database=own)
        )
        assert [[row.n for row in page] for page in pages] == [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10]]
        assert pool.checkedout() == 0
