"""The COPY path of tk.df: taken for large results, parsed while it arrives, back-pressured."""

from __future__ import annotations

import threading
from decimal import Decimal

import pandas as pd
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

import toolkit as tk
from tests.conftest import spy_on_copy
from tests.frames.conftest import BIG, _numbers
from toolkit.frames import _copy_out as copy_out
from toolkit.frames import _estimate
from toolkit.frames import _feed as feed
from toolkit.frames._feed import Feed


async def test_a_large_result_has_the_same_dtypes_as_a_small_one(session: AsyncSession) -> None:
    await _numbers(session)
    many = await tk.df("SELECT * FROM numbers ORDER BY n", session=session)
    few = await tk.df("SELECT * FROM numbers WHERE n <= 3 ORDER BY n", session=session)
    assert len(many) == BIG
    assert many["n"].sum() == BIG * (BIG + 1) // 2
    assert few.dtypes.to_dict() == many.dtypes.to_dict()
    pd.testing.assert_frame_equal(few, many.head(3))


async def test_a_copy_read_faster_than_its_parser_is_held_back_and_complete(
    session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _numbers(session)
    monkeypatch.setattr(copy_out, "_READ_LIMIT", 1024)  # the socket waits for the parser
    queued: list[int] = []
    put = Feed.put

    async def watched(feed: Feed, chunk: bytes) -> None:
        await put(feed, chunk)
        queued.append(feed._sent - feed.received)

    monkeypatch.setattr(Feed, "put", watched)
    frame = await tk.df("SELECT * FROM numbers ORDER BY n", session=session)
    assert queued, "the COPY path was not taken"
    assert max(queued) <= 1024
    assert frame["n"].tolist() == list(range(1, BIG + 1))


async def test_a_large_result_arriving_in_small_pieces_waits_to_read_bigger_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Past its first MiB, a small piece means the client outpaces the server: the socket
    is read again a moment later, in one piece. Big pieces and small results never wait."""
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(feed.asyncio, "sleep", sleep)
    pipe = Feed()
    await pipe.put(b"x" * 1000)  # small, but early in the result
    await pipe.put(b"x" * feed._PACE_FROM)  # big
    assert waits == []
    await pipe.put(b"x" * 1000)
    assert waits == [feed._PACE]


def test_the_parser_is_handed_whole_blocks_as_they_fill() -> None:
    """Arrow's parse costs less in full blocks than in what happened to have arrived;
    each block ends at a row's end (a row longer than a block is completed)."""
    pipe = Feed()
    blocks: list[bytes] = []
    parser = threading.Thread(target=lambda: blocks.extend(pipe.read(4) for _ in range(5)))
    parser.start()
    pipe._chunks.put(b"ab")
    parser.join(0.05)  # the parser is waiting: a short block would have been read by now
    for chunk in (b"c\ne", b"f\n", b"gh\nlong", b"er than", b" a block\nz\n"):
        pipe._chunks.put(chunk)
    pipe.end()
    parser.join()
    assert blocks == [b"abc\n", b"ef\n", b"gh\n", b"longer than a block\n", b"z\n"]


async def test_a_copied_query_with_timestamps_keeps_its_order_names_and_comments(
    session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """COPY selects timestamps in binary form around the query: its ORDER BY, duplicate
    column names, bound parameters and a trailing comment all survive that."""
    query = (
        "SELECT g AS n, timestamptz '2020-01-01' + g * interval '1 second' AS n, g AS at "
        "FROM generate_series(1, :rows) g ORDER BY g DESC -- newest first"
    )
    monkeypatch.setattr(_estimate, "COPY_THRESHOLD", 10)
    copied = spy_on_copy(monkeypatch)
    frame = await tk.df(query, {"rows": 3_000}, session=session)
    assert copied == [True]
    assert list(frame.columns) == ["n", "n", "at"]
    assert frame.iloc[:, 0].tolist() == list(range(3_000, 0, -1))
    assert frame.iloc[0, 1] == pd.Timestamp("2020-01-01 00:50:00", tz="UTC")


async def test_copy_leaves_the_session_settings_as_they_were(session: AsyncSession) -> None:
    await _numbers(session)
    await session.execute(text("SET LOCAL TimeZone = 'Asia/Kolkata'"))
    frame = await tk.df("SELECT at FROM numbers", session=session)
    assert str(frame["at"].dt.tz) == "UTC"
    assert await session.scalar(text("SHOW TimeZone")) == "Asia/Kolkata"


async def test_parameters_are_bound_on_the_copy_path_too(session: AsyncSession) -> None:
    await _numbers(session)
    hostile = "x' OR '1'='1"
    frame = await tk.df(
        "SELECT n, :tag AS tag FROM numbers WHERE n > :floor",
        {"tag": hostile, "floor": 10},
        session=session,
    )
    assert len(frame) == BIG - 10
    assert set(frame["tag"]) == {hostile}


@pytest.mark.parametrize("late", ["1.2345", "2.1000"], ids=["digits", "trailing-zeros"])
async def test_a_numeric_scale_beyond_the_first_rows_is_kept_exactly(
    session: AsyncSession, late: str
) -> None:
    """A longer fraction after thousands of shorter ones still gives the column's true
    scale, the one the row path finds - also when its extra digits are zeros (Arrow's
    cast would take '2.1000' at a scale of 1 without complaint)."""
    await session.execute(
        text(
            "CREATE TEMP TABLE amounts ON COMMIT DROP AS SELECT g AS n, "
            f"CASE WHEN g = 4000 THEN {late} ELSE round(g / 10.0, 1) END::numeric AS amount "
            "FROM generate_series(1, 5000) g"
        )
    )
    await session.execute(text("ANALYZE amounts"))
    many = await tk.df("SELECT amount FROM amounts ORDER BY n", session=session)
    few = await tk.df("SELECT amount FROM amounts WHERE n >= 3999 AND n <= 4001", session=session)
    assert str(many["amount"].dtype) == str(few["amount"].dtype) == "decimal128(38, 4)[pyarrow]"
    assert many["amount"].iloc[3999] == Decimal(late)
    assert many["amount"].iloc[0] == Decimal("0.1")
    streamed = [c async for c in tk.stream_df("SELECT amount FROM amounts", session=session)]
    assert [str(c["amount"].dtype) for c in streamed] == ["decimal128(38, 4)[pyarrow]"]
