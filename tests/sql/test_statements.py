"""toolkit.sql's statements: SQL text compiled once per shape, parameters checked each run."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

import toolkit as tk
from toolkit.errors import ToolkitError
from toolkit.sql import _statements as statements


async def test_sql_text_run_again_with_values_of_other_types_is_compiled_for_them(
    session: AsyncSession,
) -> None:
    sql = "select :v as v"
    assert (await tk.df(sql, {"v": 1}, session=session))["v"].tolist() == [1]
    # A cached $1::INTEGER would overflow: the plan is kept per parameter type.
    assert (await tk.df(sql, {"v": 2**40}, session=session))["v"].tolist() == [2**40]
    assert (await tk.df(sql, {"v": "text"}, session=session))["v"].tolist() == ["text"]
    aware = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
    naive = datetime(2024, 5, 1, 12, 30)
    assert (await tk.df(sql, {"v": aware}, session=session))["v"].tolist() == [pd.Timestamp(aware)]
    assert (await tk.df(sql, {"v": naive}, session=session))["v"].tolist() == [pd.Timestamp(naive)]


async def test_sql_text_run_again_is_not_compiled_again(
    session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    compiled = []
    original = statements._compiled
    monkeypatch.setattr(statements, "_compiled", lambda s: compiled.append(s) or original(s))
    sql = "select :a::int + :b::int as total -- repeat"
    for a in range(3):
        frame = await tk.df(sql, {"a": a, "b": 10}, session=session)
        assert frame["total"].tolist() == [a + 10]
    assert len(compiled) == 1


async def test_sql_text_run_again_with_a_parameter_missing_is_still_refused(
    session: AsyncSession,
) -> None:
    sql = "select :a as a, :b as b -- missing"
    await tk.df(sql, {"a": 1, "b": 2}, session=session)
    with pytest.raises(ToolkitError, match=r"no value for :b"):
        await tk.df(sql, {"a": 1}, session=session)
