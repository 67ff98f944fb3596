"""tk.to_parquet: a result streamed into a Parquet file, with tk.df's columns, all or nothing."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

import toolkit as tk
from tests.frames.conftest import _numbers
from toolkit.errors import ToolkitError, UndefinedTable


async def test_a_result_larger_than_a_chunk_reads_back_as_tk_df_gives_it(
    session: AsyncSession, tmp_path: Path
) -> None:
    await _numbers(session, 5_000)
    query = "SELECT n, label, even, at, n::numeric / 7 AS ratio FROM numbers ORDER BY n"
    path = tmp_path / "numbers.parquet"
    written = await tk.to_parquet(query, path, chunk_size=1_000, session=session, progress=False)
    assert written == 5_000
    assert pq.ParquetFile(path).metadata.num_row_groups == 5  # one per chunk
    expected = await tk.df(query, session=session)
    back = pq.read_table(path)
    assert back.equals(pa.Table.from_pandas(expected, preserve_index=False))
    numpy_columns = ["n", "label", "even", "at"]  # pandas' metadata restores these dtypes
    pd.testing.assert_frame_equal(pd.read_parquet(path)[numpy_columns], expected[numpy_columns])


async def test_an_empty_result_writes_its_columns_and_no_rows(
    session: AsyncSession, tmp_path: Path
) -> None:
    path = tmp_path / "empty.parquet"
    query = "SELECT 1::int AS n, 'x'::text AS label WHERE false"
    assert await tk.to_parquet(query, path, session=session) == 0
    back = pd.read_parquet(path)
    assert list(back.columns) == ["n", "label"]
    assert len(back) == 0


async def test_a_failing_query_leaves_an_existing_file_as_it_was_and_no_partial_one(
    session: AsyncSession, tmp_path: Path
) -> None:
    path = tmp_path / "kept.parquet"
    path.write_bytes(b"the previous file")
    with pytest.raises(UndefinedTable):
        await tk.to_parquet("SELECT * FROM no_such_table", path, session=session)
    assert path.read_bytes() == b"the previous file"
    assert not (tmp_path / ".kept.parquet.partial").exists()


async def test_a_later_chunk_with_more_decimal_places_is_refused_by_column_name(
    session: AsyncSession, tmp_path: Path
) -> None:
    path = tmp_path / "scales.parquet"
    query = (
        "SELECT g AS n, CASE WHEN g <= 10 THEN 1.5 ELSE 1.12345 END AS amount "
        "FROM generate_series(1, 20) g ORDER BY g"
    )
    with pytest.raises(ToolkitError, match=r"column 'amount'.*::numeric"):
        await tk.to_parquet(query, path, chunk_size=10, session=session)
    assert not path.exists()


async def test_a_later_chunk_with_fewer_decimal_places_is_written_exactly(
    session: AsyncSession, tmp_path: Path
) -> None:
    path = tmp_path / "scales.parquet"
    query = (
        "SELECT g AS n, CASE WHEN g <= 10 THEN 1.12345 ELSE 2.5 END AS amount "
        "FROM generate_series(1, 20) g ORDER BY g"
    )
    assert await tk.to_parquet(query, path, chunk_size=10, session=session) == 20
    amounts = pd.read_parquet(path)["amount"].astype(str).tolist()
    assert amounts[:2] == ["1.12345", "1.12345"]
    assert amounts[-1] == "2.50000"
