"""Finding a table in the catalog: the lookup ``describe``, ``sample`` and ``profile`` start with.

A name (``"name"``, ``"schema.name"``, a ``Table`` or a mapped class) is resolved the way
PostgreSQL resolves it in a query - through the ``search_path``, matched exactly - or
``NoSuchTable`` / ``NoSuchSchema`` is raised with the closest existing name. The table found
is then reflected by SQLAlchemy and its columns read as psql's ``\\d`` shows them. Names
are quoted here for the server and for display.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import ARRAY, MetaData, Table, Text, bindparam, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SAWarning
from sqlalchemy.ext.asyncio import AsyncConnection

from toolkit import errors
from toolkit.database import (
    closest_table,
    table_candidates,
)
from toolkit.sql import checked, quote_always

TableName = str | Table | type
"""``"name"``, ``"schema.name"``, a ``Table`` or a mapped class (its table is looked up)."""


_KINDS = {
    "r": "table",
    "v": "view",
    "m": "materialized view",
    "p": "partitioned table",
    "f": "foreign table",
}

# Schemas shown: the user's, and this session's own temporary schema (pg_temp_N).
# Each spelling is a quoted identifier (or schema.identifier) sent as a bound value;
# to_regclass resolves it the way PostgreSQL resolves a name in a query (search_path).
_RESOLVE = text("""
SELECT c.oid, n.nspname, c.relname, c.relkind::text, c.reltuples
FROM unnest(CAST(:specs AS text[])) WITH ORDINALITY AS s(spec, i)
JOIN pg_catalog.pg_class c ON c.oid = pg_catalog.to_regclass(s.spec)
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'v', 'm', 'p', 'f')
ORDER BY s.i
LIMIT 1
""").bindparams(bindparam("specs", type_=ARRAY(Text)))

_COLUMNS = text("""
SELECT a.attname,
       pg_catalog.format_type(a.atttypid, a.atttypmod),
       NOT a.attnotnull,
       pg_catalog.pg_get_expr(d.adbin, d.adrelid),
       a.attidentity::text,
       a.attgenerated::text
FROM pg_catalog.pg_attribute a
LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attrelid = :oid AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
""")


@dataclass(frozen=True)
class Relation:
    """A table, view or materialized view found in the catalog."""

    oid: int
    schema: str
    name: str
    kind: str
    estimated_rows: float | None

    @property
    def display(self) -> str:
        return f"{self.schema}.{self.name}"


def _spellings(table: TableName) -> tuple[str, list[str]]:
    """The name as written, and the quoted spellings to try (``a.b``: schema a first)."""
    if isinstance(table, type):
        mapped = getattr(table, "__table__", None)
        if not isinstance(mapped, Table):
            raise TypeError(f"{table.__name__} is not a mapped class - pass a table name")
        table = mapped
    if isinstance(table, Table):
        shown = f"{table.schema}.{table.name}" if table.schema else table.name
        spec = quote_always(checked(table.name, "table name"))
        if table.schema:
            spec = f"{quote_always(checked(table.schema, 'schema name'))}.{spec}"
        return shown, [spec]
    if not isinstance(table, str):
        raise TypeError(f"expected a table name, got {type(table).__name__}")
    if not table:
        raise ValueError("the table name is empty - tk.tables() lists the tables")
    splits = [
        (table[:i], table[i + 1 :])
        for i, char in enumerate(table)
        if char == "." and 0 < i < len(table) - 1
    ]
    specs = [
        f"{quote_always(schema)}.{quote_always(name)}"
        for schema, name in splits
        if _holdable(schema) and _holdable(name)
    ]
    if _holdable(table) or not specs:  # a name that itself contains a dot
        # Too long a name is refused (InvalidIdentifier) rather than found truncated.
        specs.append(quote_always(checked(table, "table name")))
    return table, specs


def _holdable(name: str) -> bool:
    """Whether PostgreSQL can hold ``name`` exactly (not too long, no NUL)."""
    try:
        checked(name)
    except errors.InvalidIdentifier:
        return False
    return True


async def resolve_relation(conn: AsyncConnection, table: TableName) -> Relation:
    """The relation ``table`` names, as a query would find it; else ``NoSuchTable``."""
    shown, specs = _spellings(table)
    row = (await conn.execute(_RESOLVE, {"specs": specs})).first()
    if row is not None:
        estimate = float(row[4]) if row[4] is not None and row[4] >= 0 else None
        return Relation(int(row[0]), row[1], row[2], _KINDS[row[3]], estimate)
    candidates = await table_candidates(conn)
    raise errors.NoSuchTable(_no_such_table(shown, candidates))


def _no_such_table(shown: str, candidates: Sequence[tuple[str, str, bool]]) -> str:
    close = closest_table(shown, candidates)
    if close is not None:
        return f"no table named {shown!r}; did you mean {close!r}?"
    listed = [name for _, name, visible in candidates if visible]
    listed += [f"{schema}.{name}" for schema, name, visible in candidates if not visible]
    if not listed:
        return f"no table named {shown!r} (the database has no tables yet)"
    more = ", ..." if len(listed) > 10 else ""
    return f"no table named {shown!r} (tables: {', '.join(listed[:10])}{more})"


@contextmanager
def _quiet_reflection() -> Iterator[None]:
    """Reflect types SQLAlchemy does not know (point, xml, ...) without a warning each:
    they come back as NullType, and the catalog gives their names."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Did not recognize type", SAWarning)
        yield


async def reflect_table(conn: AsyncConnection, relation: Relation) -> Table:
    """The relation as a SQLAlchemy ``Table``, for SQL that quotes every identifier."""

    def load(sync: Connection) -> Table:
        with _quiet_reflection():
            return Table(
                relation.name,
                MetaData(),
                schema=relation.schema,
                autoload_with=sync,
                resolve_fks=False,
            )

    return await conn.run_sync(load)


@dataclass(frozen=True)
class CatalogColumn:
    """A column as the catalog (and psql's ``\\d``) describes it."""

    name: str
    type: str
    """As PostgreSQL writes it (``character varying(255)``), known to SQLAlchemy or not."""
    nullable: bool
    default: str | None
    """The default expression, or how the column is generated (identity, computed)."""


async def catalog_columns(conn: AsyncConnection, relation: Relation) -> list[CatalogColumn]:
    """The relation's columns with PostgreSQL's own type names, known to SQLAlchemy or not."""
    rows = await conn.execute(_COLUMNS, {"oid": relation.oid})
    columns = []
    for name, type_, nullable, expression, identity, generated in rows:
        default = expression
        if identity:
            default = f"GENERATED {'ALWAYS' if identity == 'a' else 'BY DEFAULT'} AS IDENTITY"
        elif generated:
            stored = "STORED" if generated == "s" else "VIRTUAL"
            default = f"GENERATED ALWAYS AS ({expression}) {stored}"
        columns.append(CatalogColumn(name, type_, bool(nullable), default))
    return columns
