"""Keyset keys: a key column parsed with its direction and NULL placement, the check that
a key identifies rows (from the table's metadata, else from the database's catalog), how
to read a key's value from a page's last item, and how to name a key in an error message
the way the code wrote it (``User.id``).
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Index,
    Join,
    Table,
    UniqueConstraint,
    false,
    inspect,
    literal,
    or_,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapper
from sqlalchemy.orm.exc import UnmappedColumnError
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import ColumnClause, Label, UnaryExpression
from sqlalchemy.sql.expression import TableClause

from toolkit.errors import PaginationError
from toolkit.pagination._base import AnySelect
from toolkit.pagination._catalog_keys import TableKeys, table_keys

Key = Any
"""A key column: an ORM attribute or Core column, optionally ``.desc()``/``.nulls_last()``."""


@dataclass(frozen=True)
class KeyColumn:
    """One column of a keyset key, its direction and where PostgreSQL puts its NULLs."""

    expression: ColumnElement[Any]
    descending: bool
    nulls_last: bool
    table_column: ColumnClause[Any] | None
    """The table column the expression reads, if it is one (for uniqueness and NULLs)."""
    table: TableClause | None
    """The table whose column the key is: the table column's, or the query's only table
    for a bare ``column("id")``."""
    nullable: bool

    @classmethod
    def parse(cls, key: Key, *, outer_join: bool, query: AnySelect) -> KeyColumn:
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
        table = column.table if column is not None else _only_table(element, query)
        nullable = outer_join or getattr(column, "nullable", None) is not False
        # PostgreSQL's default: NULLS LAST for ASC, NULLS FIRST for DESC.
        nulls_last = (not descending) if nulls is None else nulls
        table = table if isinstance(table, TableClause) else None  # (as _table_column checked)
        return cls(element, descending, nulls_last, column, table, nullable)

    @property
    def name(self) -> str:
        """The column's name in its table (only for keys with a ``table``)."""
        column = self.table_column if self.table_column is not None else self.expression
        return str(getattr(column, "name", ""))

    def known_not_null(self, facts: Mapping[TableClause, TableKeys | None]) -> KeyColumn:
        """This key, NOT NULL if its table says so (then it needs no ``IS NULL`` branch,
        and PostgreSQL can seek an index range); call it only without an outer join."""
        found = facts.get(self.table) if self.table is not None else None
        if self.nullable and found is not None and self.name in found.not_null:
            return dataclasses.replace(self, nullable=False)
        return self

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


async def table_facts(
    session: AsyncSession, keys: Sequence[KeyColumn]
) -> dict[TableClause, TableKeys | None]:
    """What identifies the rows of each key column's table: its constraint metadata if it
    declares any, else the database's catalog (a ``table()`` construct, a ``Table`` of
    columns only). None for a table the catalog does not know either."""
    facts: dict[TableClause, TableKeys | None] = {}
    for table in dict.fromkeys(k.table for k in keys if k.table is not None):
        declared = _declared_keys(table)
        facts[table] = declared if declared is not None else await table_keys(session, table)
    return facts


def _declared_keys(table: TableClause) -> TableKeys | None:
    """A ``Table``'s unique column sets from its metadata; None if it declares no primary
    key, unique constraint or unique index (then only the catalog knows)."""
    if not isinstance(table, Table):
        return None
    declares = bool(table.primary_key.columns) or any(
        isinstance(c, UniqueConstraint) for c in table.constraints
    )
    if not declares and not any(i.unique for i in table.indexes):
        return None
    sets = tuple(tuple(c.name for c in columns) for columns in _unique_sets(table))
    return TableKeys(sets, frozenset(c.name for c in table.columns if c.nullable is False))


def require_unique(
    keys: Sequence[KeyColumn],
    mappers: Sequence[Mapper[Any]],
    facts: Mapping[TableClause, TableKeys | None],
) -> None:
    """Raise unless the key's columns cover a unique set of NOT NULL columns of a table;
    the message names the table's unique sets and the tiebreaker to add."""
    named = {(k.table, k.name) for k in keys if k.table is not None}
    for table, found in facts.items():
        candidates = found.unique_sets if found is not None else ()
        if any({(table, name) for name in s} <= named for s in candidates):
            return
    shown = ", ".join(_display(k, mappers) for k in keys)
    sql = ", ".join(_display(k, [], direction=False) for k in keys)
    for key in keys:  # suggest the first key column's table's primary key (or smallest set)
        found = facts.get(key.table) if key.table is not None else None
        if key.table is not None and found is not None and found.unique_sets:
            have = {name for table, name in named if table is key.table}
            tiebreak = [
                _display_named(key.table, name, mappers, key.descending)
                for name in found.unique_sets[0]
                if name not in have
            ]
            sets = ", ".join(f"({', '.join(s)})" for s in found.unique_sets)
            raise PaginationError(
                f"key ({sql}) is not unique - the unique column sets of "
                f"{key.table.fullname} are {sets}; add a tiebreaker, "
                f"e.g. key=[{', '.join([shown, *tiebreak])}]"
            )
    for key in keys:
        if key.table is not None and facts.get(key.table) is not None:
            raise PaginationError(
                f"key ({sql}) is not unique - {key.table.fullname} has no primary key, "
                "unique constraint or unique index on NOT NULL columns; key on columns "
                "that identify rows, or pass unique=True if the key does"
            )
    raise PaginationError(
        f"key ({shown}) cannot be checked for uniqueness - add a primary key column as a "
        "tiebreaker, or pass unique=True if the key identifies rows"
    )


