"""toolkit.pagination: offset pages with totals, and keyset (seek) pages with cursors."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Integer,
    Interval,
    LargeBinary,
    MetaData,
    Numeric,
    Table,
    Text,
    Time,
    Uuid,
    event,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.engine import URL, Row
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload, selectinload
from sqlalchemy.types import TypeEngine

from toolkit import queries
from toolkit.database import Database
from toolkit.models import Post, User
from toolkit.pagination import (
    KeysetPage,
    Page,
    PaginationError,
    keyset,
    keyset_page,
    paginate,
)

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


# Offset pagination ---------------------------------------------------------------------


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


# DataFrames and notebook display -------------------------------------------------------


async def test_to_df_has_the_columns_of_models_and_rows(session: AsyncSession) -> None:
    await _users(session, "Ada", "Alan", "Grace")
    models = await paginate(_ours().order_by(User.id), size=2, session=session)
    assert list(models.to_df().columns) == USER_COLUMNS
    assert models.to_df()["name"].tolist() == ["Ada", "Alan"]
    past_end = await paginate(_ours().order_by(User.id), page=5, size=2, session=session)
    assert past_end.to_df().empty
    assert list(past_end.to_df().columns) == USER_COLUMNS

    rows = select(User.name, User.email).where(User.email.like("page%"))
    last = await keyset_page(rows.add_columns(User.id), key=User.id, size=5, session=session)
    assert list(last.to_df().columns) == ["name", "email", "id"]
    assert len(last.to_df()) == 3


async def test_html_repr_escapes_data_and_shows_at_most_20_rows(session: AsyncSession) -> None:
    await _users(session, "<script>alert(1)</script>", *(f"user {i}" for i in range(24)))
    page = await paginate(_ours().order_by(User.id), size=22, session=session)
    html = page._repr_html_()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>" not in html
    assert html.count("<tr>") == 1 + 20  # the header and 20 of the page's 22 rows
    assert "first 20 of 22 rows shown · page 1 of 2 · 25 rows" in html

    seek = await keyset_page(_ours(), key=User.id, size=3, session=session)
    seek_html = seek._repr_html_()
    assert "&lt;script&gt;" in seek_html
    assert "<script>" not in seek_html
    assert "3 rows · more after this page" in seek_html
    assert repr(seek) == "KeysetPage(size=3, items=3, has_next=True)"


# Keyset pagination: complete and in order -----------------------------------------------


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


# Cursors ----------------------------------------------------------------------------------

TYPED_VALUES: list[tuple[TypeEngine[Any], str, list[Any]]] = [
    (
        DateTime(timezone=True),
        "timestamptz",
        [datetime(2026, 1, 1, 12, 0, 0, 123456, tzinfo=UTC), datetime(2025, 6, 1, tzinfo=UTC)],
    ),
    (DateTime(), "timestamp", [datetime(2026, 1, 1, 12, 0, 0, 1), datetime(2026, 1, 1, 12)]),
    (Date(), "date", [date(2026, 1, 2), date(1999, 12, 31)]),
    (Time(), "time", [time(23, 59, 59, 999999), time(0, 0)]),
    (Interval(), "interval", [timedelta(days=2, microseconds=7), timedelta(seconds=-5)]),
    (Numeric(12, 4), "numeric(12, 4)", [Decimal("0.1000"), Decimal("-12345678.0001")]),
    (Uuid(), "uuid", [uuid.UUID(int=7), uuid.UUID(int=2**100)]),
    (Float(), "double precision", [0.1, -1e300]),
    (Text(), "text", ['é ☃ "quoted"', ""]),
    (LargeBinary(), "bytea", [b"\x00\xff", b""]),
    (Boolean(), "boolean", [True, False]),
]


@pytest.mark.parametrize(
    ("sa_type", "pg_type", "values"), TYPED_VALUES, ids=[t[1] for t in TYPED_VALUES]
)
async def test_cursors_round_trip_key_values_of_each_type(
    session: AsyncSession, sa_type: TypeEngine[Any], pg_type: str, values: list[Any]
) -> None:
    """Pages of one row, so every page boundary goes through a cursor of that type."""
    name = "typed_" + pg_type.split("(")[0].replace(" ", "_")  # one name per type: asyncpg
    await session.execute(  # caches statements per connection, and a table's types with them
        text(f"CREATE TEMP TABLE {name} (id integer PRIMARY KEY, v {pg_type}) ON COMMIT DROP")
    )
    typed = Table(name, MetaData(), Column("id", Integer, primary_key=True), Column("v", sa_type))
    rows = [{"id": i, "v": v} for i, v in enumerate([*values, *values, None])]
    await session.execute(insert(typed), rows)
    key = [typed.c.v, typed.c.id]
    expected = (await session.execute(select(typed).order_by(*key))).all()
    pages = await _collect(keyset(select(typed), key=key, size=1, session=session))
    assert [row for page in pages for row in page] == expected


async def test_a_cursor_is_url_safe_base64_json_with_tagged_types(session: AsyncSession) -> None:
    await _users(session, "Ada", "Alan")
    page = await keyset_page(_ours(), key=[User.created_at, User.id], size=1, session=session)
    cursor = page.next_cursor
    assert cursor is not None
    assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    created_at, user_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    assert created_at["$"] == "datetime"
    assert datetime.fromisoformat(created_at["v"]) == page.items[0].created_at
    assert user_id == page.items[0].id


def _b64(data: str) -> str:
    return base64.urlsafe_b64encode(data.encode()).decode()


@pytest.mark.parametrize(
    "cursor",
    [
        "not a cursor!",
        _b64("[1"),
        _b64("[1, 2]"),  # the key has one column
        _b64('{"id": 1}'),
        _b64('[{"$": "pickle", "v": "gASV"}]'),
        _b64('[{"$": "decimal", "v": "abc"}]'),
        _b64("[[1]]"),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    ],
)
async def test_a_malformed_cursor_is_refused(session: AsyncSession, cursor: str) -> None:
    with pytest.raises(PaginationError, match="malformed cursor"):
        await keyset_page(_ours(), key=User.id, after=cursor, session=session)


# Keys that cannot page -----------------------------------------------------------------


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


def test_pages_are_frozen_dataclasses() -> None:
    page = Page([1, 2], total=2, page=1, size=2)
    with pytest.raises(AttributeError):
        page.total = 3  # type: ignore[misc]
    assert list(page) == [1, 2]
    assert (page.pages, page.has_next, page.has_prev) == (1, False, False)
