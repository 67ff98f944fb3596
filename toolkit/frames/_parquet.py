"""``to_parquet``: a result larger than memory, streamed into a Parquet file.

The rows come through ``stream_df`` (COPY read only as fast as it is written, or a
server-side cursor), so memory is bounded by ``chunk_size`` whatever the result's size,
and the columns have ``tk.df``'s types. The file is written beside ``path`` under a
temporary name and renamed into place at the end: a failed or interrupted read leaves
no partial file, and an existing file is replaced only by a complete one.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
from collections.abc import AsyncGenerator, Mapping
from pathlib import Path
from typing import Any, cast

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy.ext.asyncio import AsyncSession

from toolkit import errors
from toolkit.database import Database
from toolkit.frames._parallel import Parallel
from toolkit.frames._read import df, stream_df
from toolkit.frames._types import DtypeBackend
from toolkit.runtime import interruptible
from toolkit.sql import Query

__all__ = ["to_parquet"]


@interruptible
async def to_parquet(
    query: Query,
    path: str | os.PathLike[str],
    params: Mapping[str, Any] | None = None,
    *,
    chunk_size: int = 100_000,
    compression: str = "zstd",
    session: AsyncSession | None = None,
    database: Database | None = None,
    dtype_backend: DtypeBackend = "numpy_nullable",
    progress: bool | None = None,
    parallel: Parallel = None,
    partition_on: str | None = None,
) -> int:
    """Write the result of ``query`` to the Parquet file ``path``; returns the row count.

    One row group per ``chunk_size`` rows, at most one chunk in memory at a time. The
    file's columns are what ``tk.df`` would give (read back with ``pd.read_parquet``).
    An unconstrained ``numeric`` column takes the decimal scale of the first chunk; a
    later value with more decimal places is refused, naming the column (give it a
    scale in the query, e.g. ``amount::numeric(20, 6)``). An empty result writes a file
    with the columns and no rows (the query runs a second time to learn them).
    ``parallel`` and ``partition_on`` read over several connections (``tk.df``); the
    row groups then come in the order the connections deliver them.
    """
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    target = Path(path)
    partial = target.with_name(f".{target.name}.partial")
    writer: pq.ParquetWriter | None = None
    writing: concurrent.futures.Future[pq.ParquetWriter] | None = None
    rows = 0
    # One thread converts and compresses chunk k while the stream reads chunk k + 1 (the
    # stream keeps only a few parsed blocks ahead: a write awaited before reading on
    # would stall the COPY for as long as it takes).
    pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="to_parquet")
    try:
        chunks = cast(
            AsyncGenerator[pd.DataFrame, None],
            stream_df(
                query,
                params,
                chunk_size=chunk_size,
                session=session,
                database=database,
                dtype_backend=dtype_backend,
                progress=progress,
                parallel=parallel,
                partition_on=partition_on,
            ),
        )
        async with contextlib.aclosing(chunks):
            async for chunk in chunks:
                if writing is not None:
                    writer = await asyncio.wrap_future(writing)
                writing = pool.submit(_write, writer, partial, chunk, compression)
                rows += len(chunk)
                del chunk  # the thread holds it until written
        if writing is not None:
            writer, writing = await asyncio.wrap_future(writing), None
        if writer is None:  # no rows: the columns from the (empty) result itself
            empty = await df(query, params, session=session, database=database)
            writer = await asyncio.to_thread(_write, None, partial, empty, compression)
        finished: pq.ParquetWriter = writer
        writer = None
        await asyncio.to_thread(finished.close)
        await asyncio.to_thread(partial.replace, target)
    finally:
        if writing is not None:  # a failure or an interrupt while a chunk was written
            with contextlib.suppress(BaseException):
                writer = await asyncio.wrap_future(writing)
            if not writing.done():
                writer = None  # interrupted again while the thread writes: it is the thread's
        if writer is not None:
            writer.close()
        pool.shutdown(wait=False)
        partial.unlink(missing_ok=True)
    return rows


def _write(
    writer: pq.ParquetWriter | None, path: Path, chunk: pd.DataFrame, compression: str
) -> pq.ParquetWriter:
    """Append ``chunk`` as one row group, opening the file with its schema on the first."""
    if writer is None:
        table = pa.Table.from_pandas(chunk, preserve_index=False)
        writer = pq.ParquetWriter(path, table.schema, compression=compression)
    else:
        table = _conformed(chunk, writer.schema)
    writer.write_table(table)
    return writer


def _conformed(chunk: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    """``chunk`` as a table of the file's ``schema``, or a refusal naming the column."""
    try:
        return pa.Table.from_pandas(chunk, schema=schema, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as exc:
        for field in schema:
            column = pa.Table.from_pandas(chunk[[field.name]], preserve_index=False).column(0)
            if column.type == field.type:
                continue
            try:
                column.cast(field.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
                raise errors.ToolkitError(
                    f"to_parquet: column {field.name!r} changed from {field.type} in the first "
                    f"rows to {column.type} later, which the file's column cannot hold exactly "
                    f"- give it a fixed type in the query (e.g. {field.name}::numeric(20, 6), "
                    "or ::text), or raise chunk_size"
                ) from exc
        raise
