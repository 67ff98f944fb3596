"""tk.stream_df: bounded chunks over COPY or a cursor, stopped early or failing cleanly."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

import toolkit as tk
from tests.frames.conftest import _numbers
from toolkit.errors import ToolkitError
from toolkit.frames import _copy_out as copy_out


async def test_stream_df_yields_bounded_chunks_that_add_up(session: AsyncSession) -> None:
    await _numbers(session)
    chunks = [
        chunk
        async for chunk in tk.stream_df(
            "SELECT * FROM numbers ORDER BY n", chunk_size=1_200, session=session, progress=False
        )
    ]
    assert [len(c) for c in chunks] == [1_200, 1_200, 1_200, 1_200, 200]
    whole = pd.concat(chunks, ignore_index=True)
    pd.testing.assert_frame_equal(
        whole, await tk.df("SELECT * FROM numbers ORDER BY n", session=session)
    )


async def test_a_stream_converts_its_chunks_in_its_own_memory_pool(
    session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Arrow's default allocator (mimalloc) keeps what it touched: a stream's conversions,
    pandas' own included, allocate in the stream's pool, and the default is restored."""
    await _numbers(session)
    default = pa.default_memory_pool()
    seen: list[str] = []
    frame = copy_out.build_frame

    def watched(*args: Any) -> pd.DataFrame:
        seen.append(pa.default_memory_pool().backend_name)
        return frame(*args)

    monkeypatch.setattr(copy_out, "build_frame", watched)
    query = "SELECT * FROM numbers ORDER BY n"
    async for _ in tk.stream_df(query, chunk_size=2_000, session=session, progress=False):
        assert pa.default_memory_pool().backend_name == default.backend_name
    assert seen, "the COPY path was not taken"
    assert set(seen) == {copy_out._streaming_pool().backend_name}
    assert pa.default_memory_pool().backend_name == default.backend_name


async def test_a_value_a_stream_cannot_carry_is_a_clear_error(db: tk.Database) -> None:
    query = (
        "SELECT g, CASE WHEN g = 40000 THEN '0044-03-15 BC' ELSE '2020-01-01' END::timestamptz "
        "AS at FROM generate_series(1, 100000) g"
    )
    with pytest.raises(ToolkitError, match="Cast that column to text") as raised:
        async for _ in tk.stream_df(query, chunk_size=10_000, database=db, progress=False):
            pass
    assert "outside years 1-9999" in str(raised.value)
    # The connection went back to the pool cleanly: the next query works.
    assert (await tk.df("SELECT 1 AS one", database=db))["one"].tolist() == [1]


async def test_stream_df_on_its_own_connection_can_stop_early(db: tk.Database) -> None:
    seen = 0
    async for chunk in tk.stream_df(
        "SELECT g FROM generate_series(1, 100000) g", chunk_size=1_000, database=db
    ):
        seen += len(chunk)
        if seen >= 3_000:
            break
    assert seen == 3_000
    # The connection went back to the pool cleanly: the next query works.
    assert (await tk.df("SELECT 1 AS one", database=db))["one"].tolist() == [1]


async def test_stream_df_of_types_copy_cannot_carry_uses_a_cursor(session: AsyncSession) -> None:
    chunks = [
        chunk
        async for chunk in tk.stream_df(
            "SELECT g, make_interval(days => g) AS span FROM generate_series(1, 2500) g",
            chunk_size=1_000,
            session=session,
        )
    ]
    assert [len(c) for c in chunks] == [1_000, 1_000, 500]
    assert chunks[-1]["span"].iloc[-1] == pd.Timedelta(days=2500)


async def test_a_server_error_in_the_middle_of_a_stream_is_raised(db: tk.Database) -> None:
    query = "SELECT 1 / (50000 - g) AS x FROM generate_series(1, 60000) g"
    received: list[int] = []

    async def consume() -> None:
        async for chunk in tk.stream_df(query, chunk_size=10_000, database=db):
            received.append(len(chunk))

    with pytest.raises(tk.DatabaseError, match="division by zero"):
        await consume()
    assert sum(received) < 50_000
    assert (await tk.df("SELECT 2 AS two", database=db))["two"].tolist() == [2]


async def test_stream_df_of_an_empty_result_yields_nothing(session: AsyncSession) -> None:
    chunks = [c async for c in tk.stream_df("SELECT * FROM users WHERE id < 0", session=session)]
    assert chunks == []


async def test_stream_df_of_a_statement_that_cannot_be_planned(session: AsyncSession) -> None:
    chunks = [c async for c in tk.stream_df("SHOW TimeZone", session=session)]
    assert sum(len(c) for c in chunks) == 1
