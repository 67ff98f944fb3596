"""tk.to_table from Arrow input - a Parquet file, a directory of them, a RecordBatchReader,
a Table - streamed a batch at a time, checked as a DataFrame is, in one transaction."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import decimal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

import toolkit as tk
from tests.frames.conftest import _every_kind, _read_back
from toolkit.errors import IntegrityViolation, ToolkitError, UndefinedColumn


async def test_a_parquet_file_becomes_a_table_that_reads_back_as_written(
    session: AsyncSession, tmp_path: Path
) -> None:
    original = _every_kind(2_500)
    path = tmp_path / "every_kind.parquet"
    pq.write_table(original, path)
    assert await tk.to_table(path, "from_parquet", batch_size=1_000, session=session) == 2_500
    assert (await _read_back(session, "from_parquet", original.schema)).equals(original)


async def test_a_record_batch_reader_and_a_table_read_back_as_written(
    session: AsyncSession,
) -> None:
    original = _every_kind(2_500)
    reader = pa.RecordBatchReader.from_batches(
        original.schema, original.to_batches(max_chunksize=700)
    )
    assert await tk.to_table(reader, "from_reader", session=session) == 2_500
    assert await tk.to_table(original, "from_table", batch_size=1_000, session=session) == 2_500
    assert (await _read_back(session, "from_reader", original.schema)).equals(original)
    assert (await _read_back(session, "from_table", original.schema)).equals(original)


async def test_a_directory_of_parquet_files_is_read_file_by_file_in_name_order(
    session: AsyncSession, tmp_path: Path
) -> None:
    original = _every_kind(3_000)
    pq.write_table(original.slice(1_800), tmp_path / "part-1.parquet")  # written first
    pq.write_table(original.slice(0, 1_800), tmp_path / "part-0.parquet")
    (tmp_path / "_SUCCESS").touch()  # a writer's marker, not data
    assert await tk.to_table(tmp_path, "from_directory", batch_size=1_000, session=session) == 3_000
    assert (await _read_back(session, "from_directory", original.schema)).equals(original)
    inserted = await tk.df("SELECT n FROM from_directory ORDER BY ctid", session=session)
    assert inserted["n"].tolist() == list(range(3_000))


async def test_a_new_table_takes_its_column_types_from_the_arrow_schema(
    session: AsyncSession,
) -> None:
    source = pa.table(
        {
            "small": pa.array([1], pa.int16()),
            "whole": pa.array([2], pa.int32()),
            "big": pa.array([3], pa.int64()),
            "single": pa.array([0.5], pa.float32()),
            "double": pa.array([0.25], pa.float64()),
            "label": pa.array(["x"], pa.large_string()),
            "day": pa.array([dt.date(2024, 1, 1)]),
            "clock": pa.array([dt.time(12, 30)], pa.time64("us")),
            "at": pa.array([dt.datetime(2024, 1, 1, 12)], pa.timestamp("ms")),
            "at_zone": pa.array([dt.datetime(2024, 1, 1, 12)], pa.timestamp("us", "Europe/Paris")),
            "amount": pa.array([decimal.Decimal("1.50")], pa.decimal128(10, 2)),
            "flag": pa.array([True]),
            "raw": pa.array([b"\x00\xff"], pa.binary()),
            "span": pa.array([dt.timedelta(hours=1)], pa.duration("us")),
            "tags": pa.array([["a", None]], pa.list_(pa.string())),
            "point": pa.array([{"x": 1, "y": None}], pa.struct({"x": pa.int64(), "y": pa.int64()})),
        }
    )
    await tk.to_table(source, "typed_by_arrow", session=session)
    declared = await tk.df(
        "SELECT attname, format_type(atttypid, atttypmod) AS type FROM pg_attribute "
        "WHERE attrelid = 'typed_by_arrow'::regclass AND attnum > 0 ORDER BY attnum",
        session=session,
    )
    assert dict(zip(declared["attname"], declared["type"], strict=True)) == {
        "small": "smallint",
        "whole": "integer",
        "big": "bigint",
        "single": "real",
        "double": "double precision",
        "label": "text",
        "day": "date",
        "clock": "time without time zone",
        "at": "timestamp without time zone",
        "at_zone": "timestamp with time zone",
        "amount": "numeric",
        "flag": "boolean",
        "raw": "bytea",
        "span": "interval",
        "tags": "jsonb",
        "point": "jsonb",
    }
    back = (await tk.df("SELECT raw, span, tags, point FROM typed_by_arrow", session=session)).iloc[
        0
    ]
    assert (back["raw"], back["span"]) == (b"\x00\xff", dt.timedelta(hours=1))
    assert (back["tags"], back["point"]) == (["a", None], {"x": 1, "y": None})


@contextlib.contextmanager
def _arrow_peak() -> Iterator[Callable[[], int]]:
    """The most memory Arrow's allocator held, above what it held before, sampled from a
    thread while the block runs."""
    base = pa.total_allocated_bytes()
    peak = base
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.0005):
            peak = max(peak, pa.total_allocated_bytes())

    thread = threading.Thread(target=sample)
    thread.start()
    try:
        yield lambda: peak - base
    finally:
        done.set()
        thread.join()


async def test_a_parquet_file_is_streamed_never_held_whole_in_memory(
    session: AsyncSession, tmp_path: Path
) -> None:
    """The file is one row group of values that do not compress: reading it whole, or a
    row group at a time, would hold its size in Arrow memory while it is written."""
    rows = 2_000_000
    values = pa.array(np.random.default_rng(0).integers(0, 2**62, rows))
    whole = values.nbytes
    path = tmp_path / "narrow.parquet"
    pq.write_table(pa.table({"n": values}), path, row_group_size=rows)
    del values
    with _arrow_peak() as peak:
        written = await tk.to_table(path, "streamed", batch_size=10_000, session=session)
    assert written == rows
    assert peak() < whole / 3


async def test_a_reader_is_pulled_no_further_than_the_batch_the_server_refused(
    session: AsyncSession,
) -> None:
    await session.execute(text("CREATE TABLE short_labels (label varchar(3))"))
    pulled: list[int] = []

    def batches() -> Iterator[pa.RecordBatch]:
        for k in range(10):
            pulled.append(k)
            labels = ["ok"] * 100
            if k == 3:
                labels[50] = "too long"
            yield pa.record_batch({"label": labels})

    reader = pa.RecordBatchReader.from_batches(pa.schema({"label": pa.string()}), batches())
    with pytest.raises(
        tk.DatabaseError, match=r"column 'label', row 350 into character varying\(3\)"
    ):
        await tk.to_table(reader, "short_labels", if_exists="append", session=session)
    assert pulled == [0, 1, 2, 3]


async def test_a_null_refused_in_a_late_batch_names_its_row_and_leaves_the_table_as_it_was(
    session: AsyncSession, tmp_path: Path
) -> None:
    await session.execute(text("CREATE TABLE kept (n bigint, x int NOT NULL)"))
    await session.execute(text("INSERT INTO kept VALUES (-2, 20), (-1, 10)"))
    await session.commit()  # releases the savepoint; the outer test transaction remains
    x = pa.array([None if i == 4_321 else i for i in range(5_000)], pa.int32())
    path = tmp_path / "late_null.parquet"
    pq.write_table(pa.table({"n": pa.array(range(5_000)), "x": x}), path)
    with pytest.raises(IntegrityViolation, match=r'^row 4321: null value in column "x"'):
        await tk.to_table(path, "kept", if_exists="append", batch_size=500, session=session)
    kept = await tk.df("SELECT n, x FROM kept ORDER BY n", session=session)
    assert kept.to_dict("records") == [{"n": -2, "x": 20}, {"n": -1, "x": 10}]


async def test_a_value_refused_before_it_is_sent_is_named_by_its_row_in_the_whole_input(
    session: AsyncSession,
) -> None:
    """The same checks as for a DataFrame (here: nanoseconds, which PostgreSQL would drop),
    counting rows across batches."""
    ticks = [i * 1_000 for i in range(3_000)]
    ticks[2_500] += 1
    source = pa.table({"at": pa.array(ticks, pa.timestamp("ns"))})
    with pytest.raises(
        ToolkitError, match=r"column 'at', row 2500 into timestamp .* has nanoseconds"
    ):
        await tk.to_table(source, "no_nanoseconds", batch_size=1_000, session=session)
    missing = await tk.df("SELECT to_regclass('no_nanoseconds') IS NULL AS gone", session=session)
    assert missing["gone"].tolist() == [True]


async def test_a_path_that_does_not_exist_is_refused_naming_it(
    session: AsyncSession, tmp_path: Path
) -> None:
    with pytest.raises(ToolkitError, match=r"no file or directory '.*missing\.parquet' - check"):
        await tk.to_table(tmp_path / "missing.parquet", "never_made", session=session)


async def test_a_file_that_is_not_parquet_is_refused_saying_to_pass_a_dataframe(
    session: AsyncSession, tmp_path: Path
) -> None:
    path = tmp_path / "data.csv"
    path.write_text("n,label\n1,a\n")
    with pytest.raises(ToolkitError, match=r"data\.csv' is not a Parquet file .* the DataFrame"):
        await tk.to_table(str(path), "never_made", session=session)


async def test_a_directory_without_parquet_files_is_refused(
    session: AsyncSession, tmp_path: Path
) -> None:
    (tmp_path / "_SUCCESS").touch()
    with pytest.raises(ToolkitError, match="holds no Parquet files"):
        await tk.to_table(tmp_path, "never_made", session=session)


async def test_files_of_a_directory_with_other_columns_are_refused_naming_both(
    session: AsyncSession, tmp_path: Path
) -> None:
    pq.write_table(pa.table({"n": [1]}), tmp_path / "a.parquet")
    pq.write_table(pa.table({"m": [2]}), tmp_path / "b.parquet")
    with pytest.raises(ToolkitError, match=r"b\.parquet' has the columns \['m'\], where .*'n'"):
        await tk.to_table(tmp_path, "never_made", session=session)


@pytest.mark.parametrize(
    "source",
    [pd.DataFrame({"n": [1], "extra": ["x"]}), pa.table({"n": [1], "extra": ["x"]})],
    ids=["DataFrame", "Arrow"],
)
async def test_a_column_the_table_lacks_is_refused_before_a_row_is_sent(
    session: AsyncSession, source: pd.DataFrame | pa.Table
) -> None:
    await session.execute(text("CREATE TABLE narrow (n bigint)"))
    with pytest.raises(
        UndefinedColumn, match=r"table 'narrow' has no column 'extra' \(its columns: n\) - add"
    ):
        await tk.to_table(source, "narrow", if_exists="append", session=session)


async def test_a_cancelled_write_waits_for_the_batch_being_read_and_writes_nothing(
    db: tk.Database,
) -> None:
    """An interrupt cancels the write; the read in flight (in a worker thread) is waited
    for, so the input is closed only once nothing reads it."""
    reading, release = threading.Event(), threading.Event()

    def batches() -> Iterator[pa.RecordBatch]:
        yield pa.record_batch({"n": [1]})
        reading.set()
        release.wait(30)
        yield pa.record_batch({"n": [2]})

    reader = pa.RecordBatchReader.from_batches(pa.schema({"n": pa.int64()}), batches())
    task = asyncio.ensure_future(tk.to_table(reader, "cancelled_midway", database=db))
    await asyncio.to_thread(reading.wait, 30)
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=0.2)
    assert not done, "the write ended while its reader was still being read"
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    gone = await tk.df("SELECT to_regclass('cancelled_midway') IS NULL AS gone", database=db)
    assert gone["gone"].tolist() == [True]
