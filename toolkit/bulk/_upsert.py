"""``upsert``: ``INSERT ... ON CONFLICT`` from arrays, or for a DataFrame from a checked
COPY into a temporary staging table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
from sqlalchemy import Column, Table
from sqlalchemy.ext.asyncio import AsyncSession

from toolkit import errors
from toolkit.bulk._records import object_frame, quote_column, with_frame_defaults
from toolkit.bulk._target import Rows, Target, column_name, target_table
from toolkit.database import Database, driver_connection
from toolkit.frames import arrow_for_copy, copy_arrow, target_types
from toolkit.runtime import interruptible
from toolkit.sql import (
    command_count,
    table_name,
)

__all__ = ["upsert"]


@interruptible
async def upsert(
    model: Target,
    rows: Rows,
    *,
    on: Sequence[str | Column[Any]] | None = None,
    update: Sequence[str | Column[Any]] | None = None,
    session: AsyncSession | None = None,
    database: Database | None = None,
    progress: bool | None = None,
) -> int:
    """INSERT ... ON CONFLICT (``on``) DO UPDATE; returns rows inserted or updated.

    ``on`` defaults to the primary key (it needs a unique index); ``update`` defaults to
    every given column outside ``on`` (``update=[]``: DO NOTHING, keep existing rows).
    Two rows with the same ``on`` key are refused: PostgreSQL would reject the batch. A
    value its column cannot hold exactly is refused, naming column, row and type.
    """
    table = target_table(model)
    if not isinstance(rows, pd.DataFrame):
        if not rows:
            raise errors.ToolkitError("no rows given")
        rows = object_frame(rows, None)  # each value as the Python object it is
    return await _upsert_frame(table, rows, on, update, session, database)


async def _upsert_frame(
    table: Table,
    rows: pd.DataFrame,
    on: Sequence[str | Column[Any]] | None,
    update: Sequence[str | Column[Any]] | None,
    session: AsyncSession | None,
    database: Database | None,
) -> int:
    """COPY into a temporary table of the target's column types (the same CSV text,
    checks and errors as ``to_table``), then one INSERT ... SELECT ... ON CONFLICT from
    it. Array parameters (``unnest``) could not carry array columns (arrays of arrays) and
    asyncpg's encoders would change some values (1.5 into an integer column)."""
    frame = with_frame_defaults(table, rows)
    names = list(frame.columns)
    conflict = [column_name(c) for c in on] if on else [c.name for c in table.primary_key.columns]
    given = [str(c) for c in rows.columns]
    changing = (
        [column_name(c) for c in update]
        if update is not None
        else [n for n in given if n not in conflict]
    )
    unknown = [n for n in [*conflict, *changing] if n not in names]
    if unknown:
        raise errors.ToolkitError(f"upsert: columns {unknown} are not in the rows")
    repeated = frame[frame.duplicated(subset=conflict, keep=False)][conflict]
    if len(repeated):
        keys = list(repeated.drop_duplicates().itertuples(index=False, name=None))
        raise errors.ToolkitError(
            f"upsert: {len(keys)} key(s) appear more than once in the batch, e.g. "
            f"{keys[:5]} - de-duplicate the rows first (nothing was changed)"
        )
    target = table_name(table)
    columns = ", ".join(quote_column(n) for n in names)
    action = (
        "DO UPDATE SET "
        + ", ".join(f"{quote_column(n)} = EXCLUDED.{quote_column(n)}" for n in changing)
        if changing
        else "DO NOTHING"
    )
    with errors.translated():
        async with (
            driver_connection(session, database, write=True, refuse_on_standby="upsert") as raw,
            raw.transaction(),
        ):
            # The staging table has the target's column types (domains and lengths
            # included, from the catalog: no SELECT privilege needed). Dropped below, and
            # with the savepoint on error: two upserts in one transaction never meet.
            targets = await target_types(raw, target)
            missing = [n for n in names if n not in targets]
            if missing:
                raise errors.ToolkitError(
                    f"upsert: {table.name} has no column {missing} in the database; "
                    f"its columns: {list(targets)}"
                )
            staged = ", ".join(f"{quote_column(n)} {targets[n].declared}" for n in names)
            await raw.execute(f"CREATE TEMPORARY TABLE {_STAGING} ({staged}) ON COMMIT DROP")
            arrow = arrow_for_copy(frame, targets)
            await copy_arrow(raw, arrow, _STAGING, "pg_temp", index=rows.index, targets=targets)
            count = command_count(
                await raw.execute(
                    f"INSERT INTO {target} ({columns}) SELECT {columns} FROM pg_temp.{_STAGING} "
                    f"ON CONFLICT ({', '.join(quote_column(n) for n in conflict)}) {action}"
                )
            )
            await raw.execute(f"DROP TABLE pg_temp.{_STAGING}")
    return count


_STAGING = "toolkit_upsert_staging"
