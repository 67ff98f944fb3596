"""``bulk_insert``: binary COPY of Python rows, falling back to the checked text COPY
(the one DataFrame writer) where asyncpg's binary encoders would change a value; a
DataFrame, and Arrow input streamed a batch at a time, go by that writer."""

from __future__ import annotations

import decimal
from collections.abc import Mapping, Sequence
from typing import Any, TypeGuard

import pandas as pd
from asyncpg import PostgresError
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession

from toolkit import errors
from toolkit.bulk._batches import chunks, progress_for, reserve_ids
from toolkit.bulk._records import as_text_if_infinite, object_frame, records_of, with_frame_defaults
from toolkit.bulk._target import Rows, Target, key_column, split_name, target_table
from toolkit.database import Database, driver_connection
from toolkit.frames import BATCH_ROWS, ArrowSource, copy_frame, located, target_types
from toolkit.frames import Target as ColumnType
from toolkit.runtime import interruptible
from toolkit.sql import (
    checked,
    qualified,
    table_name,
)

__all__ = ["bulk_insert"]


@interruptible
async def bulk_insert(
    target: Target | str,
    rows: Rows | Sequence[Sequence[Any]] | ArrowSource,
    *,
    columns: Sequence[str] | None = None,
    returning: bool = False,
    batch_size: int = BATCH_ROWS,
    session: AsyncSession | None = None,
    database: Database | None = None,
    progress: bool | None = None,
) -> int | list[Any]:
    """Insert ``rows`` with COPY; returns the row count, or the new primary keys.

    ``rows``: mappings, tuples (with ``columns``), a DataFrame, or Arrow input streamed
    ``batch_size`` rows at a time, never whole in memory: a Parquet file (or a directory
    of them), a ``pyarrow.RecordBatchReader`` or a ``pyarrow.Table``. Columns missing from
    the rows get their Python-side defaults (``default=``) here and their server defaults
    from PostgreSQL. ``returning=True`` reserves ids from the table's sequence first, so
    the keys come back in the order of the rows. A DataFrame or Arrow value its column
    cannot hold exactly is refused, naming column, row (its position in the whole input)
    and type (the README's "Bulk operations").
    """
    table = target_table(target) if not isinstance(target, str) else None
    name, schema = (table.name, table.schema) if table is not None else split_name(str(target))
    checked(name, "table name")
    if schema is not None:
        checked(schema, "schema name")
    target_sql = table_name(table) if table is not None else qualified(name, schema)
    if _python_rows(rows):
        rows = as_text_if_infinite(table, rows, columns)
    with errors.translated():
        async with driver_connection(
            session, database, write=True, refuse_on_standby="bulk_insert"
        ) as raw:
            if _python_rows(rows):
                try:
                    async with raw.transaction():
                        records = records_of(table, rows, columns)
                        where = (name, schema, target_sql)
                        return await _copy_records(raw, table, where, records, returning, progress)
                except _TextInstead:  # rolled back; nothing was written
                    rows = object_frame(rows, columns)
            ids: list[Any] = []

            async def prepare(frame: pd.DataFrame) -> pd.DataFrame:
                """Each frame (a batch of Arrow input) with the Python-side defaults and,
                for ``returning``, keys reserved for its rows."""
                frame = with_frame_defaults(table, frame)
                reserved = await reserve_ids(raw, table, list(frame.columns), len(frame), returning)
                if reserved is not None:
                    frame[key_column(table).name] = reserved
                    ids.extend(reserved)
                return frame

            async with raw.transaction():  # CSV text checked against the column types
                written = await copy_frame(
                    raw, rows, target_sql, name, schema, prepare=prepare, batch_size=batch_size
                )
                return ids if returning else written


def _python_rows(rows: object) -> TypeGuard[Sequence[Any]]:
    """Rows as Python objects (a list or tuple of mappings or tuples), for the binary COPY;
    not a DataFrame or Arrow input (a Parquet path may be a ``str``), for the writer."""
    return isinstance(rows, Sequence) and not isinstance(rows, str)


class _TextInstead(Exception):
    """Raised where asyncpg's binary encoders would change a value or cannot encode it:
    the rows go as text instead, where the value is written exactly or refused by name."""


async def _copy_records(
    raw: Any,
    table: Table | None,
    where: tuple[str, str | None, str],
    records: tuple[list[str], list[tuple[Any, ...]]],
    returning: bool,
    progress: bool | None,
) -> int | list[Any]:
    """Binary COPY of Python rows: no text per value, the fast path for rows whose values
    asyncpg encodes exactly."""
    name, schema, target_sql = where
    names, rows = records
    for column in names:  # asyncpg quotes them; too long or NUL is refused here
        checked(column, "column name")
    targets = await target_types(raw, target_sql)
    if _binary_would_change(targets, names, rows):
        raise _TextInstead
    ids = await reserve_ids(raw, table, names, len(rows), returning)
    if ids is not None:
        names = [*names, key_column(table).name]
        rows = [(*r, i) for r, i in zip(rows, ids, strict=True)]
    bar = progress_for(len(rows), progress, "bulk_insert")
    for first, chunk in chunks(rows):
        try:
            await raw.copy_records_to_table(name, records=chunk, columns=names, schema_name=schema)
        except _ENCODER_ERRORS as exc:  # a value asyncpg cannot encode for its column
            raise _TextInstead from exc
        except PostgresError as exc:  # refused by the server: name its column and row
            raise located(exc, None, targets, first) from None
        bar.update(len(chunk))
    bar.close()
    return ids if ids is not None else len(rows)


_ENCODER_ERRORS = (TypeError, ValueError, OverflowError, AttributeError)
"""What asyncpg's binary encoders raise for a value its column's codec does not take."""


def _binary_would_change(
    targets: Mapping[str, ColumnType], names: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> bool:
    """Whether a value would be changed on its way in: asyncpg's encoders truncate a
    float or Decimal into an integer column (1.5 -> 1) and write a float's binary
    expansion into numeric (0.1 -> 0.1000000000000000055...)."""
    for i, name in enumerate(names):
        target = targets.get(name)
        if target is None or target.array:
            continue
        if target.base in ("int2", "int4", "int8"):
            exact: set[type] = {int, type(None)}
        elif target.base == "numeric":
            exact = {int, decimal.Decimal, type(None)}
        else:
            continue
        if not {type(row[i]) for row in rows} <= exact:
            return True
    return False
