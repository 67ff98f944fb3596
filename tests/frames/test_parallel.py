"""tk.df(parallel=N) and stream_df(parallel=N): one query over N connections sharing one
snapshot - the same frame as one read of that moment, or one stream and the reason why."""

from __future__ import annotations

import asyncio
import random
import uuid
import warnings
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pandas as pd
import pytest
from sqlalchemy.engine import URL

import toolkit as tk
from tests.conftest import spy_on_parts
from toolkit.database import Database
from toolkit.errors import DatabaseError, ToolkitError, ToolkitWarning
from toolkit.frames import _parallel, _split

ROWS = 40_000


@pytest.fixture(autouse=True)
def fresh_reasons(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test hears each reason for reading in one stream (said once per process)."""
    monkeypatch.setattr(_parallel, "_said", set())


@pytest.fixture
def parts(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The connection each part of a parallel read ran on, in the order they ran."""
    return spy_on_parts(monkeypatch)


@pytest.fixture
async def table(db: Database) -> AsyncIterator[str]:
    """A committed table (other connections must see it) of every kind of column."""
    name = f"par_{uuid.uuid4().hex[:8]}"
    await tk.execute(
        f"""CREATE TABLE {name} AS SELECT
              g AS id,
              CASE WHEN g % 97 = 0 THEN NULL ELSE 'row ' || g || E'\\ttab\\\\' END AS label,
              (g % 1000) / 8.0::numeric AS amount,
              date '2020-01-01' + g % 3000 AS day,
              timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second' AS at,
              g % 2 = 0 AS even,
              CASE WHEN g % 10 = 0 THEN NULL ELSE g % 50 END AS bucket
            FROM generate_series(1, {ROWS}) g""",
        database=db,
    )
    await tk.execute(f"ANALYZE {name}", database=db)
    yield name
    await tk.execute(f"DROP TABLE {name}", database=db)


def by_id(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values("id").reset_index(drop=True)


@pytest.fixture
def no_warnings() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("error", ToolkitWarning)
        yield


async def test_a_table_read_over_two_connections_is_the_single_read(
    db: Database, table: str, parts: list[Any], no_warnings: None
) -> None:
    single = await tk.df(f"SELECT * FROM {table}", database=db)
    parallel = await tk.df(f"SELECT * FROM {table}", database=db, parallel=2)
    assert len({id(raw) for raw in parts}) == 2  # two connections shared the parts
    assert len(parts) == 2 * _split.RANGES_PER_STREAM
    pd.testing.assert_frame_equal(by_id(parallel), by_id(single))


async def test_a_where_clause_is_kept_in_every_block_range(
    db: Database, table: str, parts: list[Any], no_warnings: None
) -> None:
    query = f"SELECT id, label FROM {table} t WHERE t.id % 3 = 0 AND label IS NOT NULL"
    single = await tk.df(query, database=db)
    parallel = await tk.df(query, database=db, parallel=3)
    assert len(parts) > 1
    pd.testing.assert_frame_equal(by_id(parallel), by_id(single))


async def test_bound_parameters_reach_every_part(
    db: Database, table: str, parts: list[Any], no_warnings: None
) -> None:
    query = f"SELECT * FROM {table} WHERE id > :low AND label LIKE :pattern"
    params = {"low": 1_000, "pattern": "row 1%"}
    single = await tk.df(query, params, database=db)
    for kwargs in ({}, {"partition_on": "id"}):
        parallel = await tk.df(query, params, database=db, parallel=2, **kwargs)
        pd.testing.assert_frame_equal(by_id(parallel), by_id(single))
    assert len(parts) > 2


async def test_numeric_scale_is_the_columns_whatever_part_holds_the_widest_value(
    db: Database, parts: list[Any], no_warnings: None
) -> None:
    name = f"par_{uuid.uuid4().hex[:8]}"
    await tk.execute(
        f"CREATE TABLE {name} AS SELECT g AS id, "
        f"CASE WHEN g = {ROWS} THEN 1.125 ELSE (g % 10) / 2.0 END::numeric AS n "
        f"FROM generate_series(1, {ROWS}) g",
        database=db,
    )
    try:
        single = await tk.df(f"SELECT * FROM {name}", database=db)
        parallel = await tk.df(f"SELECT * FROM {name}", database=db, parallel=2)
        assert len(parts) > 1
        assert str(parallel["n"].dtype) == str(single["n"].dtype)
        pd.testing.assert_frame_equal(by_id(parallel), by_id(single))
    finally:
        await tk.execute(f"DROP TABLE {name}", database=db)


@pytest.mark.parametrize(
    "order",
    ["bucket", "bucket DESC", "bucket NULLS FIRST", "bucket DESC NULLS LAST", "2, id"],
)
async def test_rows_keep_the_order_by_that_starts_with_partition_on(
    db: Database, table: str, parts: list[Any], order: str, no_warnings: None
) -> None:
    query = f"SELECT id, bucket, label FROM {table} ORDER BY {order}"
    if order != "2, id":
        query += ", id"  # ties broken the same way in both reads
    single = await tk.df(query, database=db)
    parallel = await tk.df(query, database=db, parallel=3, partition_on="bucket")
    assert len(parts) == 3
    pd.testing.assert_frame_equal(parallel, single)  # the same rows in the same order


async def test_any_query_splits_on_a_named_column(
    db: Database, table: str, parts: list[Any], no_warnings: None
) -> None:
    query = (
        f"SELECT a.id, a.day, b.label AS other FROM {table} a "
        f"JOIN {table} b ON b.id = a.id + 1 WHERE a.even"
    )
    single = await tk.df(query, database=db)
    for column in ("id", "day"):
        parallel = await tk.df(query, database=db, parallel=2, partition_on=column)
        pd.testing.assert_frame_equal(by_id(parallel), by_id(single))
    assert len(parts) == 4


async def test_timestamps_split_into_ranges(
    db: Database, table: str, parts: list[Any], no_warnings: None
) -> None:
    query = f"SELECT id, at FROM {table} ORDER BY at"
    parallel = await tk.df(query, database=db, parallel=4, partition_on="at")
    assert len(parts) == 4
    pd.testing.assert_frame_equal(parallel, await tk.df(query, database=db))


async def test_a_join_without_partition_on_is_read_in_one_stream_saying_why(
    db: Database, table: str, parts: list[Any]
) -> None:
    query = f"SELECT a.id FROM {table} a JOIN {table} b USING (id)"
    with pytest.warns(ToolkitWarning, match="not a plain scan of one table.*partition_on=") as said:
        frame = await tk.df(query, database=db, parallel=2)
    assert said[0].filename == __file__  # the caller's line, not the toolkit's
    assert len(frame) == ROWS
    assert parts == []
    with warnings.catch_warnings():
        warnings.simplefilter("error", ToolkitWarning)  # said once: not again
        await tk.df(query, database=db, parallel=2)


async def test_an_aggregate_is_read_in_one_stream(db: Database, table: str) -> None:
    with pytest.warns(ToolkitWarning, match="Aggregate"):
        frame = await tk.df(f"SELECT count(*) AS n FROM {table}", database=db, parallel=2)
    assert frame["n"].tolist() == [ROWS]


async def test_an_order_by_a_block_split_cannot_keep_reads_in_one_stream(
    db: Database, table: str, parts: list[Any]
) -> None:
    query = f"SELECT * FROM {table} ORDER BY label, id"
    with pytest.warns(ToolkitWarning, match="ORDER BY"):
        frame = await tk.df(query, database=db, parallel=2)
    pd.testing.assert_frame_equal(frame, await tk.df(query, database=db))
    assert parts == []
    with pytest.warns(ToolkitWarning, match="starts with label, not id"):
        await tk.df(query, database=db, parallel=2, partition_on="id")


async def test_a_limit_is_not_split_on_a_column(db: Database, table: str, parts: list[Any]) -> None:
    """Each part would run the LIMIT again, and may pick other rows each time."""
    query = f"SELECT * FROM {table} LIMIT 30000"
    with pytest.warns(ToolkitWarning, match="LIMIT"):
        frame = await tk.df(query, database=db, parallel=2, partition_on="id")
    assert len(frame) == 30_000
    assert parts == []


async def test_a_table_named_with_its_schema_cannot_be_narrowed(
    db: Database, table: str, parts: list[Any]
) -> None:
    with pytest.warns(ToolkitWarning, match="without its schema"):
        frame = await tk.df(f"SELECT * FROM public.{table}", database=db, parallel=2)
    assert len(frame) == ROWS
    assert parts == []


async def test_a_whole_row_reference_is_split_like_any_column(
    db: Database, table: str, parts: list[Any], no_warnings: None
) -> None:
    query = f"SELECT t.id, t::text AS whole FROM {table} t"
    frame = await tk.df(query, database=db, parallel=2)
    assert len(parts) > 1
    pd.testing.assert_frame_equal(by_id(frame), by_id(await tk.df(query, database=db)))


async def test_a_system_column_of_the_table_keeps_the_read_in_one_stream(
    db: Database, table: str, parts: list[Any]
) -> None:
    """A block range is a subquery, which has no ``ctid`` of its own to give."""
    query = f"SELECT id, ctid::text AS place FROM {table}"
    with pytest.warns(ToolkitWarning, match="could not be narrowed"):
        frame = await tk.df(query, database=db, parallel=2)
    pd.testing.assert_frame_equal(by_id(frame), by_id(await tk.df(query, database=db)))
    assert parts == []


async def test_inside_a_session_the_read_is_one_stream_that_sees_its_own_rows(
    db: Database, table: str
) -> None:
    async with db.session() as session, session.begin():
        await tk.execute(f"DELETE FROM {table} WHERE id <= 10", session=session)
        with pytest.warns(ToolkitWarning, match="uncommitted rows"):
            frame = await tk.df(f"SELECT id FROM {table}", session=session, parallel=2)
        assert len(frame) == ROWS - 10
        await session.rollback()


async def test_behind_a_transaction_pooler_the_read_is_one_stream(
    database_url: URL, table: str, parts: list[Any]
) -> None:
    async with Database(database_url, pooler="transaction") as pooled:
        with pytest.warns(ToolkitWarning, match="transaction-mode pooler"):
            frame = await tk.df(f"SELECT * FROM {table}", database=pooled, parallel=2)
    assert len(frame) == ROWS
    assert parts == []


async def test_a_value_only_the_row_path_reads_falls_back_to_it(db: Database, table: str) -> None:
    query = (
        f"SELECT id, CASE WHEN id = {ROWS} THEN date 'infinity' ELSE day END AS day FROM {table}"
    )
    with pytest.warns(ToolkitWarning, match="COPY's text cannot carry"):
        frame = await tk.df(query, database=db, parallel=2)
    pd.testing.assert_frame_equal(by_id(frame), by_id(await tk.df(query, database=db)))


async def test_an_empty_result_has_the_single_reads_columns(
    db: Database, table: str, no_warnings: None
) -> None:
    query = f"SELECT * FROM {table} WHERE id < 0"
    frame = await tk.df(query, database=db, parallel=2)
    pd.testing.assert_frame_equal(frame, await tk.df(query, database=db))


async def test_a_failing_part_raises_the_servers_error_and_returns_every_connection(
    db: Database, table: str
) -> None:
    with pytest.raises(DatabaseError, match="division by zero"):
        await tk.df(f"SELECT id, 1 / (id - {ROWS - 5}) AS x FROM {table}", database=db, parallel=3)
    assert db.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    assert len(await tk.df(f"SELECT id FROM {table}", database=db, parallel=3)) == ROWS


async def test_auto_reads_a_small_result_in_one_stream_without_a_word(
    db: Database, table: str, parts: list[Any], no_warnings: None
) -> None:
    frame = await tk.df(f"SELECT * FROM {table}", database=db, parallel="auto")
    assert len(frame) == ROWS
    assert parts == []


async def test_auto_splits_a_result_the_estimate_finds_large(
    db: Database, table: str, parts: list[Any], monkeypatch: pytest.MonkeyPatch, no_warnings: None
) -> None:
    """One connection per AUTO_ROWS_PER_STREAM estimated rows (4 here), at most one per
    CPU - of half the CPUs, as the server shares this machine (3 of 6)."""
    monkeypatch.setattr(_parallel, "AUTO_MIN_ROWS", ROWS // 2)
    monkeypatch.setattr(_parallel, "AUTO_ROWS_PER_STREAM", ROWS // 4)
    monkeypatch.setattr(_parallel.os, "cpu_count", lambda: 6)
    frame = await tk.df(f"SELECT * FROM {table}", database=db, parallel="auto")
    assert len(frame) == ROWS
    assert len({id(raw) for raw in parts}) == 3


async def test_auto_on_two_cores_shared_with_the_server_reads_in_one_stream(
    db: Database, table: str, parts: list[Any], monkeypatch: pytest.MonkeyPatch, no_warnings: None
) -> None:
    monkeypatch.setattr(_parallel, "AUTO_MIN_ROWS", ROWS // 2)
    monkeypatch.setattr(_parallel.os, "cpu_count", lambda: 2)
    frame = await tk.df(f"SELECT * FROM {table}", database=db, parallel="auto")
    assert len(frame) == ROWS
    assert parts == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"parallel": 0}, "whole number"),
        ({"parallel": "two"}, "whole number"),
        ({"parallel": True}, "whole number"),
        ({"partition_on": "id"}, "pass parallel=N"),
        ({"parallel": 16}, "pool holds 15"),
    ],
)
async def test_a_meaningless_parallel_read_is_refused(
    db: Database, table: str, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        await tk.df(f"SELECT * FROM {table}", database=db, **kwargs)


@pytest.mark.parametrize(
    ("column", "message"),
    [("nope", "not a column of the result"), ("label", "a text column")],
)
async def test_partition_on_must_name_a_range_column_of_the_result(
    db: Database, table: str, column: str, message: str
) -> None:
    with pytest.raises(ToolkitError, match=message):
        await tk.df(f"SELECT * FROM {table}", database=db, parallel=2, partition_on=column)


async def test_stream_df_streams_the_parts_chunk_by_chunk(
    db: Database, table: str, no_warnings: None
) -> None:
    chunks = [
        chunk
        async for chunk in tk.stream_df(
            f"SELECT * FROM {table}", database=db, parallel=2, chunk_size=3_000, progress=False
        )
    ]
    assert max(len(c) for c in chunks) <= 3_000
    assert len(chunks) >= 2 * _split.RANGES_PER_STREAM
    whole = pd.concat(chunks, ignore_index=True)
    pd.testing.assert_frame_equal(
        by_id(whole), by_id(await tk.df(f"SELECT * FROM {table}", database=db))
    )


async def test_stream_df_keeps_the_order_by_on_partition_on(
    db: Database, table: str, no_warnings: None
) -> None:
    query = f"SELECT id, bucket FROM {table} ORDER BY bucket DESC, id"
    chunks = [
        chunk
        async for chunk in tk.stream_df(
            query, database=db, parallel=3, partition_on="bucket", chunk_size=5_000, progress=False
        )
    ]
    whole = pd.concat(chunks, ignore_index=True)
    pd.testing.assert_frame_equal(whole, await tk.df(query, database=db))


async def test_stream_df_stopped_early_returns_every_connection(
    db: Database, table: str, no_warnings: None
) -> None:
    """As in a notebook: the loop is left, and the generator closed when it is dropped."""
    async for _chunk in tk.stream_df(
        f"SELECT * FROM {table}", database=db, parallel=3, chunk_size=1_000, progress=False
    ):
        break
    for _ in range(500):
        if db.engine.pool.checkedout() == 0:  # type: ignore[attr-defined]
            break
        await asyncio.sleep(0.01)
    assert db.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    assert len(await tk.df(f"SELECT id FROM {table}", database=db, parallel=3)) == ROWS


async def test_the_frame_is_one_moment_while_rows_are_being_written(
    db: Database, parts: list[Any], no_warnings: None
) -> None:
    """Transfers between accounts commit one after another while the table is read in
    parallel; each frame must be the ledger after some whole prefix of the transfers -
    exactly what a single read at one moment gives. (Parts read at different moments
    would see a transfer's one side, or an updated row twice or not at all.)"""
    name = f"ledger_{uuid.uuid4().hex[:8]}"
    accounts = 20_000
    await tk.execute(
        f"CREATE TABLE {name} (id int PRIMARY KEY, balance bigint NOT NULL, last int NOT NULL)",
        database=db,
    )
    await tk.execute(
        f"INSERT INTO {name} SELECT g, 1000, 0 FROM generate_series(1, {accounts}) g",
        database=db,
    )
    transfers: list[tuple[int, int, int]] = []
    stop = asyncio.Event()

    async def write() -> None:
        rng = random.Random(7)
        while not stop.is_set():
            a, b = rng.sample(range(1, accounts + 1), 2)
            amount = rng.randint(1, 50)
            await tk.execute(
                f"UPDATE {name} SET balance = balance + CASE WHEN id = :a THEN -:x ELSE :x END, "
                "last = :seq WHERE id IN (:a, :b)",
                {"a": a, "b": b, "x": amount, "seq": len(transfers) + 1},
                database=db,
            )
            transfers.append((a, b, amount))

    writer = asyncio.ensure_future(write())
    try:
        for _ in range(3):
            parts.clear()
            before = len(transfers)
            await asyncio.sleep(0.05)
            frame = await tk.df(f"SELECT * FROM {name}", database=db, parallel=3)
            assert len(transfers) > before  # written while it was read
            seen = int(frame["last"].max())
            balance = dict.fromkeys(range(1, accounts + 1), 1000)
            last = dict.fromkeys(range(1, accounts + 1), 0)
            for seq, (a, b, amount) in enumerate(transfers[:seen], 1):
                balance[a] -= amount
                balance[b] += amount
                last[a] = last[b] = seq
            expected = pd.DataFrame(
                {
                    "id": list(balance),
                    "balance": list(balance.values()),
                    "last": list(last.values()),
                }
            ).astype({"id": "Int32", "balance": "Int64", "last": "Int32"})
            pd.testing.assert_frame_equal(by_id(frame), expected)
    finally:
        stop.set()
        await writer
        await tk.execute(f"DROP TABLE {name}", database=db)
    assert len({id(raw) for raw in parts}) == 3


async def test_to_parquet_writes_a_parallel_read(
    db: Database, table: str, tmp_path: Any, no_warnings: None
) -> None:
    path = tmp_path / "parts.parquet"
    rows = await tk.to_parquet(
        f"SELECT id, label, day FROM {table}", path, database=db, parallel=2, chunk_size=4_000
    )
    assert rows == ROWS
    written = pd.read_parquet(path).astype({"id": "Int32", "label": "string"})
    single = await tk.df(f"SELECT id, label, day FROM {table}", database=db)
    pd.testing.assert_frame_equal(by_id(written), by_id(single), check_dtype=False)


async def test_a_cancelled_parallel_read_stops_every_part_on_the_server(
    db: Database, table: str, parts: list[Any], no_warnings: None
) -> None:
    """As the notebook's interrupt does: each connection's COPY is cancelled on the server,
    and every connection goes back to the pool."""
    query = f"SELECT id FROM {table} WHERE pg_sleep(0.001) IS NOT NULL"
    reading = asyncio.ensure_future(tk.df(query, database=db, parallel=2))
    for _ in range(200):  # until both parts are under way
        if len({id(raw) for raw in parts}) == 2:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    reading.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reading
    assert db.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    watch = (
        "SELECT count(*) AS n FROM pg_stat_activity WHERE state = 'active' "
        "AND query LIKE '%pg_sleep(0.001) IS NOT NULL%' AND pid <> pg_backend_pid()"
    )
    for _ in range(100):
        if int((await tk.df(watch, database=db))["n"].iloc[0]) == 0:
            break
        await asyncio.sleep(0.02)
    assert int((await tk.df(watch, database=db))["n"].iloc[0]) == 0