def _unique_sets(table: Table) -> Iterator[list[Column[Any]]]:
    """Column sets that identify a row: the primary key, unique constraints and unique
    indexes - of NOT NULL columns only (a unique nullable column may repeat NULLs)."""
    candidates = [table.primary_key.columns]
    candidates += [c.columns for c in table.constraints if isinstance(c, UniqueConstraint)]
    candidates += [i.columns for i in table.indexes if _is_unique_index(i)]
    for columns in candidates:
        if len(columns) and not any(c.nullable for c in columns):
            yield list(columns)


def _is_unique_index(index: Index) -> bool:
    """A unique index on plain columns (not expressions) covering every row (not partial)."""
    partial = index.dialect_options["postgresql"].get("where") is not None
    only_columns = all(isinstance(e, Column) for e in index.expressions)
    return bool(index.unique) and bool(index.expressions) and only_columns and not partial


def key_reader(
    query: AnySelect, entity: Mapper[Any] | None, key: KeyColumn, mappers: Sequence[Mapper[Any]]
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


def _same_expression(column: ColumnElement[Any], key: KeyColumn) -> bool:
    inner = getattr(column, "element", None)  # a Label's expression
    return column.compare(key.expression) or (
        isinstance(inner, ColumnElement) and inner.compare(key.expression)
    )


def _same_table_column(column: ColumnElement[Any], key: KeyColumn) -> bool:
    return key.table_column is not None and _table_column(column) is key.table_column


def _same_name(column: ColumnElement[Any], key: KeyColumn) -> bool:
    name = getattr(key.expression, "key", None)
    return name is not None and getattr(column, "key", None) == name


def key_mappers(query: AnySelect, keys: Sequence[KeyColumn]) -> list[Mapper[Any]]:
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


def _clause(key: Key) -> ColumnElement[Any]:
    """The SQL expression of an ORM attribute (``User.id``) or a Core column."""
    element = key.__clause_element__() if hasattr(key, "__clause_element__") else key
    if not isinstance(element, ColumnElement):
        raise PaginationError(f"key {key!r} is not a column - pass e.g. key=User.id")
    return element


def _table_column(element: ColumnElement[Any]) -> ColumnClause[Any] | None:
    """The table column an expression is (through ORM attributes, aliases, labels): of a
    ``Table`` or of a ``table()`` construct."""
    bases = element.base_columns
    if len(bases) != 1:
        return None
    (base,) = bases
    if isinstance(base, ColumnClause) and not base.is_literal:
        return base if isinstance(base.table, TableClause) else None
    return None


def _only_table(element: ColumnElement[Any], query: AnySelect) -> TableClause | None:
    """The table a bare ``column("id")`` reads: the query's only FROM table, unless a
    selected column is labelled with the same name (ORDER BY would read the label)."""
    if not isinstance(element, ColumnClause) or element.is_literal:
        return None
    froms = query.get_final_froms()
    if element.table is not None or len(froms) != 1 or not isinstance(froms[0], TableClause):
        return None
    if any(isinstance(c, Label) and c.name == element.name for c in query.selected_columns):
        return None
    return froms[0]


def has_outer_join(source: Any) -> bool:
    """Whether a FROM item has an outer join: its NOT NULL columns can then be NULL."""
    if not isinstance(source, Join):
        return False
    nested = has_outer_join(source.left) or has_outer_join(source.right)
    return source.isouter or source.full or nested


def _display(key: KeyColumn, mappers: Sequence[Mapper[Any]], *, direction: bool = True) -> str:
    descending = direction and key.descending
    if key.table_column is not None:
        return _display_column(key.table_column, mappers, descending)
    return f"{key.expression}.desc()" if descending else str(key.expression)


def _display_named(
    table: TableClause, name: str, mappers: Sequence[Mapper[Any]], descending: bool
) -> str:
    """Column ``name`` of ``table`` as :func:`_display_column` shows it, also when the
    table construct does not list the column."""
    column = table.c.get(name)
    if column is not None:
        return _display_column(column, mappers, descending)
    shown = f"{table.fullname}.{name}"
    return f"{shown}.desc()" if descending else shown


def _display_column(
    column: ColumnClause[Any], mappers: Sequence[Mapper[Any]], descending: bool = False
) -> str:
    """``User.created_at`` when a selected entity maps the column, else ``users.created_at``."""
    shown = str(column)
    for mapper in mappers:
        prop = _property(mapper, column)
        if prop is not None:
            shown = f"{mapper.class_.__name__}.{prop}"
            break
    return f"{shown}.desc()" if descending else shown


def _property(mapper: Mapper[Any], column: ColumnClause[Any] | None) -> str | None:
    """The attribute name under which ``mapper`` maps ``column``, if it does."""
    if column is None:
        return None
    try:
        return mapper.get_property_by_column(column).key
    except UnmappedColumnError:
        return None
