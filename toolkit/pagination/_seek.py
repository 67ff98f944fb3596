"""Keyset (seek) pagination: ``keyset_page()`` and ``keyset()`` order a query by its key
and continue after the previous page's last row (``WHERE key > :last``), so every page
costs the same at any depth.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, or_, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapper

from toolkit import errors
from toolkit.database import Database, session_or_new
from toolkit.errors import PaginationError
from toolkit.pagination._base import (
    AnySelect,
    column_names,
    page_items,
    single_entity,
)
from toolkit.pagination._cursor import decode_cursor, encode_cursor
from toolkit.pagination._keys import (
    Key,
    KeyColumn,
    has_outer_join,
    key_mappers,
    key_reader,
    require_unique,
    table_facts,
)
from toolkit.pagination._pages import KeysetPage
from toolkit.runtime import interruptible


@dataclass(frozen=True)
class _Seek:
    """Orders a query by its key, filters it to rows after a cursor, and limits it."""

    keys: tuple[KeyColumn, ...]
    size: int

    def apply(self, query: AnySelect, last: Sequence[Any] | None) -> AnySelect:
        ordered = query.order_by(None).order_by(*(k.ordering() for k in self.keys))
        ordered = ordered.limit(self.size + 1).offset(None)  # one more: is there a next page?
        return ordered if last is None else ordered.where(self.predicate(last))

    def predicate(self, last: Sequence[Any]) -> ColumnElement[bool]:
        """``(k1, k2) > (v1, v2)``, spelled NULL-safe and per direction where needed.

        The row-value comparison lets PostgreSQL seek a composite index; it is only right
        when no key column can be NULL and all go the same way. Otherwise: row i is after
        the cursor when its first i-1 keys equal the cursor's and key i is after it.
        """
        keys = self.keys
        one_way = len({k.descending for k in keys}) == 1
        if len(keys) > 1 and one_way and not any(k.nullable for k in keys):
            row = tuple_(*(k.expression for k in keys))
            values = tuple_(*(k.value(v) for k, v in zip(keys, last, strict=True)))
            return row < values if keys[0].descending else row > values
        return or_(
            *(
                and_(*(keys[j].same(last[j]) for j in range(i)), keys[i].after(last[i]))
                for i in range(len(keys))
            )
        )


@dataclass(frozen=True)
class _KeysetPlan:
    """A query checked for keyset pagination: its key, and how to read a row's key values."""

    query: AnySelect
    seek: _Seek
    entity: Mapper[Any] | None
    readers: tuple[Callable[[Any], Any], ...]

    @classmethod
    async def build(
        cls,
        query: AnySelect,
        written: Sequence[Key],
        size: int,
        unique: bool,
        session: AsyncSession,
    ) -> _KeysetPlan:
        """The plan for ``written`` (see :func:`_written`); a key column of a table without
        constraint metadata is looked up in the catalog, for uniqueness and NOT NULL."""
        outer = any(has_outer_join(f) for f in query.get_final_froms())
        keys = tuple(KeyColumn.parse(k, outer_join=outer, query=query) for k in written)
        facts = await table_facts(session, keys)
        if not outer:  # an outer join's NULLs make any column nullable
            keys = tuple(k.known_not_null(facts) for k in keys)
        mappers = key_mappers(query, keys)
        if not unique:
            require_unique(keys, mappers, facts)
        entity = single_entity(query)
        readers = tuple(key_reader(query, entity, k, mappers) for k in keys)
        return cls(query, _Seek(keys, size), entity, readers)

    async def fetch(self, session: AsyncSession, after: str | None) -> KeysetPage:
        last = decode_cursor(after, len(self.seek.keys)) if after is not None else None
        with errors.translated():
            result = await session.execute(self.seek.apply(self.query, last))
            columns = column_names(self.entity, result.keys())
            rows = page_items(result, self.entity)
        items = rows[: self.seek.size]
        cursor = None
        if len(rows) > self.seek.size:
            cursor = encode_cursor([read(items[-1]) for read in self.readers])
        return KeysetPage(items, self.seek.size, cursor, columns=columns)


def _written(query: AnySelect, key: Key | Sequence[Key], size: int) -> list[Key]:
    """The key columns as written, once the arguments are checked (before any I/O)."""
    if not isinstance(query, Select):
        raise TypeError(
            f"keyset pagination needs a Select, got {type(query).__name__} - "
            "for SQL text use paginate()"
        )
    if size < 1:
        raise ValueError(f"size must be 1 or more, got {size}")
    written = list(key) if isinstance(key, list | tuple) else [key]
    if not written:
        raise PaginationError("key is empty - pass a column, e.g. key=User.id")
    return written


@interruptible
async def keyset_page(
    query: AnySelect,
    *,
    key: Key | Sequence[Key],
    size: int = 50,
    after: str | None = None,
    unique: bool = False,
    session: AsyncSession | None = None,
    database: Database | None = None,
) -> KeysetPage:
    """One page of ``query`` ordered by ``key``, continuing after the cursor ``after``.

    ``key`` is a column or a list of columns (``[Post.created_at.desc(), Post.id.desc()]``);
    any ORDER BY, LIMIT and OFFSET of ``query`` are replaced. The key must identify rows:
    it must contain the primary key or a unique constraint's NOT NULL columns of a table,
    else ties at a page boundary would be skipped or repeated; ``unique=True`` vouches
    for a key that cannot be checked (an expression, a subquery's column). With a join
    that repeats rows (one-to-many), add the joined table's key too. A table described
    without constraints (``table("t", column("id"))``) is checked against the database's
    catalog, which also tells which key columns are NOT NULL: those are compared
    without an ``IS NULL`` branch, so PostgreSQL seeks an index range.

    The key's values must be selected: ``select(Model)`` reads them from the entity,
    other selects need the key columns among their columns. ``next_cursor`` holds the
    last row's key values as URL-safe base64 JSON (no pickle: a cursor from a URL is
    data, never code).
    """
    written = _written(query, key, size)
    async with session_or_new(session, database) as s:
        plan = await _KeysetPlan.build(query, written, size, unique, s)
        return await plan.fetch(s, after)


async def keyset(
    query: AnySelect,
    *,
    key: Key | Sequence[Key],
    size: int = 50,
    after: str | None = None,
    unique: bool = False,
    session: AsyncSession | None = None,
    database: Database | None = None,
) -> AsyncIterator[KeysetPage]:
    """Yield ``keyset_page`` after ``keyset_page`` until the last one.

    Without ``session`` one session serves the whole iteration and is closed at its end
    - also when the loop breaks early (the generator's finalizer closes it; wrap the call
    in ``contextlib.aclosing`` to close it at the ``break`` itself).
    """
    written = _written(query, key, size)
    async with session_or_new(session, database) as s:
        plan = await _KeysetPlan.build(query, written, size, unique, s)
        while True:
            page = await plan.fetch(s, after)
            yield page
            if page.next_cursor is None:
                return
            after = page.next_cursor
