"""toolkit.frames: queries and in-memory objects to DataFrames."""

from __future__ import annotations

import pandas as pd
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
    with pytest.raises(ToolkitError, match="returns rows"):
        await tk.df("set local work_mem = '8MB'", session=session)


async def test_to_dataframe_takes_models_rows_and_mappings(session: AsyncSession) -> None:
    users = [await queries.create_user(session, f"m{i}@example.com", f"M{i}") for i in range(2)]
    models = tk.to_dataframe(users)
    assert list(models.columns) == ["id", "email", "name", "is_active", "created_at"]
    assert models["name"].tolist() == ["M0", "M1"]

    rows = (await session.execute(select(User.id, User.name).order_by(User.id))).all()
    from_rows = tk.to_dataframe(rows)
    assert list(from_rows.columns) == ["id", "name"]
    assert len(from_rows) == 2

    mappings = tk.to_dataframe([{"a": 1}, {"a": 2}])
    pd.testing.assert_frame_equal(mappings, pd.DataFrame({"a": [1, 2]}))
    assert tk.to_dataframe([]).empty
