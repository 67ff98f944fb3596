"""sample() and profile(): rows and per-column statistics, read by PostgreSQL."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pandas as pd
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from tests.explore.conftest import ODD, ODD_SQL, _victim_intact
from toolkit import frames
from toolkit.database import Database
from toolkit.explore import _contents, count_queries, profile, sample
from toolkit.frames import df
from toolkit.models import User


async def test_sample_gives_the_first_rows_by_primary_key_with_exact_dtypes(
    odd_db: Database,
) -> None:
    frame = await sample(ODD, 3, database=odd_db)
    assert frame["Select"].tolist() == [1, 2, 3]
    whole = await df(f"SELECT * FROM {ODD_SQL} ORDER BY 1", database=odd_db)
    pd.testing.assert_frame_equal(frame, whole.head(3))
    await _victim_intact(odd_db)


async def test_sample_of_zero_rows_keeps_the_columns(odd_db: Database) -> None:
    frame = await sample("big", 0, database=odd_db)
    assert frame.empty
    assert list(frame.columns) == ["id", "label"]


async def test_random_sample_shuffles_a_small_table(odd_db: Database) -> None:
    draws = [tuple((await sample("big", 5, random=True, database=odd_db))["id"]) for _ in range(3)]
    assert all(len(set(d)) == 5 and all(1 <= i <= 5000 for i in d) for d in draws)
    assert len(set(draws)) > 1  # three identical draws of 5 from 5000: practically never
    everything = await sample(ODD, 50, random=True, database=odd_db)
    assert sorted(everything["Select"]) == [1, 2, 3, 4, 5]


async def test_random_sample_of_a_large_table_reads_a_tablesample(
    odd_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_contents, "TABLESAMPLE_FROM", 1_000)  # "big" has 5000 rows
    sent: list[str] = []
    real_df = frames.df

    async def spy(query: Any, *args: Any, **kwargs: Any) -> pd.DataFrame:
        sent.append(str(query.compile(compile_kwargs={"literal_binds": True})))
        return await real_df(query, *args, **kwargs)

    monkeypatch.setattr(_contents, "df", spy)
    frame = await sample("big", 5, random=True, database=odd_db)
    assert len(frame) == 5
    assert frame["id"].is_unique
    assert "TABLESAMPLE system(20.0)" in sent[0]
    assert "ORDER BY random()" in sent[0]


async def test_sample_validates_n(odd_db: Database) -> None:
    with pytest.raises(ValueError, match="n must be 0 or more"):
        await sample("big", -1, database=odd_db)
    with pytest.raises(TypeError, match="n must be an int"):
        await sample("big", "5", database=odd_db)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="n must be an int"):
        await sample("big", True, database=odd_db)


async def test_profile_computes_known_statistics(odd_db: Database) -> None:
    frame = await profile(ODD, database=odd_db)
    assert list(frame.columns) == [
        "column",
        "type",
        "rows",
        "nulls",
        "null_pct",
        "distinct",
        "min",
        "max",
        "mean",
    ]
    stats = frame.set_index("column")
    assert (stats["rows"] == 5).all()

    def row(name: str) -> dict[str, Any]:
        values = stats.loc[name].to_dict()
        return {k: None if v is pd.NA or v is None else v for k, v in values.items()}

    assert row("Select") == {
        "type": "integer",
        "rows": 5,
        "nulls": 0,
        "null_pct": 0.0,
        "distinct": 5,
        "min": 1,
        "max": 5,
        "mean": 3.0,
    }
    words = row("two words")
    assert (words["distinct"], words["min"], words["max"], words["mean"]) == (3, "a", "c", None)
    money = row('quote"d')
    assert (money["nulls"], money["null_pct"], money["distinct"]) == (2, 40.0, 3)
    assert (money["min"], money["max"]) == (Decimal("1.50"), Decimal("6.00"))
    assert money["mean"] == pytest.approx(10 / 3)
    flag = row("flag")
    assert (flag["nulls"], flag["distinct"], flag["min"], flag["max"]) == (1, 2, None, None)
    assert flag["mean"] == 0.75  # the share of true values
    born = row("born")
    assert (born["min"], born["max"], born["distinct"]) == (
        date(2023, 12, 31),
        date(2024, 6, 30),
        3,
    )
    feeling = row("feeling")  # enums sort in declaration order, not alphabetically
    assert (feeling["min"], feeling["max"], feeling["distinct"]) == ("sad", "happy", 3)
    assert row("doc")["distinct"] == 2  # jsonb: equal values
    assert row("raw")["distinct"] == 2  # json has no equality: compared by text
    for name in ("doc", "raw", "tags", "blob", "spot"):
        assert (row(name)["min"], row(name)["max"], row(name)["mean"]) == (None, None, None)
    assert row("tags")["distinct"] == 3
    assert row("spot")["distinct"] == 3  # point has no equality either
    assert frame["nulls"].dtype == "Int64"
    assert frame["mean"].dtype == "Float64"
    await _victim_intact(odd_db)


async def test_profile_is_one_statement(odd_db: Database) -> None:
    with count_queries() as queries:
        await profile("child", database=odd_db)
    profiling = [s for s in queries.statements if "count(DISTINCT" in s]
    assert len(profiling) == 1
    assert profiling[0].count("FROM") == 1  # one scan, no subqueries


async def test_profile_of_an_empty_table(odd_db: Database) -> None:
    frame = await profile("empty", database=odd_db)
    assert frame["rows"].tolist() == [0, 0, 0]
    assert frame["null_pct"].isna().all()
    assert frame["distinct"].tolist() == [0, 0, 0]
    assert frame["min"].isna().all()
    assert frame["mean"].isna().all()


async def test_profile_in_a_session_sees_its_rows(session: AsyncSession) -> None:
    session.add_all([User(email=f"profile{i}@example.com", name=f"P{i % 2}") for i in range(4)])
    await session.flush()
    frame = (await profile("users", session=session)).set_index("column")
    assert frame.loc["email", "rows"] >= 4
    assert frame.loc["email", "distinct"] == frame.loc["email", "rows"]
