"""What a table holds: ``sample()`` reads a few of its rows and ``profile()`` has PostgreSQL
compute per-column statistics in one statement. The SQL that reads the table is built by
SQLAlchemy from the reflected ``Table``, which quotes every identifier.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import (
    ARRAY,
    JSON,
    Boolean,
    Date,
    DateTime,
    Enum,
    Float,
    Integer,
    Interval,
    Numeric,
    Select,
    String,
    Table,
    Text,
    Time,
    distinct,
    func,
    select,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects.postgresql import CIDR, DOMAIN, INET, INTERVAL, JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import NullType, TypeEngine

from toolkit import errors
from toolkit.database import Database, connection_or_pooled
from toolkit.explore._catalog import (
    Relation,
    TableName,
    catalog_columns,
    reflect_table,
    resolve_relation,
)
from toolkit.explore._distribution import shard_estimate
from toolkit.frames import df
from toolkit.runtime import interruptible

__all__ = ["TABLESAMPLE_FROM", "profile", "sample"]

TABLESAMPLE_FROM = 100_000
"""Estimated rows from which ``sample(random=True)`` reads a ``TABLESAMPLE`` of pages
instead of shuffling the whole table (read at each call: patch it here)."""

# sample() --------------------------------------------------------------------------


@interruptible
async def sample(
    table: TableName,
    n: int = 10,
    *,
    random: bool = False,
    session: AsyncSession | None = None,
    database: Database | None = None,
) -> pd.DataFrame:
    """``n`` rows of ``table`` as a DataFrame (read by ``tk.df``: exact dtypes).

    By default the first rows by primary key (any rows for a table without one): cheap
    at any size, and the same rows each time. ``random=True`` draws a uniform sample:
    ``ORDER BY random() LIMIT n``, which reads the whole table but keeps only ``n`` rows
    in memory. From ``TABLESAMPLE_FROM`` estimated rows it reads a random set of pages
    instead (``TABLESAMPLE SYSTEM``, about ten times ``n`` rows) and shuffles those: fast
    on huge tables, though rows that share a page tend to be drawn together. If that comes
    back short, the whole table is shuffled after all.
    """
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"n must be an int, got {type(n).__name__}")
    if n < 0:
        raise ValueError(f"n must be 0 or more, got {n}")
    with errors.translated():
        async with connection_or_pooled(session, database) as conn:
            relation = await resolve_relation(conn, table)
            reflected = await reflect_table(conn, relation)
            if random and not relation.estimated_rows:  # Citus: the shards hold the rows
                estimate = await shard_estimate(conn, relation.oid, session, database)
                if estimate is not None:
                    relation = dataclasses.replace(relation, estimated_rows=float(estimate))
    query: Select[Any]
    if random:
        pages = _pages_to_sample(relation, n)
        if pages is not None:
            sampled = reflected.tablesample(func.system(pages), name="sampled")
            query = select(sampled).order_by(func.random()).limit(n)
            frame = await df(query, session=session, database=database)
            if len(frame) == n:
                return frame
        query = select(reflected).order_by(func.random()).limit(n)
    else:
        query = select(reflected).order_by(*reflected.primary_key.columns).limit(n)
    return await df(query, session=session, database=database)


def _pages_to_sample(relation: Relation, n: int) -> float | None:
    """The TABLESAMPLE SYSTEM percentage for ``n`` rows, or None to shuffle everything."""
    estimate = relation.estimated_rows
    sampled_kinds = ("table", "materialized view", "partitioned table")
    if relation.kind not in sampled_kinds or not estimate or estimate < TABLESAMPLE_FROM:
        return None
    wanted = max(10 * n, 1_000)
    percent = 100.0 * wanted / estimate
    return percent if percent < 100.0 else None


# profile() -------------------------------------------------------------------------

_ORDERED = (Integer, Numeric, String, Enum, Date, DateTime, Time, Interval, INTERVAL, INET, CIDR)
"""Types with min() and max() in PostgreSQL (Numeric includes Float, String includes text
and varchar; PostgreSQL's INTERVAL is not a subclass of the generic Interval)."""
_NUMERIC = (Integer, Numeric)


def _base_type(type_: TypeEngine[Any]) -> TypeEngine[Any]:
    while isinstance(type_, DOMAIN):
        type_ = type_.data_type
    return type_


def _comparable(type_: TypeEngine[Any]) -> bool:
    """Whether values have equality (count(DISTINCT) on json, xml or an unknown type
    would fail: those are counted by their text)."""
    if isinstance(type_, NullType):
        return False
    if isinstance(type_, JSON):
        return isinstance(type_, JSONB)
    if isinstance(type_, ARRAY):
        return _comparable(_base_type(type_.item_type))
    return True


@interruptible
async def profile(
    table: TableName,
    *,
    session: AsyncSession | None = None,
    database: Database | None = None,
) -> pd.DataFrame:
    """One row per column of ``table``: how full, how varied, what range.

    Columns: ``column``, ``type``, ``rows``, ``nulls``, ``null_pct``, ``distinct``,
    ``min``, ``max``, ``mean``. All of it is computed by PostgreSQL in one statement (one
    scan; nothing but the result row comes back), built with SQLAlchemy from the reflected
    table. ``min``/``max`` are given for types with an order (numbers, text, enums, dates,
    times, intervals, network addresses) and ``mean`` for numbers; for a boolean column
    ``mean`` is the share of true values. ``distinct`` is exact (``count(DISTINCT)``);
    json and types SQLAlchemy does not know are compared by their text. On a very large
    table the exact distinct counts make this a slow query.
    """
    with errors.translated():
        async with connection_or_pooled(session, database) as conn:
            relation = await resolve_relation(conn, table)
            reflected = await reflect_table(conn, relation)
            types = {c.name: c.type for c in await catalog_columns(conn, relation)}
            statement, plans = _profile_statement(reflected)
            row = (await conn.execute(statement)).one()
    values = row._mapping
    rows = int(values["rows"])
    data: dict[str, list[Any]] = {k: [] for k in ("nulls", "distinct", "min", "max", "mean")}
    for plan in plans:
        nulls = rows - int(values[plan.label("nonnull")])
        data["nulls"].append(nulls)
        data["distinct"].append(int(values[plan.label("distinct")]))
        for key in ("min", "max"):
            data[key].append(values[plan.label(key)] if plan.ordered else None)
        mean = values[plan.label("mean")] if plan.mean else None
        data["mean"].append(None if mean is None else float(mean))
    count = len(plans)
    null_pct = [100.0 * n / rows if rows else None for n in data["nulls"]]
    return pd.DataFrame(
        {
            "column": pd.Series([p.column for p in plans], dtype="str"),
            "type": pd.Series([types.get(p.column, "") for p in plans], dtype="str"),
            "rows": pd.Series([rows] * count, dtype="Int64"),
            "nulls": pd.Series(data["nulls"], dtype="Int64"),
            "null_pct": pd.Series(null_pct, dtype="Float64"),
            "distinct": pd.Series(data["distinct"], dtype="Int64"),
            "min": pd.Series(data["min"], dtype="object"),
            "max": pd.Series(data["max"], dtype="object"),
            "mean": pd.Series(data["mean"], dtype="Float64"),
        }
    )


@dataclass(frozen=True)
class _ColumnStats:
    """Which aggregates one column gets in the profile statement."""

    index: int
    column: str
    ordered: bool
    mean: bool

    def label(self, what: str) -> str:
        return f"{what}_{self.index}"  # positional: any column name is safe


def _profile_statement(table: Table) -> tuple[Select[Any], list[_ColumnStats]]:
    aggregates: list[ColumnElement[Any]] = [func.count().label("rows")]
    plans: list[_ColumnStats] = []
    for index, column in enumerate(table.columns):
        type_ = _base_type(column.type)
        is_bool = isinstance(type_, Boolean)
        ordered = isinstance(type_, _ORDERED)
        numeric = isinstance(type_, _NUMERIC)
        plan = _ColumnStats(index, column.name, ordered, numeric or is_bool)
        plans.append(plan)
        element: ColumnElement[Any] = column
        counted = element if _comparable(type_) else sql_cast(element, Text)
        aggregates += [
            func.count(element).label(plan.label("nonnull")),
            func.count(distinct(counted)).label(plan.label("distinct")),
        ]
        if ordered:
            aggregates += [
                func.min(element).label(plan.label("min")),
                func.max(element).label(plan.label("max")),
            ]
        if numeric:
            aggregates.append(sql_cast(func.avg(element), Float).label(plan.label("mean")))
        elif is_bool:
            share = func.avg(sql_cast(element, Integer))
            aggregates.append(sql_cast(share, Float).label(plan.label("mean")))
    return select(*aggregates).select_from(table), plans
