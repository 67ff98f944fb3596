"""Offset pagination: ``paginate()`` runs page n of a query (``LIMIT``/``OFFSET``) and
counts the rows of all pages, for numbered pages with a total.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, bindparam, func, literal_column, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from toolkit import errors
from toolkit.database import Database, naming_close_tables, session_or_new, statement_attempts
from toolkit.errors import PaginationError
from toolkit.pagination._base import (
    AnySelect,
    column_names,
    page_items,
    single_entity,
)
from toolkit.pagination._pages import Page
from toolkit.runtime import interruptible
from toolkit.sql import sql_text


@dataclass(frozen=True)
class _Window:
    """``LIMIT size OFFSET (page - 1) * size``: page n of a query's ordered rows."""

    page: int
    size: int

    def __post_init__(self) -> None:
        if self.page < 1:
            raise ValueError(f"page must be 1 or more (pages are numbered from 1), got {self.page}")
        if self.size < 1:
            raise ValueError(f"size must be 1 or more, got {self.size}")

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.size

    def apply(self, query: AnySelect) -> AnySelect:
        return query.limit(self.size).offset(self.offset)


@interruptible
async def paginate(
    query: AnySelect | str,
    page: int = 1,
    size: int = 50,
    *,
    params: Mapping[str, Any] | None = None,
    session: AsyncSession | None = None,
    database: Database | None = None,
) -> Page:
    """Page ``page`` (from 1) of ``query``'s rows, ``size`` rows per page, with the total.

    ``query`` is a ``Select`` - its items are model instances for ``select(Model)``, else
    ``Row`` objects - or SQL text, run as a subquery with ``params`` bound (never
    formatted in). A ``Select`` must have an ORDER BY: without one PostgreSQL may return
    rows in any order, and pages would overlap. SQL text is trusted to order its rows
    (its ORDER BY cannot be inspected); PostgreSQL keeps a subquery's order in practice.

    The total comes from a second statement, ``SELECT count(*) FROM (query) AS q``, in
    the same session. A window count (``count(*) OVER ()``) would save it, but returns
    no row at all past the last page - exactly where the total is needed to say so. A
    partial page already tells the total (offset + rows), so then no count is run.
    """
    window = _Window(page, size)
    statement = _source(query, params)
    if isinstance(query, Select) and not statement._order_by_clauses:
        raise PaginationError(
            "paginate() needs an ORDER BY for stable pages - add one that identifies rows, "
            "e.g. .order_by(User.id)"
        )
    entity = single_entity(statement)
    # Its statements only read (SQL text runs as a subquery, where writing is refused):
    # a lost connection, outside a caller's session, is retried once on a new one.
    async with naming_close_tables(None, session, database):
        with errors.translated():
            for attempt in statement_attempts(session, reads=True):
                with attempt:
                    async with session_or_new(session, database) as s:
                        result = await s.execute(window.apply(statement))
                        columns = column_names(entity, result.keys())
                        items = page_items(result, entity)
                        if 0 < len(items) < size:
                            total = window.offset + len(items)
                        else:
                            total = await s.scalar(_count(statement)) or 0
    return Page(items, total, page, size, columns=columns)


def _source(query: AnySelect | str, params: Mapping[str, Any] | None) -> AnySelect:
    """A ``Select`` for ``query``: SQL text becomes ``SELECT * FROM (sql) AS page_source``."""
    if isinstance(query, str):
        source = text(f"({sql_text(query, params)}) AS page_source")
        if params:  # typed binds, as in tk.df: asyncpg needs a type for each value
            source = source.bindparams(*(bindparam(k, v) for k, v in params.items()))
        return select(literal_column("*")).select_from(source)
    if not isinstance(query, Select):
        raise TypeError(f"expected a Select or SQL text, got {type(query).__name__}")
    return query.params(dict(params)) if params else query


def _count(query: AnySelect) -> Select[Any]:
    return select(func.count()).select_from(
        query.order_by(None).limit(None).offset(None).subquery("q")
    )
