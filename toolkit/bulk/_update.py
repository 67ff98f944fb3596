"""``bulk_update``: one ``UPDATE ... FROM unnest(...)`` per chunk, keyed by the primary key."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from toolkit import errors
from toolkit.bulk._batches import run_batches
from toolkit.bulk._records import column_arrays, quote_column, refuse_duplicates, unnest_sql
from toolkit.bulk._target import Rows, Target, target_table
from toolkit.database import Database
from toolkit.runtime import interruptible
from toolkit.sql import (
    table_name,
)

__all__ = ["bulk_update"]


@interruptible
async def bulk_update(
    model: Target,
    rows: Rows,
    *,
    session: AsyncSession | None = None,
    database: Database | None = None,
    progress: bool | None = None,
) -> int:
    """Update rows by primary key; returns how many rows were updated.

    Each row holds the primary key and the columns to set (all rows the same columns).
    Rows whose key does not exist are skipped (not counted).
    """
    table = target_table(model)
    names, arrays = column_arrays(table, rows, defaults=False)
    keys = [c.name for c in table.primary_key.columns]
    missing = [k for k in keys if k not in names]
    if missing:
        raise errors.ToolkitError(f"bulk_update needs the primary key in every row: {missing}")
    setting = [n for n in names if n not in keys]
    if not setting:
        raise errors.ToolkitError("bulk_update rows hold only the key - name a column to set")
    refuse_duplicates(arrays, [names.index(k) for k in keys], "bulk_update")
    target = table_name(table)
    source = unnest_sql(table, names)
    sql = (
        f"UPDATE {target} AS t SET "
        + ", ".join(f"{quote_column(n)} = v.{quote_column(n)}" for n in setting)
        + f" FROM {source} WHERE "
        + " AND ".join(f"t.{quote_column(k)} = v.{quote_column(k)}" for k in keys)
    )
    return await run_batches(sql, arrays, session, database, progress, "bulk_update")
