"""``tk.execute``: one statement that returns no rows (INSERT, UPDATE, DELETE, DDL), its
values bound, never formatted in, and the number of rows it changed back.

The counterpart of ``tk.df``, which refuses statements that return no rows; this one
refuses statements that return rows (their rows would be thrown away) and names
``tk.df``. A statement that writes is never run twice: a connection lost on the way
raises ``ConnectionLost`` saying whether it may have been applied.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from toolkit import errors
from toolkit.database import Database, driver_connection, statement_attempts
from toolkit.runtime import interruptible
from toolkit.sql import Query, command_count, prepare, sql_and_args

__all__ = ["execute"]


@interruptible
async def execute(
    statement: Query,
    params: Mapping[str, Any] | None = None,
    *,
    session: AsyncSession | None = None,
    database: Database | None = None,
) -> int:
    """Run ``statement`` and return how many rows it inserted, updated or deleted (0 for
    DDL such as CREATE TABLE).

    ``statement`` is SQL text with ``:named`` parameters from ``params``, or a Core
    ``insert``/``update``/``delete``. With ``session`` it joins that session's transaction
    (committed or rolled back with it); without, it commits on its own. One statement
    per call; one that returns rows (a SELECT, ``... RETURNING``) is refused: use tk.df.
    """
    sql, args = sql_and_args(statement, params)
    with errors.translated():
        for attempt in statement_attempts(session, reads=False):
            with attempt:
                async with driver_connection(session, database, write=session is not None) as raw:
                    prepared = await prepare(raw, sql)
                    if prepared.get_attributes():
                        raise errors.ToolkitError(
                            "execute() runs statements that return no rows, and this one "
                            "returns rows - use tk.df(...) to read them (it takes "
                            "INSERT/UPDATE/DELETE ... RETURNING too)"
                        )
                    attempt.sending(raw)
                    await prepared.fetch(*args)
                    return command_count(prepared.get_statusmsg())
    raise AssertionError("statement_attempts raises unless an attempt got through")
