"""toolkit.frames: queries and in-memory objects to DataFrames."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

import toolkit as tk
from tests.conftest import spy_on_copy
from toolkit import pgtypes, queries
from toolkit.errors import ToolkitError
from toolkit.frames import copy_out, feed
from toolkit.sql import _statements as statements
from toolkit.frames.feed import _Feed
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


# Large results, streaming and writing ------------------------------------------------

BIG = 5_000


async def _numbers(session: AsyncSession, rows: int = BIG) -> None:
    await session.execute(
        text(
            "CREATE TEMP TABLE numbers ON COMMIT DROP AS "
            "SELECT g AS n, g::text AS label, (g % 2 = 0) AS even, "
            "now() - make_interval(secs => g) AS at FROM generate_series(1, :rows) g"
        ),
        {"rows": rows},
    )
    await session.execute(text("ANALYZE numbers"))


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
    put = _Feed.put

    async def watched(feed: _Feed, chunk: bytes) -> None:
        await put(feed, chunk)
        queued.append(feed._sent - feed.received)

    monkeypatch.setattr(_Feed, "put", watched)
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
    pipe = _Feed()
    await pipe.put(b"x" * 1000)  # small, but early in the result
    await pipe.put(b"x" * feed._PACE_FROM)  # big
    assert waits == []
    await pipe.put(b"x" * 1000)
    assert waits == [feed._PACE]


def test_the_parser_is_handed_whole_blocks_as_they_fill() -> None:
    """Arrow's parse costs less in full blocks than in what happened to have arrived;
    each block ends at a row's end (a row longer than a block is completed)."""
    pipe = _Feed()
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
    monkeypatch.setattr(copy_out, "COPY_THRESHOLD", 10)
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
    frame = pgtypes.frame

    def watched(*args: Any) -> pd.DataFrame:
        seen.append(pa.default_memory_pool().backend_name)
        return frame(*args)

    monkeypatch.setattr(pgtypes, "frame", watched)
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


async def test_stream_df_of_an_empty_result_yields_nothing(session: AsyncSession) -> None:
    chunks = [c async for c in tk.stream_df("SELECT * FROM users WHERE id < 0", session=session)]
    assert chunks == []


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


async def test_stream_df_of_a_statement_that_cannot_be_planned(session: AsyncSession) -> None:
    chunks = [c async for c in tk.stream_df("SHOW TimeZone", session=session)]
    assert sum(len(c) for c in chunks) == 1


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
