"""Writing: ``to_table``, a DataFrame or Arrow input (a Parquet path, a ``RecordBatchReader``,
a ``Table``) into a new or existing table, through the one writer (``_copy_in.copy_frame``,
also behind ``bulk_insert``)."""

from __future__ import annotations

import pandas as pd
from sqlalchemy.ext.asyncio import AsyncSession

from toolkit import errors
from toolkit.database import Database, driver_connection
from toolkit.frames._arrow_in import BATCH_ROWS, ArrowInput, ArrowSource, arrow_input
from toolkit.frames._copy_in import column_types_of, copy_frame, copy_frames
from toolkit.runtime import interruptible
from toolkit.sql import qualified, quote

__all__ = ["to_table"]


@interruptible
async def to_table(
    frame: pd.DataFrame | ArrowSource,
    table: str,
    *,
    schema: str | None = None,
    if_exists: str = "fail",
    batch_size: int = BATCH_ROWS,
    session: AsyncSession | None = None,
    database: Database | None = None,
) -> int:
    """Write ``frame`` to ``table`` with COPY FROM STDIN; returns the number of rows.

    ``frame``: a DataFrame, or Arrow input streamed ``batch_size`` rows at a time, never
    whole in memory: a Parquet file (or a directory of them), a
    ``pyarrow.RecordBatchReader`` or a ``pyarrow.Table``. Native columns go to Arrow and
    then to CSV in C++, with no Python object per cell; object columns (Decimal, dicts,
    bytes...) take one Python pass. ``if_exists``: ``"fail"`` (the default),
    ``"append"``, or ``"replace"`` (drop and recreate). A missing table is created from
    the frame's dtypes (Arrow input: its schema's types, by the same rules). A value its
    column cannot hold exactly is refused, naming column, row (its position in the whole
    input) and type (the README's "Bulk operations"). All of it happens in one
    transaction: on error nothing is written.
    """
    if if_exists not in ("fail", "append", "replace"):
        raise ValueError('if_exists must be "fail", "append" or "replace"')
    if isinstance(frame, pd.DataFrame):
        return await _written(frame, table, schema, if_exists, session, database)
    with arrow_input(frame, batch_size) as source:  # a bad path is refused before connecting
        return await _written(source, table, schema, if_exists, session, database)


async def _written(
    frame: pd.DataFrame | ArrowInput,
    table: str,
    schema: str | None,
    if_exists: str,
    session: AsyncSession | None,
    database: Database | None,
) -> int:
    typed = frame.empty() if isinstance(frame, ArrowInput) else frame  # a new table's types
    # Every name checked (InvalidIdentifier) and quoted before anything is sent.
    target = qualified(table, schema)
    names = [quote(str(n), "column name") for n in typed.columns]
    with errors.translated():
        async with (
            driver_connection(session, database, write=True, refuse_on_standby="to_table") as raw,
            raw.transaction(),  # a savepoint inside the caller's transaction
        ):
            exists = await raw.fetchval("SELECT to_regclass($1) IS NOT NULL", target)
            if exists and if_exists == "fail":
                raise errors.ToolkitError(
                    f"table {table!r} already exists - pass if_exists='append' to add "
                    "rows or if_exists='replace' to recreate it"
                )
            if not exists or if_exists == "replace":
                types = column_types_of(typed)  # refuses a column it cannot type
                definition = ", ".join(f"{n} {t}" for n, (_, t) in zip(names, types, strict=True))
                if exists:
                    await raw.execute(f"DROP TABLE {target}")
                await raw.execute(f"CREATE TABLE {target} ({definition})")
            # A refusal rolls back the CREATE with everything else.
            if isinstance(frame, ArrowInput):
                return await copy_frames(raw, frame.frames(), target, table, schema)
            return await copy_frame(raw, frame, target, table, schema)
