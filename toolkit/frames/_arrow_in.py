"""Arrow input for the writers: a Parquet file, a directory of Parquet files, a
``pyarrow.RecordBatchReader`` or a ``pyarrow.Table``, opened as its schema and a stream of
DataFrames, one batch at a time.

The writers check and send each batch as they would a DataFrame (``_copy_in``), so an
input larger than memory goes in with at most one batch of it held: Parquet is read with
a buffered stream (a row group is decoded a page at a time, not whole), a reader is
pulled only when the previous batch has been sent. The frames' dtypes are the ones the
DataFrame writer renders without a Python object per cell (Arrow-backed numbers, text,
decimals and dates; numpy datetimes and durations, which it checks for nanoseconds).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncGenerator, Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias, cast

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from toolkit import errors
from toolkit.frames._values_in import csv_writable

__all__ = ["BATCH_ROWS", "ArrowInput", "ArrowSource", "arrow_input", "nested"]

ArrowSource: TypeAlias = str | os.PathLike[str] | pa.RecordBatchReader | pa.Table
"""What the writers take besides a DataFrame: a Parquet path (a file, or a directory of
files), a reader of record batches, or a table."""

BATCH_ROWS = 100_000
"""Rows per batch read from Parquet (the default of the writers' ``batch_size``)."""

_READ_BUFFER = 1 << 20
"""Bytes read at a time from a Parquet column chunk: without a buffer (and with pyarrow's
``pre_buffer``, which is turned off), a row group's column chunks are read whole, however
small the batch."""


@dataclass
class ArrowInput:
    """An opened Arrow input: its columns, and its batches as DataFrames."""

    schema: pa.Schema
    what: str
    """The input as the errors name it: ``the Parquet file 'x.parquet'``."""
    batches: Iterator[pa.RecordBatch] = field(repr=False)

    def empty(self) -> pd.DataFrame:
        """The columns with no rows, Arrow-typed: what a new table's types are read from
        (``column_types_of``), with no batch read."""
        return cast(pd.DataFrame, self.schema.empty_table().to_pandas(types_mapper=pd.ArrowDtype))

    async def frames(self) -> AsyncGenerator[pd.DataFrame, None]:
        """Each batch as a DataFrame indexed by its rows' positions in the whole input (so
        a refusal names the row by it). Read and converted in a worker thread: the next
        batch is pulled only when the caller asks for it."""
        first = 0
        while (frame := await self._pulled(first)) is not None:
            yield frame
            first += len(frame)

    async def _pulled(self, first: int) -> pd.DataFrame | None:
        """The next frame, read in a worker thread; cancelled (an interrupt), the read in
        flight is waited for, so the input is closed only once nothing reads it."""
        pull = asyncio.ensure_future(asyncio.to_thread(self._next_frame, first))
        try:
            return await asyncio.shield(pull)
        except asyncio.CancelledError:
            await asyncio.wait([pull])
            pull.exception()  # its own error, if any, goes with the batch: not reported
            raise

    def _next_frame(self, first: int) -> pd.DataFrame | None:
        try:
            batch = next(self.batches)
        except StopIteration:
            return None
        except (pa.ArrowInvalid, OSError) as exc:
            raise errors.ToolkitError(
                f"reading {self.what} failed after {first} rows ({exc}) - nothing was written"
            ) from exc
        frame: pd.DataFrame = batch.to_pandas(types_mapper=_dtype)
        for i, kind in enumerate(batch.schema.types):
            if nested(kind):  # Python lists and dicts: pandas' numpy arrays turn ints to floats
                values = pd.Series(batch.column(i).to_pylist(), dtype=object)
                frame.isetitem(i, values.to_numpy())
        frame.index = pd.RangeIndex(first, first + len(frame))
        return frame


def nested(kind: pa.DataType) -> bool:
    """Whether ``kind`` holds lists or records (Parquet's LIST, MAP and groups)."""
    return bool(
        pa.types.is_list(kind)
        or pa.types.is_large_list(kind)
        or pa.types.is_fixed_size_list(kind)
        or pa.types.is_struct(kind)
        or pa.types.is_map(kind)
    )


def _dtype(kind: pa.DataType) -> Any:
    """Arrow's own dtype where the DataFrame writer hands the column to Arrow's CSV writer
    as it is; None (pandas' default: numpy datetimes and durations, which the writer
    checks; bytes and other Python objects) otherwise."""
    return pd.ArrowDtype(kind) if csv_writable(kind) else None


@contextmanager
def arrow_input(source: ArrowSource, batch_size: int = BATCH_ROWS) -> Iterator[ArrowInput]:
    """``source`` opened (a Parquet file's footer read, its file kept open until the end);
    a path that is not there, or not Parquet, is refused here, before anything is sent.
    ``batch_size``: rows per batch read from Parquet or sliced from a table (a reader's
    batches stay as it makes them)."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    if isinstance(source, pa.Table):
        batches = iter(source.to_batches(max_chunksize=batch_size))
        yield ArrowInput(source.schema, "the Arrow table", batches)
    elif isinstance(source, pa.RecordBatchReader):
        yield ArrowInput(source.schema, "the RecordBatchReader", iter(source))
    elif isinstance(source, str | os.PathLike):
        path = Path(source)
        files = _parquet_files(path)
        schema = _schema(files[0])
        for other in files[1:]:
            _same_columns(other, _schema(other), files[0], schema)
        what = (
            f"the Parquet file {str(path)!r}"
            if files == [path]
            else f"the Parquet files in {str(path)!r}"
        )
        batches = _read(files, schema, batch_size)
        try:
            yield ArrowInput(schema, what, batches)
        finally:
            batches.close()  # closes the file being read
    else:
        raise TypeError(
            "expected a DataFrame, a Parquet path, a pyarrow.RecordBatchReader or a "
            f"pyarrow.Table, got {type(source).__name__}"
        )


def _parquet_files(path: Path) -> list[Path]:
    """The file, or a directory's files as ``pd.read_parquet`` reads them: sorted, in
    subdirectories too, leaving out names starting with ``.`` or ``_`` (``_SUCCESS``)."""
    if not path.exists():
        raise errors.ToolkitError(
            f"no file or directory {str(path)!r} - check the path (a relative path starts "
            f"at {os.getcwd()!r})"
        )
    if not path.is_dir():
        return [path]
    files = sorted(
        (f for f in path.rglob("*") if f.is_file() and not _hidden(f.relative_to(path))),
        key=str,
    )
    if not files:
        raise errors.ToolkitError(
            f"the directory {str(path)!r} holds no Parquet files - give the path of a "
            "Parquet file, or of a directory of them"
        )
    return files


def _hidden(relative: Path) -> bool:
    return any(part.startswith((".", "_")) for part in relative.parts)


def _schema(path: Path) -> pa.Schema:
    """A Parquet file's schema, from its footer; a file that is not Parquet is refused."""
    try:
        with pq.ParquetFile(path) as opened:
            return opened.schema_arrow
    except pa.ArrowInvalid as exc:
        raise errors.ToolkitError(
            f"{str(path)!r} is not a Parquet file ({exc}) - give a Parquet file, or read "
            "the file with pandas (pd.read_csv(...), ...) and pass the DataFrame"
        ) from exc


def _same_columns(path: Path, schema: pa.Schema, first: Path, expected: pa.Schema) -> None:
    """The files of a directory share the first file's column names (their types are
    cast to its types as they are read)."""
    if schema.names != expected.names:
        raise errors.ToolkitError(
            f"the Parquet file {str(path)!r} has the columns {schema.names}, where "
            f"{str(first)!r} has {expected.names} - write the directory's files with the "
            "same columns, or pass them one file at a time"
        )


def _read(
    files: list[Path], schema: pa.Schema, batch_size: int
) -> Generator[pa.RecordBatch, None, None]:
    """The files' batches in order, one file open at a time, each cast to ``schema``."""
    for path in files:
        with pq.ParquetFile(path, buffer_size=_READ_BUFFER, pre_buffer=False) as opened:
            for batch in opened.iter_batches(batch_size=batch_size):
                yield batch if batch.schema.equals(schema) else _cast(batch, schema, path)


def _cast(batch: pa.RecordBatch, schema: pa.Schema, path: Path) -> pa.RecordBatch:
    try:
        return batch.cast(schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise errors.ToolkitError(
            f"the Parquet file {str(path)!r} has column types {batch.schema.types} that "
            f"the first file's ({schema.types}) cannot hold ({exc}) - write the "
            "directory's files with the same types, or pass them one file at a time"
        ) from exc
