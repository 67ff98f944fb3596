"""What the frames tests share: a numbers table of any size; Arrow rows of every common
kind, the table they go into, and how they read back."""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any

import pyarrow as pa
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

import toolkit as tk

BIG = 5_000


async def _numbers(session: AsyncSession, rows: int = BIG) -> None:
    await session.execute(
        text(
            "CREATE TEMP TABLE numbers ON COMMIT DROP AS "
            "SELECT g AS n, g::text AS label, (g % 2 = 0) AS even, "
            "now() - make_interval(secs => g) AS at FROM generate_series(1, :rows) g"
        ),
        {"rows": rows},
    )
    await session.execute(text("ANALYZE numbers"))


def _every_kind(rows: int) -> pa.Table:
    """``rows`` rows of the types Parquet files commonly hold, each column NULL in every
    seventh row (``n``, the row's position, never): what a write of Arrow input must give
    back exactly as written."""
    gaps = [i % 7 == 3 for i in range(rows)]

    def column(values: list[Any], kind: pa.DataType) -> pa.Array:
        return pa.array([None if gap else v for v, gap in zip(values, gaps, strict=True)], kind)

    start = dt.datetime(2024, 2, 28, 23, 59, 58)
    return pa.table(
        {
            "n": pa.array(range(rows), pa.int64()),
            "small": column([i % 30_000 - 15_000 for i in range(rows)], pa.int32()),
            "ratio": column([i / 4 - 100 for i in range(rows)], pa.float64()),
            "label": column(
                [f'say "{i}", then\nstop' if i % 5 else "" for i in range(rows)], pa.string()
            ),
            "day": column(
                [dt.date(1999, 12, 31) + dt.timedelta(days=i) for i in range(rows)], pa.date32()
            ),
            "at": column(
                [start + dt.timedelta(seconds=i, microseconds=i) for i in range(rows)],
                pa.timestamp("us"),
            ),
            "at_utc": column(
                [start + dt.timedelta(hours=i) for i in range(rows)], pa.timestamp("us", tz="UTC")
            ),
            "amount": column(
                [decimal.Decimal(i * 37 - 5_000) / 100 for i in range(rows)], pa.decimal128(12, 2)
            ),
            "flag": column([i % 2 == 0 for i in range(rows)], pa.bool_()),
        }
    )


EVERY_KIND_TABLE = (
    "CREATE TABLE {name} (n bigint PRIMARY KEY, small integer, ratio double precision, "
    "label text, day date, at timestamp, at_utc timestamptz, amount numeric(12, 2), "
    "flag boolean)"
)
"""The table ``_every_kind``'s rows go into, as ``to_table`` would create it (``amount``
with the file's scale)."""


async def _read_back(session: AsyncSession, table: str, schema: pa.Schema) -> pa.Table:
    """What ``tk.df`` reads from ``table``, in the order of ``n``, as Arrow of ``schema``'s
    types (tk.df's decimals have 38 digits, its text is large_string)."""
    frame = await tk.df(f"SELECT * FROM {table} ORDER BY n", session=session)
    return pa.Table.from_pandas(frame, preserve_index=False).cast(schema)
