"""Offset and keyset pagination: small dataclasses that transform a ``Select``.

* ``await paginate(query, page=2, size=50)`` - numbered pages with a total, for browsing
  and for showing "page 2 of 7". Cost grows with the page number: PostgreSQL reads and
  discards the ``OFFSET`` rows, and rows inserted meanwhile shift later pages.
* ``async for page in keyset(query, key=User.id)`` - seek pagination: each page continues
  *after* the last row of the previous one (``WHERE key > :last``), so any depth costs
  the same as the first page (with an index on the key) and concurrent inserts never
  repeat or skip rows. There is no total and no jumping to page n.

Both take the query as written and only add ordering, a window and a filter to it,
the way advanced-alchemy's ``filters.py`` applies a ``LimitOffset`` to a statement.
"""

from __future__ import annotations

import base64
import json
import operator
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from html import escape
from typing import Any, cast
from uuid import UUID

import pandas as pd
from sqlalchemy import (
    Column,
    ColumnElement,
    Index,
    Join,
    Select,
    Table,
    UniqueConstraint,
    and_,
    bindparam,
    false,
    func,
    inspect,
    literal,
    literal_column,
    or_,
    select,
    text,
    tuple_,
)
from sqlalchemy.engine import Result
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapper
from sqlalchemy.orm.exc import UnmappedColumnError
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import UnaryExpression

from toolkit import errors
from toolkit.database import Database, get_database
from toolkit.errors import ToolkitError
from toolkit.frames import to_dataframe

__all__ = ["KeysetPage", "Page", "PaginationError", "keyset", "keyset_page", "paginate"]

AnySelect = Select[*tuple[Any, ...]]
Key = Any
"""A key column: an ORM attribute or Core column, optionally ``.desc()``/``.nulls_last()``."""

HTML_ROWS = 20
"""Rows shown by a page's HTML repr (``to_df()`` has them all)."""


class PaginationError(ToolkitError):
    """A query cannot be paginated as asked; the message says what to change."""


# Pages -----------------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class _Items:
    """What both page kinds share: the items, iteration, ``to_df()`` and an HTML table."""

    items: list[Any]
    columns: tuple[str, ...] = field(default=(), kw_only=True, compare=False)
    """Column names of the items; they give an empty page's frame its columns."""

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.items)

    def to_df(self) -> pd.DataFrame:
        """The page's items as a DataFrame (an empty page keeps the column names)."""
        if not self.items:
            return pd.DataFrame(columns=list(self.columns))
        return to_dataframe(self.items)

    def _footer(self) -> str:
        raise NotImplementedError

    def _repr_html_(self) -> str:
        frame = to_dataframe(self.items[:HTML_ROWS]) if self.items else self.to_df()
        head = "".join(f"<th>{escape(str(name))}</th>" for name in frame.columns)
        body = "".join(
            "<tr>" + "".join(f"<td>{_cell(value)}</td>" for value in row) + "</tr>"
            for row in frame.itertuples(index=False, name=None)
        )
        note = self._footer()
        if len(self.items) > HTML_ROWS:
            note = f"first {HTML_ROWS} of {len(self.items)} rows shown · {note}"
        return (
            f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
            f"<p><small>{escape(note)}</small></p>"
        )


def _cell(value: Any) -> str:
    """An escaped table cell; NULL (None, NaN, NA, NaT in the frame) shows as empty."""
    missing = value is None or value is pd.NA or value is pd.NaT
    if missing or (isinstance(value, float) and value != value):
        return ""
    return escape(str(value))


