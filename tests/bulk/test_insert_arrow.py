"""tk.bulk_insert of Arrow input - a Parquet file, a directory of them, a RecordBatchReader
- into an existing table, a batch at a time, with defaults and keys, atomic."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

import toolkit as tk
from tests.bulk.conftest import _count
from tests.frames.conftest import EVERY_KIND_TABLE, _every_kind, _read_back
from toolkit.errors import ToolkitError
from toolkit.models import User


async def test_a_parquet_file_goes_into_an_existing_table_as_written(
    session: AsyncSession, tmp_path: Path
) -> None:
    await session.execute(text(EVERY_KIND_TABLE.format(name="every_kind")))
    original = _every_kind(2_500)
    path = tmp_path / "every_kind.parquet"
    pq.write_table(original, path)
    assert await tk.bulk_insert("every_kind", path, batch_size=1_000, session=session) == 2_500
    assert (await _read_back(session, "every_kind", original.schema)).equals(original)


async def test_a_record_batch_reader_goes_in_as_written(session: AsyncSession) -> None:
    await session.execute(text(EVERY_KIND_TABLE.format(name="every_kind")))
    original = _every_kind(2_500)
    reader = pa.RecordBatchReader.from_batches(
        original.schema, original.to_batches(max_chunksize=700)
    )
    assert await tk.bulk_insert("every_kind", reader, session=session) == 2_500
    assert (await _read_back(session, "every_kind", original.schema)).equals(original)


async def test_a_directory_of_parquet_files_goes_in_as_written(
    session: AsyncSession, tmp_path: Path
) -> None:
    await session.execute(text(EVERY_KIND_TABLE.format(name="every_kind")))
    original = _every_kind(3_000)
    pq.write_table(original.slice(0, 1_200), tmp_path / "part-0.parquet")
    pq.write_table(original.slice(1_200), tmp_path / "part-1.parquet")
    assert await tk.bulk_insert("every_kind", str(tmp_path), session=session) == 3_000
    assert (await _read_back(session, "every_kind", original.schema)).equals(original)


def _users(rows: int) -> pa.Table:
    return pa.table(
        {
            "email": [f"arrow{i}@example.com" for i in range(rows)],
            "name": [f"Arrow {i}" for i in range(rows)],
        }
    )


async def test_every_batch_gets_the_python_side_and_the_server_defaults(
    session: AsyncSession,
) -> None:
    assert await tk.bulk_insert(User, _users(2_500), batch_size=1_000, session=session) == 2_500
    assert await _count(session, User.is_active, User.created_at.is_not(None)) == 2_500


async def test_returning_gives_the_keys_of_every_batch_in_row_order(
    session: AsyncSession,
) -> None:
    ids = await tk.bulk_insert(
        User, _users(2_500), returning=True, batch_size=1_000, session=session
    )
    assert isinstance(ids, list)
    assert len(set(ids)) == 2_500
    rows = (await session.execute(select(User.id, User.name))).all()
    names = dict(rows)
    assert [names[i] for i in ids] == [f"Arrow {i}" for i in range(2_500)]


async def test_a_text_too_long_in_a_late_batch_names_its_row_and_leaves_the_table_as_it_was(
    session: AsyncSession, tmp_path: Path
) -> None:
    await session.execute(text("CREATE TABLE codes (n bigint, code varchar(3))"))
    await session.execute(text("INSERT INTO codes VALUES (-1, 'old')"))
    codes = ["abc"] * 5_000
    codes[4_321] = "abcd"
    path = tmp_path / "codes.parquet"
    pq.write_table(pa.table({"n": pa.array(range(5_000)), "code": codes}), path)
    with pytest.raises(
        tk.DatabaseError, match=r"^column 'code', row 4321 into character varying\(3\): value too"
    ):
        await tk.bulk_insert("codes", path, batch_size=500, session=session)
    kept = await tk.df("SELECT n, code FROM codes", session=session)
    assert kept.to_dict("records") == [{"n": -1, "code": "old"}]
    await tk.bulk_insert("codes", pa.table({"n": [1], "code": ["new"]}), session=session)
    assert len(await tk.df("SELECT * FROM codes", session=session)) == 2  # still usable


async def test_a_column_the_model_lacks_is_refused_naming_the_columns(
    session: AsyncSession,
) -> None:
    extra = _users(3).append_column("nickname", pa.array(["a", "b", "c"]))
    with pytest.raises(ToolkitError, match=r"users has no column \['nickname'\]; columns:"):
        await tk.bulk_insert(User, extra, session=session)
    assert await _count(session) == 0
