"""Queries to pandas DataFrames.

This is the simple path: rows fetched through SQLAlchemy and handed to pandas as tuples
(``tuple(row)`` first: building a frame from ``Row`` objects is several times slower).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd
from sqlalchemy import bindparam, inspect, text
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql import Executable

from toolkit import errors
from toolkit.database import Database, get_database

__all__ = ["df", "to_dataframe"]

Query = str | Executable


async def df(
    query: Query,
    params: Mapping[str, Any] | None = None,
    *,
    session: AsyncSession | None = None,
    database: Database | None = None,
) -> pd.DataFrame:
    """Run ``query`` and return its rows as a DataFrame.

    ``query`` is a Core or ORM ``Select`` (an entity's columns become the frame's columns)
    or SQL text with ``:named`` parameters bound from ``params`` - never formatted in.
    With ``session`` it runs inside that session's transaction (it sees uncommitted rows).
    """
    statement: Executable = text(query) if isinstance(query, str) else query
    if isinstance(query, str) and params:
        # Typed binds: asyncpg then gets `$1::INTEGER`, not an untyped text parameter
        # ("select :n" with n=1 would otherwise fail with "expected str, got int").
        statement = text(query).bindparams(*(bindparam(k, v) for k, v in params.items()))
        params = None
    with errors.translated():
        if session is not None:
            return await _fetch(await session.connection(), statement, params)
        async with (database or get_database()).engine.connect() as conn:
            return await _fetch(conn, statement, params)


async def _fetch(
    conn: AsyncConnection, statement: Executable, params: Mapping[str, Any] | None
) -> pd.DataFrame:
    result = await conn.execute(statement, dict(params or {}))
    if not result.returns_rows:
        raise errors.ToolkitError(
            "df() needs a statement that returns rows - use a session's execute() for others"
        )
    columns = list(result.keys())
    rows = [tuple(row) for row in result.all()]
    return pd.DataFrame.from_records(rows, columns=columns)


def to_dataframe(items: Iterable[Any]) -> pd.DataFrame:
    """Models, rows, mappings or tuples already in memory -> DataFrame (no I/O).

    For models only loaded column values are used; nothing is lazily loaded.
    """
    items = list(items)
    if not items:
        return pd.DataFrame()
    first = items[0]
    if isinstance(first, Row):
        return pd.DataFrame.from_records([tuple(r) for r in items], columns=list(first._fields))
    if isinstance(first, Mapping):
        return pd.DataFrame.from_records(items)
    mapper = inspect(type(first), raiseerr=False)
    if mapper is not None and hasattr(mapper, "column_attrs"):
        keys = list(mapper.column_attrs.keys())
        records = []
        for obj in items:
            loaded = inspect(obj).dict
            records.append({key: loaded.get(key) for key in keys})
        return pd.DataFrame.from_records(records, columns=keys)
    return pd.DataFrame.from_records(items)