@dataclass(frozen=True, repr=False)
class Page(_Items):
    """One page of an offset pagination: ``items`` and the ``total`` across all pages."""

    total: int
    page: int
    size: int

    @property
    def pages(self) -> int:
        """The number of pages (0 when there are no rows)."""
        return -(-self.total // self.size)

    @property
    def has_next(self) -> bool:
        return self.page < self.pages

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    def __repr__(self) -> str:
        return (
            f"Page(page={self.page}/{self.pages}, size={self.size}, "
            f"total={self.total}, items={len(self.items)})"
        )

    def _footer(self) -> str:
        return f"page {self.page} of {self.pages} · {self.total} rows"


@dataclass(frozen=True, repr=False)
class KeysetPage(_Items):
    """One page of a keyset pagination; pass ``next_cursor`` as ``after=`` for the next."""

    size: int
    next_cursor: str | None
    """An opaque cursor after this page's last row; None on the last page."""

    @property
    def has_next(self) -> bool:
        return self.next_cursor is not None

    def __repr__(self) -> str:
        return f"KeysetPage(size={self.size}, items={len(self.items)}, has_next={self.has_next})"

    def _footer(self) -> str:
        more = "more after this page" if self.has_next else "last page"
        return f"{len(self.items)} rows · {more}"


# Offset pagination -----------------------------------------------------------------


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
    entity = _single_entity(statement)
    with errors.translated():
        async with _session_scope(session, database) as s:
            result = await s.execute(window.apply(statement))
            columns = _column_names(entity, result.keys())
            items = _items(result, entity)
            if 0 < len(items) < size:
                total = window.offset + len(items)
            else:
                total = await s.scalar(_count(statement)) or 0
    return Page(items, total, page, size, columns=columns)


def _source(query: AnySelect | str, params: Mapping[str, Any] | None) -> AnySelect:
    """A ``Select`` for ``query``: SQL text becomes ``SELECT * FROM (sql) AS page_source``."""
    if isinstance(query, str):
        source = text(f"({query.strip().rstrip(';')}) AS page_source")
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


# Keyset pagination -----------------------------------------------------------------


@dataclass(frozen=True)
class _KeyColumn:
    """One column of a keyset key, its direction and where PostgreSQL puts its NULLs."""

    expression: ColumnElement[Any]
    descending: bool
    nulls_last: bool
    table_column: Column[Any] | None
    """The table column the expression reads, if it is one (for uniqueness and NULLs)."""
    nullable: bool

    @classmethod
    def parse(cls, key: Key, *, outer_join: bool) -> _KeyColumn:
        element = _clause(key)
        nulls: bool | None = None
        if isinstance(element, UnaryExpression) and element.modifier in _NULLS:
            nulls = element.modifier is operators.nulls_last_op
            element = element.element
        descending = False
        if isinstance(element, UnaryExpression) and element.modifier in _DIRECTIONS:
            descending = element.modifier is operators.desc_op
            element = element.element
        if isinstance(element, UnaryExpression):
            raise PaginationError(f"unsupported key {element}: use a column, .desc() or .asc()")
        column = _table_column(element)
        nullable = outer_join or column is None or column.nullable is not False
        # PostgreSQL's default: NULLS LAST for ASC, NULLS FIRST for DESC.
        nulls_last = (not descending) if nulls is None else nulls
        return cls(element, descending, nulls_last, column, nullable)

    def ordering(self) -> ColumnElement[Any]:
        ordered = self.expression.desc() if self.descending else self.expression.asc()
        if self.nulls_last == self.descending:  # not PostgreSQL's default: say it
            ordered = ordered.nulls_last() if self.nulls_last else ordered.nulls_first()
        return ordered

    def value(self, value: Any) -> ColumnElement[Any]:
        """``value`` as a bind of the key's type (True/False are values here, not IS)."""
        return literal(value, self.expression.type)

    def same(self, value: Any) -> ColumnElement[bool]:
        """Rows equal to ``value`` here (``=`` where NULL cannot occur: index-friendly)."""
        if self.nullable:
            return self.expression.is_not_distinct_from(value)
        return self.expression == self.value(value)

    def after(self, value: Any) -> ColumnElement[bool]:
        """Rows that sort after ``value`` in this column (NULLs placed as in the ORDER BY)."""
        if value is None:
            return false() if self.nulls_last else self.expression.is_not(None)
        bound = self.value(value)
        beyond = self.expression < bound if self.descending else self.expression > bound
        if self.nullable and self.nulls_last:
            return or_(beyond, self.expression.is_(None))
        return beyond


_DIRECTIONS = (operators.asc_op, operators.desc_op)
_NULLS = (operators.nulls_first_op, operators.nulls_last_op)


@dataclass(frozen=True)
class _Seek:
    """Orders a query by its key, filters it to rows after a cursor, and limits it."""

    keys: tuple[_KeyColumn, ...]
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
    def build(
        cls, query: AnySelect, key: Key | Sequence[Key], size: int, unique: bool
    ) -> _KeysetPlan:
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
        outer = any(_has_outer_join(f) for f in query.get_final_froms())
        keys = tuple(_KeyColumn.parse(k, outer_join=outer) for k in written)
        mappers = _mappers(query, keys)
        if not unique:
            _require_unique(keys, mappers)
        entity = _single_entity(query)
        readers = tuple(_reader(query, entity, k, mappers) for k in keys)
        return cls(query, _Seek(keys, size), entity, readers)

    async def fetch(self, session: AsyncSession, after: str | None) -> KeysetPage:
        last = _decode_cursor(after, len(self.seek.keys)) if after is not None else None
        with errors.translated():
            result = await session.execute(self.seek.apply(self.query, last))
            columns = _column_names(self.entity, result.keys())
            rows = _items(result, self.entity)
        items = rows[: self.seek.size]
        cursor = None
        if len(rows) > self.seek.size:
            cursor = _encode_cursor([read(items[-1]) for read in self.readers])
        return KeysetPage(items, self.seek.size, cursor, columns=columns)


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
    that repeats rows (one-to-many), add the joined table's key too.

    The key's values must be selected: ``select(Model)`` reads them from the entity,
    other selects need the key columns among their columns. ``next_cursor`` holds the
    last row's key values as URL-safe base64 JSON (no pickle: a cursor from a URL is
    data, never code).
    """
    plan = _KeysetPlan.build(query, key, size, unique)
    async with _session_scope(session, database) as s:
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
    plan = _KeysetPlan.build(query, key, size, unique)
    async with _session_scope(session, database) as s:
        while True:
            page = await plan.fetch(s, after)
            yield page
            if page.next_cursor is None:
                return
            after = page.next_cursor


def _require_unique(keys: Sequence[_KeyColumn], mappers: Sequence[Mapper[Any]]) -> None:
    """Raise unless the key's table columns cover a primary key or NOT NULL unique set."""
    columns = {k.table_column for k in keys if k.table_column is not None}
    tables = {c.table for c in columns if isinstance(c.table, Table)}
    if any(candidate <= columns for t in tables for candidate in _unique_sets(t)):
        return
    shown = ", ".join(_display(k, mappers) for k in keys)
    for key in keys:  # suggest the primary key of the first key column's table
        table = key.table_column.table if key.table_column is not None else None
        if isinstance(table, Table) and table.primary_key.columns:
            tiebreak = [_display_column(c, mappers, key.descending) for c in table.primary_key]
            sql = ", ".join(_display(k, [], direction=False) for k in keys)
            raise PaginationError(
                f"key ({sql}) is not unique - add a tiebreaker, "
                f"e.g. key=[{', '.join([shown, *tiebreak])}]"
            )
    raise PaginationError(
        f"key ({shown}) cannot be checked for uniqueness - add a primary key column as a "
        "tiebreaker, or pass unique=True if the key identifies rows"
    )


