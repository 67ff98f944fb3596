"""``bulk_delete``: by primary keys (one array parameter per chunk) or by a WHERE clause."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import ColumnElement

from toolkit import errors
from toolkit.bulk._batches import chunks
from toolkit.bulk._records import arrays_of, quote_column, unnest_sql
from toolkit.bulk._target import Target, target_table
from toolkit.database import Database, driver_connection
from toolkit.runtime import interruptible
from toolkit.sql import (
    command_count,
    compile_statement,
    table_name,
)

__all__ = ["bulk_delete"]


@interruptible
async def bulk_delete(
    model: Target,
    where: ColumnElement[bool] | Sequence[Any],
    *,
    session: AsyncSession | None = None,
    database: Database | None = None,
) -> int:
    """Delete by primary keys (a list; tuples for a composite key) or by a WHERE clause.

    Returns how many rows were deleted.
    """
    table = target_table(model)
    target = table_name(table)  # checks the names before anything is sent
    with errors.translated():
        async with (
            driver_connection(
                session, database, write=True, refuse_on_standby="bulk_delete"
            ) as raw,
            raw.transaction(),
        ):
            if isinstance(where, ColumnElement):
                sql, args = compile_statement(delete(table).where(where), None)
                return command_count(await raw.execute(sql, *args))
            keys = [c.name for c in table.primary_key.columns]
            records = [tuple(k) if len(keys) > 1 else (k,) for k in where]
            matched = " AND ".join(f"t.{quote_column(k)} = v.{quote_column(k)}" for k in keys)
            sql = f"DELETE FROM {target} AS t USING {unnest_sql(table, keys)} WHERE {matched}"
            total = 0
            for _, chunk in chunks(records):
                total += command_count(await raw.execute(sql, *arrays_of(chunk, len(keys))))
            return total
