"""tk.to_table: a DataFrame into a new or existing table, in one transaction."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

import toolkit as tk
from toolkit.errors import ToolkitError


async def test_to_table_creates_a_table_that_reads_back_equal(session: AsyncSession) -> None:
    frame = pd.DataFrame(
        {
            "id": pd.array([1, 2, None], dtype="Int64"),
            "name": pd.array(["a,b", "", None], dtype="string[pyarrow]"),
            "score": [1.5, float("nan"), 3.25],
            "ok": pd.array([True, None, False], dtype="boolean"),
            "at": pd.to_datetime(["2024-01-01T10:00:00Z", "2024-06-01T00:00:00Z", None], utc=True),
        }
    )
    assert await tk.to_table(frame, "written", session=session) == 3
    back = await tk.df("SELECT * FROM written", session=session)
    assert back["id"].tolist() == [1, 2, pd.NA]
    assert back["name"].tolist() == ["a,b", "", pd.NA]
    assert back["ok"].tolist() == [True, pd.NA, False]
    assert back["at"].tolist()[:2] == frame["at"].tolist()[:2]
    assert back["at"].isna().tolist() == [False, False, True]


async def test_to_table_refuses_to_overwrite_unless_told(session: AsyncSession) -> None:
    frame = pd.DataFrame({"x": [1, 2]})
    await tk.to_table(frame, "twice", session=session)
    with pytest.raises(ToolkitError, match="already exists"):
        await tk.to_table(frame, "twice", session=session)
    await tk.to_table(frame, "twice", if_exists="append", session=session)
    assert len(await tk.df("SELECT * FROM twice", session=session)) == 4
    await tk.to_table(frame.head(1), "twice", if_exists="replace", session=session)
    assert len(await tk.df("SELECT * FROM twice", session=session)) == 1


async def test_to_table_is_atomic(session: AsyncSession) -> None:
    await session.execute(text("CREATE TABLE strict_target (x int NOT NULL)"))
    await session.commit()  # releases the savepoint; the outer test transaction remains
    bad = pd.DataFrame({"x": pd.array([1, 2, None], dtype="Int64")})
    with pytest.raises(tk.DatabaseError):
        await tk.to_table(bad, "strict_target", if_exists="append", session=session)
    await session.rollback()
    assert (await tk.df("SELECT count(*) AS n FROM strict_target", session=session))["n"][0] == 0


async def test_to_table_in_a_fresh_session_belongs_to_its_transaction(db: tk.Database) -> None:
    """SQLAlchemy begins lazily; the COPY must not commit on its own before that."""
    async with db.async_session() as fresh:
        await tk.to_table(pd.DataFrame({"x": [1]}), "never_committed", session=fresh)
        await fresh.rollback()
    gone = await tk.df("SELECT to_regclass('never_committed') IS NULL AS gone", database=db)
    assert gone["gone"].tolist() == [True]
