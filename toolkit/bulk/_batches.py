"""Running a bulk operation in chunks inside its one transaction: the chunk size, the
progress bar, the batched statements, and ids reserved from a sequence up front."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession

from toolkit import errors
from toolkit.bulk._target import key_column
from toolkit.database import Database, driver_connection
from toolkit.runtime import in_notebook, progress_bar
from toolkit.sql import (
    command_count,
    table_name,
)

__all__ = ["CHUNK", "chunks", "progress_for", "reserve_ids", "run_batches"]


CHUNK = 50_000
"""Rows per statement (or COPY) inside the one transaction: bounds memory, feeds the bar."""


async def run_batches(
    sql: str,
    arrays: list[list[Any]],
    session: AsyncSession | None,
    database: Database | None,
    progress: bool | None,
    what: str,
) -> int:
    """Send ``sql`` with the column arrays, ``CHUNK`` rows a statement, in one transaction."""
    total = 0
    count = len(arrays[0]) if arrays else 0
    with errors.translated():
        async with (
            driver_connection(session, database, write=True, refuse_on_standby=what) as raw,
            raw.transaction(),
        ):
            bar = progress_for(count, progress, what)
            for start in range(0, count, CHUNK):
                chunk = [a[start : start + CHUNK] for a in arrays]
                total += command_count(await raw.execute(sql, *chunk))
                bar.update(len(chunk[0]))
            bar.close()
    return total


async def reserve_ids(
    raw: Any, table: Table | None, names: Sequence[str], count: int, returning: bool
) -> list[Any] | None:
    if not returning:
        return None
    key = key_column(table)
    if key.name in names:
        raise errors.ToolkitError("returning=True reserves the keys itself: leave them out")
    assert table is not None
    return list(
        await raw.fetchval(
            "SELECT array_agg(nextval(pg_get_serial_sequence($1, $2))) FROM generate_series(1, $3)",
            table_name(table),
            key.name,
            count,
        )
        or []
    )


def chunks(records: Sequence[tuple[Any, ...]]) -> Iterator[tuple[int, Sequence[tuple[Any, ...]]]]:
    """``CHUNK`` records at a time, each with the index of its first record (so an error
    names its row without the caller reading ``CHUNK``)."""
    for start in range(0, len(records), CHUNK):
        yield start, records[start : start + CHUNK]


def progress_for(total: int, enabled: bool | None, what: str) -> Any:
    """A bar for large inputs in notebooks by default; ``enabled`` decides otherwise."""
    show = (in_notebook() and total > CHUNK) if enabled is None else enabled
    return progress_bar(total, show, what)