def _unique_sets(table: Table) -> Iterator[set[Column[Any]]]:
    """Column sets that identify a row: the primary key, unique constraints and unique
    indexes - of NOT NULL columns only (a unique nullable column may repeat NULLs)."""
    candidates = [table.primary_key.columns]
    candidates += [c.columns for c in table.constraints if isinstance(c, UniqueConstraint)]
    candidates += [i.columns for i in table.indexes if _is_unique_index(i)]
    for columns in candidates:
        if len(columns) and not any(c.nullable for c in columns):
            yield set(columns)


def _is_unique_index(index: Index) -> bool:
    """A unique index on plain columns (not expressions) covering every row (not partial)."""
    partial = index.dialect_options["postgresql"].get("where") is not None
    only_columns = all(isinstance(e, Column) for e in index.expressions)
    return bool(index.unique) and bool(index.expressions) and only_columns and not partial


def _reader(
    query: AnySelect, entity: Mapper[Any] | None, key: _KeyColumn, mappers: Sequence[Mapper[Any]]
) -> Callable[[Any], Any]:
    """How to read ``key``'s value from an item: an entity attribute or a row position."""
    shown = _display(key, mappers, direction=False)
    if entity is not None:
        prop = _property(entity, key.table_column)
        if prop is None:
            name = entity.class_.__name__
            raise PaginationError(
                f"key {shown} is not a column of {name} - key on its columns, "
                f"or select the key too, e.g. select({name}, {shown})"
            )
        return operator.attrgetter(prop)
    selected = list(query.selected_columns)
    for same in (_same_expression, _same_table_column, _same_name):
        for index, column in enumerate(selected):
            if same(column, key):
                return operator.itemgetter(index)
    raise PaginationError(
        f"key {shown} is not among the selected columns - select it, "
        f"e.g. .add_columns({shown}), so each page's last row gives the cursor"
    )


