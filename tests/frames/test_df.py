"""tk.df: Selects and SQL text to DataFrames, inside a session or not."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

import toolkit as tk
from toolkit import queries
from toolkit.errors import ToolkitError
from toolkit.models import User


async def test_an_orm_select_of_an_entity_gives_its_columns(session: AsyncSession) -> None:
    await queries.create_user(session, "frame@example.com", "Frame")
    frame = await tk.df(select(User), session=session)
    assert list(frame.columns) == ["id", "email", "name", "is_active", "created_at"]
    assert frame["email"].tolist() == ["frame@example.com"]
    assert str(frame["created_at"].dt.tz) == "UTC"


async def test_a_session_query_sees_its_uncommitted_rows(session: AsyncSession) -> None:
    await queries.create_user(session, "pending@example.com", "Pending")
    frame = await tk.df(select(User.email).where(User.email.like("pending%")), session=session)
    assert frame["email"].tolist() == ["pending@example.com"]


async def test_sql_text_binds_named_parameters_never_formats_them(session: AsyncSession) -> None:
    hostile = "x'); drop table users; --"
    frame = await tk.df(
        "select :value as value, :n + 1 as next, :flag as flag",
        {"value": hostile, "n": 41, "flag": None},
        session=session,
    )
    assert frame.loc[0, "value"] == hostile
    assert frame.loc[0, "next"] == 42
    assert await session.scalar(text("select count(*) from users")) is not None


async def test_an_empty_result_keeps_its_columns(session: AsyncSession) -> None:
    frame = await tk.df(select(User.id, User.name).where(User.id < 0), session=session)
    assert frame.empty
    assert list(frame.columns) == ["id", "name"]


async def test_a_statement_without_rows_is_refused_with_a_hint(session: AsyncSession) -> None:
    with pytest.raises(ToolkitError, match=r"returns none - run it with tk\.execute"):
        await tk.df("set local work_mem = '8MB'", session=session)


@pytest.mark.parametrize(
    "sql",
    [
        "EXPLAIN SELECT * FROM users",
        "  /* a comment */ EXPLAIN (ANALYZE, BUFFERS) SELECT 1",
        "SHOW TimeZone",
    ],
)
async def test_statements_that_cannot_be_planned_still_return_rows(
    session: AsyncSession, sql: str
) -> None:
    frame = await tk.df(sql, session=session)
    assert len(frame) >= 1
    assert await session.scalar(text("SELECT 1")) == 1  # the transaction is intact


async def test_naive_timestamps_with_nulls_on_the_row_path(session: AsyncSession) -> None:
    frame = await tk.df(
        "SELECT * FROM (VALUES (now()::timestamp), (NULL)) AS t(at)", session=session
    )
    assert str(frame["at"].dtype) == "datetime64[us]"
    assert frame["at"].isna().tolist() == [False, True]


async def test_a_failing_query_in_a_session_leaves_the_session_usable(
    session: AsyncSession,
) -> None:
    await queries.create_user(session, "kept@example.com", "Kept")  # uncommitted work
    with pytest.raises(tk.DatabaseError, match="division by zero"):
        await tk.df("SELECT 1 / 0 AS boom", session=session)
    frame = await tk.df("SELECT email FROM users", session=session)
    assert frame["email"].tolist() == ["kept@example.com"]