def _same_expression(column: ColumnElement[Any], key: _KeyColumn) -> bool:
    inner = getattr(column, "element", None)  # a Label's expression
    return column.compare(key.expression) or (
        isinstance(inner, ColumnElement) and inner.compare(key.expression)
    )


def _same_table_column(column: ColumnElement[Any], key: _KeyColumn) -> bool:
    return key.table_column is not None and _table_column(column) is key.table_column


def _same_name(column: ColumnElement[Any], key: _KeyColumn) -> bool:
    name = getattr(key.expression, "key", None)
    return name is not None and getattr(column, "key", None) == name


# Cursors ---------------------------------------------------------------------------

_TAGGED: tuple[tuple[type, str, Callable[[Any], Any], Callable[[Any], Any]], ...] = (
    (datetime, "datetime", datetime.isoformat, datetime.fromisoformat),
    (date, "date", date.isoformat, date.fromisoformat),
    (time, "time", time.isoformat, time.fromisoformat),
    (
        timedelta,
        "timedelta",
        lambda v: [v.days, v.seconds, v.microseconds],
        lambda v: timedelta(*v),
    ),
    (Decimal, "decimal", str, Decimal),
    (UUID, "uuid", str, UUID),
    (bytes, "bytes", lambda v: base64.b64encode(v).decode(), base64.b64decode),
)
"""Key value types JSON lacks, tagged so a cursor decodes to the same Python type
(datetime before date: a datetime is a date)."""


def _encode_cursor(values: Sequence[Any]) -> str:
    encoded: list[Any] = []
    for value in values:
        if value is None or isinstance(value, bool | int | float | str):
            encoded.append(value)
            continue
        for kind, tag, dump, _ in _TAGGED:
            if isinstance(value, kind):
                encoded.append({"$": tag, "v": dump(value)})
                break
        else:
            raise PaginationError(
                f"a key value of type {type(value).__name__} cannot go in a cursor - key on "
                "columns of plain types (numbers, text, dates, times, decimals, UUIDs)"
            )
    data = json.dumps(encoded, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _decode_cursor(cursor: str, expected: int) -> list[Any]:
    decoders = {tag: load for _, tag, _, load in _TAGGED}
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
        if not isinstance(values, list) or len(values) != expected:
            raise ValueError("not a list of the key's values")
        return [_decode_value(v, decoders) for v in values]
    except (ValueError, TypeError, KeyError, ArithmeticError):  # Decimal's InvalidOperation
        raise PaginationError(
            f"malformed cursor {str(cursor)[:40]!r} - pass the next_cursor of a page of the same "
            "query and key, or after=None to start from the first page"
        ) from None


def _decode_value(value: Any, decoders: Mapping[str, Callable[[Any], Any]]) -> Any:
    if isinstance(value, dict):
        return decoders[value["$"]](value["v"])
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise ValueError("not a key value")


# Helpers ---------------------------------------------------------------------------


@asynccontextmanager
async def _session_scope(
    session: AsyncSession | None, database: Database | None
) -> AsyncIterator[AsyncSession]:
    """The caller's session, or a new one (closed at the end; its reads need no commit)."""
    if session is not None:
        yield session
        return
    async with (database or get_database()).async_session() as own:
        yield own


def _single_entity(query: AnySelect) -> Mapper[Any] | None:
    """The mapper of ``select(Model)`` (or of an aliased model); None for other selects."""
    descriptions = query.column_descriptions
    if len(descriptions) != 1:
        return None
    inspected = inspect(descriptions[0]["expr"], raiseerr=False)
    if getattr(inspected, "is_mapper", False) or getattr(inspected, "is_aliased_class", False):
        return cast(Mapper[Any], inspected.mapper)
    return None


def _mappers(query: AnySelect, keys: Sequence[_KeyColumn]) -> list[Mapper[Any]]:
    """The mappers of the selected entities and of ORM key attributes: error messages
    name columns as the code does (``User.id``, not ``users.id``)."""
    candidates = [
        getattr(inspect(d.get("entity"), raiseerr=False), "mapper", None)
        for d in query.column_descriptions
    ]
    # An ORM attribute's SQL expression remembers its mapper in its annotations.
    candidates += [getattr(k.expression, "_annotations", {}).get("parentmapper") for k in keys]
    found: list[Mapper[Any]] = []
    for mapper in candidates:
        if isinstance(mapper, Mapper) and mapper not in found:
            found.append(mapper)
    return found


def _items(result: Result[Any], entity: Mapper[Any] | None) -> list[Any]:
    """Model instances for ``select(Model)``, else the rows."""
    if entity is None:
        return list(result.all())
    try:
        return list(result.scalars().all())
    except InvalidRequestError as exc:  # joinedload() of a collection: one row per child
        raise PaginationError(
            f"pages of {entity.class_.__name__} cannot load a collection with joinedload() "
            "(its rows repeat each object per child) - use selectinload(), which loads "
            "the collection in a second query"
        ) from exc


def _column_names(entity: Mapper[Any] | None, keys: Any) -> tuple[str, ...]:
    return tuple(entity.column_attrs.keys() if entity is not None else keys)


def _clause(key: Key) -> ColumnElement[Any]:
    """The SQL expression of an ORM attribute (``User.id``) or a Core column."""
    element = key.__clause_element__() if hasattr(key, "__clause_element__") else key
    if not isinstance(element, ColumnElement):
        raise PaginationError(f"key {key!r} is not a column - pass e.g. key=User.id")
    return element


def _table_column(element: ColumnElement[Any]) -> Column[Any] | None:
    """The table column an expression is (through ORM attributes, aliases, labels)."""
    bases = element.base_columns
    if len(bases) != 1:
        return None
    (base,) = bases
    return base if isinstance(base, Column) and isinstance(base.table, Table) else None


def _has_outer_join(source: Any) -> bool:
    """Whether a FROM item has an outer join: its NOT NULL columns can then be NULL."""
    if not isinstance(source, Join):
        return False
    nested = _has_outer_join(source.left) or _has_outer_join(source.right)
    return source.isouter or source.full or nested


def _display(key: _KeyColumn, mappers: Sequence[Mapper[Any]], *, direction: bool = True) -> str:
    descending = direction and key.descending
    if key.table_column is not None:
        return _display_column(key.table_column, mappers, descending)
    return f"{key.expression}.desc()" if descending else str(key.expression)


def _display_column(
    column: Column[Any], mappers: Sequence[Mapper[Any]], descending: bool = False
) -> str:
    """``User.created_at`` when a selected entity maps the column, else ``users.created_at``."""
    shown = str(column)
    for mapper in mappers:
        prop = _property(mapper, column)
        if prop is not None:
            shown = f"{mapper.class_.__name__}.{prop}"
            break
    return f"{shown}.desc()" if descending else shown


def _property(mapper: Mapper[Any], column: Column[Any] | None) -> str | None:
    """The attribute name under which ``mapper`` maps ``column``, if it does."""
    if column is None:
        return None
    try:
        return mapper.get_property_by_column(column).key
    except UnmappedColumnError:
        return None
