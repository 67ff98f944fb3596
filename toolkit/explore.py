"""Look around a database from a notebook: what is there, what it holds, how queries run.

* ``await tables()`` - every table, view and materialized view with its estimated rows
  and size, from the catalog (no table is read).
* ``await describe("users")`` - columns, indexes and foreign keys of one table.
* ``await sample("users", 5)`` and ``await profile("users")`` - a few rows, and per-column
  statistics computed by PostgreSQL in one statement (the table is never loaded).
* ``await explain(query, analyze=True)`` - the plan, as text, JSON and a DataFrame.
* ``with count_queries() as q:`` - the statements SQLAlchemy sends, to make an N+1 visible.

They work on any database, not only on the toolkit's models: tables are found through the
catalog and reflected by SQLAlchemy. A table is named as ``"name"`` (found through the
``search_path``, as PostgreSQL would) or ``"schema.name"``; the name is matched exactly
(no case folding) and passed to the server as a bound value, and the SQL that reads the
table is built by SQLAlchemy from the reflected ``Table``, which quotes every identifier.
"""

from __future__ import annotations

import contextvars
import difflib
import json
import threading
import warnings
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from html import escape
from typing import Any, cast

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
    MetaData,
    Numeric,
    Select,
    String,
    Table,
    Text,
    Time,
    bindparam,
    distinct,
    event,
    func,
    inspect,
    select,
    text,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects.postgresql import CIDR, DOMAIN, INET, INTERVAL, JSONB
from sqlalchemy.dialects.postgresql.base import RESERVED_WORDS
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SAWarning
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import NullType, TypeEngine

from toolkit import errors, frames
from toolkit.database import Database, driver_connection, get_database

__all__ = [
    "NoSuchSchema",
    "NoSuchTable",
    "Plan",
    "QueryCount",
    "TableDescription",
    "count_queries",
    "describe",
    "explain",
    "profile",
    "sample",
    "tables",
]

TableName = str | Table | type
"""``"name"``, ``"schema.name"``, a ``Table`` or a mapped class (its table is looked up)."""

TABLESAMPLE_FROM = 100_000
"""Estimated rows from which ``sample(random=True)`` reads a ``TABLESAMPLE`` of pages
instead of shuffling the whole table."""


class NoSuchTable(errors.UndefinedTable):
    """No table, view or materialized view has the name asked for.

    A subclass of ``UndefinedTable`` (SQLSTATE 42P01), so one ``except`` catches both this
    and the server's own "relation does not exist".
    """

    sqlstate = "42P01"


class NoSuchSchema(errors.DatabaseError):
    """No schema has the name asked for (SQLSTATE 3F000, PostgreSQL's invalid_schema_name)."""

    sqlstate = "3F000"


# Finding tables --------------------------------------------------------------------

_KINDS = {
    "r": "table",
    "v": "view",
    "m": "materialized view",
    "p": "partitioned table",
    "f": "foreign table",
}

# Schemas shown: the user's, and this session's own temporary schema (pg_temp_N).
_USER_SCHEMA = (
    "((n.nspname !~ '^pg_' AND n.nspname <> 'information_schema') "
    "OR n.oid = pg_catalog.pg_my_temp_schema())"
)

_TABLES_SQL = f"""
SELECT n.nspname AS schema,
       c.relname AS name,
       CASE c.relkind WHEN 'r' THEN 'table' WHEN 'v' THEN 'view'
            WHEN 'm' THEN 'materialized view' WHEN 'p' THEN 'partitioned table'
            WHEN 'f' THEN 'foreign table' END AS kind,
       s.estimate AS estimated_rows,
       s.bytes AS total_bytes,
       pg_catalog.pg_size_pretty(s.bytes) AS total_size
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN LATERAL (
    SELECT
        CASE WHEN c.relkind IN ('r', 'm', 'f') AND c.reltuples >= 0
                 THEN c.reltuples::bigint
             WHEN c.relkind = 'p'
                 THEN (SELECT sum(p.reltuples)::bigint
                       FROM pg_catalog.pg_partition_tree(c.oid) t
                       JOIN pg_catalog.pg_class p ON p.oid = t.relid
                       WHERE t.isleaf AND p.reltuples >= 0)
        END AS estimate,
        CASE WHEN c.relkind IN ('r', 'm') THEN pg_catalog.pg_total_relation_size(c.oid)
             WHEN c.relkind = 'p'
                 THEN (SELECT sum(pg_catalog.pg_total_relation_size(t.relid))::bigint
                       FROM pg_catalog.pg_partition_tree(c.oid) t)
        END AS bytes
) s
WHERE c.relkind IN ('r', 'v', 'm', 'p', 'f') AND {_USER_SCHEMA}
"""

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

_CANDIDATES = text(f"""
SELECT n.nspname, c.relname, pg_catalog.pg_table_is_visible(c.oid)
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'v', 'm', 'p', 'f') AND {_USER_SCHEMA}
ORDER BY 1, 2
""")

_SCHEMAS = text(f"""
SELECT n.nspname FROM pg_catalog.pg_namespace n WHERE {_USER_SCHEMA} ORDER BY 1
""")

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
class _Relation:
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
        spec = _quote_always(table.name)
        return shown, [f"{_quote_always(table.schema)}.{spec}" if table.schema else spec]
    if not isinstance(table, str):
        raise TypeError(f"expected a table name, got {type(table).__name__}")
    if not table:
        raise ValueError("the table name is empty - tk.tables() lists the tables")
    specs = [
        f"{_quote_always(table[:i])}.{_quote_always(table[i + 1 :])}"
        for i, char in enumerate(table)
        if char == "." and 0 < i < len(table) - 1
    ]
    specs.append(_quote_always(table))  # a name that itself contains a dot
    return table, specs


def _quote_always(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def _resolve(conn: AsyncConnection, table: TableName) -> _Relation:
    shown, specs = _spellings(table)
    row = (await conn.execute(_RESOLVE, {"specs": specs})).first()
    if row is not None:
        estimate = float(row[4]) if row[4] is not None and row[4] >= 0 else None
        return _Relation(int(row[0]), row[1], row[2], _KINDS[row[3]], estimate)
    candidates = [(r[0], r[1], bool(r[2])) for r in await conn.execute(_CANDIDATES)]
    raise NoSuchTable(_no_such_table(shown, candidates))


def _no_such_table(shown: str, candidates: Sequence[tuple[str, str, bool]]) -> str:
    # Tables on the search path are offered by their bare name, every table as schema.name.
    names = [name for _, name, visible in candidates if visible]
    names += [f"{schema}.{name}" for schema, name, _ in candidates]
    close = _close_match(shown, names)
    if close is not None:
        return f"no table named {shown!r}; did you mean {close!r}?"
    listed = [name for _, name, visible in candidates if visible]
    listed += [f"{schema}.{name}" for schema, name, visible in candidates if not visible]
    if not listed:
        return f"no table named {shown!r} (the database has no tables yet)"
    more = ", ..." if len(listed) > 10 else ""
    return f"no table named {shown!r} (tables: {', '.join(listed[:10])}{more})"


def _close_match(word: str, choices: Sequence[str]) -> str | None:
    """The closest choice, ignoring case (``Users`` suggests ``users``)."""
    lowered: dict[str, str] = {}
    for choice in choices:
        lowered.setdefault(choice.lower(), choice)
    found = difflib.get_close_matches(word.lower(), list(lowered), n=1)
    return lowered[found[0]] if found else None


@asynccontextmanager
async def _connection(
    session: AsyncSession | None, database: Database | None
) -> AsyncIterator[AsyncConnection]:
    """The session's connection (inside its transaction), else a pooled one."""
    if session is not None:
        yield await session.connection()
        return
    async with (database or get_database()).engine.connect() as conn:
        yield conn


@contextmanager
def _quiet_reflection() -> Iterator[None]:
    """Reflect types SQLAlchemy does not know (point, xml, ...) without a warning each:
    they come back as NullType, and the catalog gives their names."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Did not recognize type", SAWarning)
        yield


async def _reflect(conn: AsyncConnection, relation: _Relation) -> Table:
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
class _Column:
    """A column as the catalog (and psql's ``\\d``) describes it."""

    name: str
    type: str
    """As PostgreSQL writes it (``character varying(255)``), known to SQLAlchemy or not."""
    nullable: bool
    default: str | None
    """The default expression, or how the column is generated (identity, computed)."""


async def _columns(conn: AsyncConnection, relation: _Relation) -> list[_Column]:
    rows = await conn.execute(_COLUMNS, {"oid": relation.oid})
    columns = []
    for name, type_, nullable, expression, identity, generated in rows:
        default = expression
        if identity:
            default = f"GENERATED {'ALWAYS' if identity == 'a' else 'BY DEFAULT'} AS IDENTITY"
        elif generated:
            stored = "STORED" if generated == "s" else "VIRTUAL"
            default = f"GENERATED ALWAYS AS ({expression}) {stored}"
        columns.append(_Column(name, type_, bool(nullable), default))
    return columns


# tables() --------------------------------------------------------------------------


async def tables(
    schema: str | None = None,
    *,
    session: AsyncSession | None = None,
    database: Database | None = None,
) -> pd.DataFrame:
    """The tables, views and materialized views, one row each, from the catalog.

    Columns: ``schema``, ``name``, ``kind`` (table, view, materialized view, partitioned
    table, foreign table), ``estimated_rows`` (the planner's estimate, ``pg_class.reltuples``;
    NULL when never analyzed, and for views), ``total_bytes`` and ``total_size`` (with
    indexes and TOAST, ``pg_total_relation_size``; a partitioned table sums its partitions).
    ``schema=None`` lists every user schema (not ``pg_catalog`` nor ``information_schema``).
    """
    sql = _TABLES_SQL
    params: dict[str, Any] | None = None
    if schema is not None:
        sql += " AND n.nspname = :schema"
        params = {"schema": schema}
    frame = await frames.df(sql + " ORDER BY 1, 2", params, session=session, database=database)
    if schema is not None and frame.empty:
        with errors.translated():
            async with _connection(session, database) as conn:
                schemas = list((await conn.execute(_SCHEMAS)).scalars())
        if schema not in schemas:
            raise NoSuchSchema(_no_such_schema(schema, schemas))
    return frame


def _no_such_schema(schema: str, schemas: Sequence[str]) -> str:
    close = _close_match(schema, schemas)
    if close is not None:
        return f"no schema named {schema!r}; did you mean {close!r}?"
    return f"no schema named {schema!r} (schemas: {', '.join(schemas)})"


# describe() ------------------------------------------------------------------------


@dataclass(frozen=True, eq=False, repr=False)
class TableDescription:
    """What ``describe()`` found: the table's columns, indexes and foreign keys."""

    name: str
    """``schema.name``."""
    kind: str
    columns: pd.DataFrame
    """One row per column: name, type, nullable, default, primary_key."""
    indexes: pd.DataFrame
    """One row per index (the primary key's first): name, columns, unique."""
    foreign_keys: pd.DataFrame
    """One row per foreign key: name, columns, references (``table(columns)``)."""

    def __repr__(self) -> str:
        parts = [f"{self.name} ({self.kind})"]
        for title, frame in self._sections():
            body = _shown(frame).to_string(index=False, na_rep="") if len(frame) else "(none)"
            parts.append(f"{title}:\n" + _indent(body, "  "))
        return "\n\n".join(parts)

    def _repr_html_(self) -> str:
        html = [f"<h4>{escape(self.name)} <small>({escape(self.kind)})</small></h4>"]
        for title, frame in self._sections():
            html.append(f"<p><b>{escape(title)}</b></p>")
            if len(frame):
                html.append(_shown(frame).to_html(index=False, na_rep=""))
            else:
                html.append("<p><small>(none)</small></p>")
        return "".join(html)

    def _sections(self) -> list[tuple[str, pd.DataFrame]]:
        return [
            ("columns", self.columns),
            ("indexes", self.indexes),
            ("foreign keys", self.foreign_keys),
        ]


def _shown(frame: pd.DataFrame) -> pd.DataFrame:
    """Lists of column names shown as ``a, b`` rather than ``['a', 'b']``."""
    shown = frame.copy()
    for name in shown.columns:
        shown[name] = shown[name].map(lambda v: ", ".join(v) if isinstance(v, list) else v)
    return shown


def _indent(body: str, prefix: str) -> str:
    return "\n".join(prefix + line for line in body.splitlines())


async def describe(
    table: TableName,
    *,
    session: AsyncSession | None = None,
    database: Database | None = None,
) -> TableDescription:
    """Columns, indexes and foreign keys of ``table`` (``"name"`` or ``"schema.name"``).

    Types are PostgreSQL's own spelling (``format_type``), also for types SQLAlchemy does
    not know. An unknown name raises ``NoSuchTable`` with the closest existing name.
    """
    with errors.translated():
        async with _connection(session, database) as conn:
            relation = await _resolve(conn, table)
            columns = await _columns(conn, relation)
            info = await conn.run_sync(_constraints, relation.schema, relation.name)
    pk, indexes, foreign_keys = info
    pk_columns = set(pk.get("constrained_columns") or ())
    column_frame = pd.DataFrame(
        {
            "name": pd.Series([c.name for c in columns], dtype="str"),
            "type": pd.Series([c.type for c in columns], dtype="str"),
            "nullable": pd.Series([c.nullable for c in columns], dtype="bool"),
            "default": pd.Series([c.default for c in columns], dtype="object"),
            "primary_key": pd.Series([c.name in pk_columns for c in columns], dtype="bool"),
        }
    )
    index_rows: list[tuple[str, list[str], bool]] = []
    if pk.get("name"):
        index_rows.append((pk["name"], list(pk["constrained_columns"]), True))
    for index in sorted(indexes, key=lambda i: str(i["name"])):
        if index["name"] != pk.get("name"):
            index_rows.append((index["name"], _index_columns(index), bool(index["unique"])))
    index_frame = pd.DataFrame(
        {
            "name": pd.Series([r[0] for r in index_rows], dtype="str"),
            "columns": pd.Series([r[1] for r in index_rows], dtype="object"),
            "unique": pd.Series([r[2] for r in index_rows], dtype="bool"),
        }
    )
    foreign_keys = sorted(foreign_keys, key=lambda f: str(f["name"]))
    fk_frame = pd.DataFrame(
        {
            "name": pd.Series([f["name"] for f in foreign_keys], dtype="str"),
            "columns": pd.Series(
                [list(f["constrained_columns"]) for f in foreign_keys], dtype="object"
            ),
            "references": pd.Series([_references(f) for f in foreign_keys], dtype="str"),
        }
    )
    return TableDescription(relation.display, relation.kind, column_frame, index_frame, fk_frame)


def _constraints(sync: Connection, schema: str, name: str) -> tuple[Any, Any, Any]:
    """Primary key, indexes and foreign keys, reflected by SQLAlchemy."""
    inspector = inspect(sync)
    # Tables of the default schema are reflected without one: foreign keys to its tables
    # then read ``users(id)``, as PostgreSQL itself would write them.
    within: str | None = None if schema == inspector.default_schema_name else schema
    return (
        inspector.get_pk_constraint(name, within),
        inspector.get_indexes(name, within),
        inspector.get_foreign_keys(name, within),
    )


def _index_columns(index: Mapping[str, Any]) -> list[str]:
    """Column names, and an expression index's expressions as PostgreSQL writes them."""
    expressions = index.get("expressions")
    if expressions:
        return [str(e) for e in expressions]
    return [str(c) for c in index["column_names"]]


def _references(fk: Mapping[str, Any]) -> str:
    target = _quote_identifier(fk["referred_table"])
    if fk.get("referred_schema"):
        target = f"{_quote_identifier(fk['referred_schema'])}.{target}"
    return f"{target}({', '.join(_quote_identifier(c) for c in fk['referred_columns'])})"


def _quote_identifier(name: str) -> str:
    """Quoted only where PostgreSQL would need it (its ``quote_identifier``)."""
    plain = (
        bool(name)
        and (name[0].islower() or name[0] == "_")
        and all(c.islower() or c.isdigit() or c == "_" for c in name)
        and name.isascii()
        and name not in RESERVED_WORDS
    )
    return name if plain else _quote_always(name)


# sample() --------------------------------------------------------------------------


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
        async with _connection(session, database) as conn:
            relation = await _resolve(conn, table)
            reflected = await _reflect(conn, relation)
    query: Select[Any]
    if random:
        pages = _pages_to_sample(relation, n)
        if pages is not None:
            sampled = reflected.tablesample(func.system(pages), name="sampled")
            query = select(sampled).order_by(func.random()).limit(n)
            frame = await frames.df(query, session=session, database=database)
            if len(frame) == n:
                return frame
        query = select(reflected).order_by(func.random()).limit(n)
    else:
        query = select(reflected).order_by(*reflected.primary_key.columns).limit(n)
    return await frames.df(query, session=session, database=database)


def _pages_to_sample(relation: _Relation, n: int) -> float | None:
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
        async with _connection(session, database) as conn:
            relation = await _resolve(conn, table)
            reflected = await _reflect(conn, relation)
            types = {c.name: c.type for c in await _columns(conn, relation)}
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


# explain() -------------------------------------------------------------------------


@dataclass(frozen=True, eq=False, repr=False)
class Plan:
    """A query plan: ``text`` as psql shows it, ``json`` as PostgreSQL sent it."""

    sql: str
    """The statement explained (with ``$n`` placeholders for its bound values)."""
    json: dict[str, Any]
    """PostgreSQL's ``EXPLAIN (FORMAT JSON)`` document: ``json["Plan"]`` is the root node."""
    text: str
    """The plan in PostgreSQL's text layout (rendered from the JSON)."""
    analyzed: bool

    @property
    def total_cost(self) -> float:
        """The planner's cost estimate for the whole statement (arbitrary units)."""
        return float(self.json["Plan"]["Total Cost"])

    @property
    def estimated_rows(self) -> float:
        return float(self.json["Plan"]["Plan Rows"])

    @property
    def execution_ms(self) -> float | None:
        """Milliseconds the statement ran for (``analyze=True`` only)."""
        value = self.json.get("Execution Time")
        return None if value is None else float(value)

    @property
    def planning_ms(self) -> float | None:
        value = self.json.get("Planning Time")
        return None if value is None else float(value)

    def nodes(self) -> Iterator[tuple[int, dict[str, Any]]]:
        """``(depth, node)`` for every plan node, in the order the text shows them."""
        stack: list[tuple[int, dict[str, Any]]] = [(0, self.json["Plan"])]
        while stack:
            depth, node = stack.pop()
            yield depth, node
            stack.extend((depth + 1, child) for child in reversed(node.get("Plans", [])))

    def to_df(self) -> pd.DataFrame:
        """One row per plan node: depth, node_type, relation, index, startup_cost,
        total_cost, plan_rows, and when analyzed actual_startup_ms, actual_total_ms,
        actual_rows and actual_loops (times and rows are per loop, as in the text)."""
        nodes = list(self.nodes())

        def column(key: str, dtype: str) -> pd.Series:
            return pd.Series([node.get(key) for _, node in nodes], dtype=dtype)

        data: dict[str, pd.Series] = {
            "depth": pd.Series([depth for depth, _ in nodes], dtype="Int64"),
            "node_type": column("Node Type", "str"),
            "relation": column("Relation Name", "str"),
            "index": column("Index Name", "str"),
            "startup_cost": column("Startup Cost", "Float64"),
            "total_cost": column("Total Cost", "Float64"),
            "plan_rows": column("Plan Rows", "Float64").round().astype("Int64"),
        }
        if self.analyzed:
            data["actual_startup_ms"] = column("Actual Startup Time", "Float64")
            data["actual_total_ms"] = column("Actual Total Time", "Float64")
            data["actual_rows"] = column("Actual Rows", "Float64")
            data["actual_loops"] = column("Actual Loops", "Float64").round().astype("Int64")
        return pd.DataFrame(data)

    def __repr__(self) -> str:
        return self.text

    def _repr_html_(self) -> str:
        return f"<pre>{escape(self.text)}</pre>"


async def explain(
    query: frames.Query,
    params: Mapping[str, Any] | None = None,
    *,
    analyze: bool = False,
    session: AsyncSession | None = None,
    database: Database | None = None,
) -> Plan:
    """The plan PostgreSQL chooses for ``query`` (a ``Select``, any statement, or SQL text
    with ``:named`` parameters bound from ``params``).

    ``analyze=True`` also runs the statement (``EXPLAIN (ANALYZE, BUFFERS)``) to report
    real times, rows and buffer use - inside a savepoint or transaction that is always
    rolled back, so explaining an UPDATE or DELETE changes nothing. The statement is
    explained once, as JSON; ``Plan.text`` is rendered from that JSON in psql's layout
    (a second ``EXPLAIN (FORMAT TEXT)`` would run an analyzed statement twice).
    """
    statement = frames._statement(query, params)
    sql, args = frames._compile(statement, params)
    sql = sql.strip().rstrip(";")
    options = "FORMAT JSON, ANALYZE, BUFFERS" if analyze else "FORMAT JSON"
    with errors.translated():
        async with driver_connection(session, database, write=analyze) as raw:
            # PostgreSQL 18 shows actual rows with two decimals (an average per loop).
            rows_decimals = 2 if raw.get_server_version().major >= 18 else 0
            if analyze:
                transaction = raw.transaction()  # a savepoint inside a session's transaction
                await transaction.start()
                try:
                    document = await raw.fetchval(f"EXPLAIN ({options}) {sql}", *args)
                finally:
                    await transaction.rollback()
            else:
                document = await raw.fetchval(f"EXPLAIN ({options}) {sql}", *args)
    if isinstance(document, str):  # SQLAlchemy's engines decode json; a bare asyncpg does not
        document = json.loads(document)
    parsed = cast(dict[str, Any], document[0])
    return Plan(sql, parsed, _render_plan(parsed, rows_decimals), analyze)


# Rendering a JSON plan as psql's text ----------------------------------------------

_NOT_IN_TEXT = frozenset(
    {
        "Node Type", "Strategy", "Partial Mode", "Operation", "Parent Relationship",
        "Subplan Name", "Custom Plan Provider", "Parallel Aware", "Async Capable",
        "Join Type", "Command", "Scan Direction", "Index Name", "Relation Name", "Schema",
        "Alias", "Function Name", "Table Function Name", "CTE Name", "Tuplestore Name",
        "Startup Cost", "Total Cost", "Plan Rows", "Plan Width", "Actual Startup Time",
        "Actual Total Time", "Actual Rows", "Actual Loops", "Plans", "Inner Unique",
    }
)  # fmt: skip
"""Node keys the text format shows in the node's title line, or not at all."""

_ONLY_WHEN_SET = frozenset(
    {
        "Disabled", "Single Copy", "Rows Removed by Filter", "Rows Removed by Join Filter",
        "Rows Removed by Index Recheck", "Subplans Removed",
    }
)  # fmt: skip
"""Keys the text format shows only when true or non-zero."""

_AGGREGATES = {"Plain": "Aggregate", "Sorted": "GroupAggregate", "Hashed": "HashAggregate"}
_AGGREGATES["Mixed"] = "MixedAggregate"

_TARGETS = (
    "Relation Name",
    "Function Name",
    "Table Function Name",
    "CTE Name",
    "Tuplestore Name",
)

_BUFFER_KEYS = tuple(
    f"{area} {kind} Blocks"
    for area, kinds in (
        ("Shared", ("Hit", "Read", "Dirtied", "Written")),
        ("Local", ("Hit", "Read", "Dirtied", "Written")),
        ("Temp", ("Read", "Written")),
    )
    for kind in kinds
)
_IO_KEYS = (
    *(
        f"{area} I/O {kind} Time"
        for area in ("Shared", "Local", "Temp")
        for kind in ("Read", "Write")
    ),
    "I/O Read Time",
    "I/O Write Time",  # before PostgreSQL 15
)


def _render_plan(document: Mapping[str, Any], rows_decimals: int = 2) -> str:
    """An ``EXPLAIN (FORMAT JSON)`` document (one element) in psql's text layout.

    Numbers are printed with the server's precision (costs 2 decimals, times 3); actual
    rows have ``rows_decimals`` (2 from PostgreSQL 18, 0 before).
    """
    lines: list[str] = []
    _render_node(document["Plan"], 0, lines, rows_decimals)
    for key, value in document.items():
        if key == "Plan":
            continue
        if key == "Planning":
            details = _buffer_lines(value)
            if details:
                lines.append("Planning:")
                lines += ["  " + line for line in details]
        elif key == "Triggers":
            lines += [_trigger_line(trigger) for trigger in value]
        elif key == "JIT":
            lines += ["JIT:", *("  " + line for line in _jit_lines(value))]
        elif key in ("Planning Time", "Execution Time"):
            lines.append(f"{key}: {value:.3f} ms")
        elif not isinstance(value, dict | list):
            lines.append(f"{key}: {_text(value)}")
    return "\n".join(lines)


def _render_node(
    node: Mapping[str, Any], indent: int, lines: list[str], rows_decimals: int
) -> None:
    """Mirrors ``ExplainNode`` in PostgreSQL's explain.c, for the text format."""
    subplan = node.get("Subplan Name")
    if subplan:
        lines.append("  " * indent + subplan)
        indent += 1
    prefix = ""
    if indent:
        prefix = "  " * indent + "->  "
        indent += 2
    lines.append(prefix + _title(node) + _measures(node, rows_decimals))
    indent += 1
    lines += ["  " * indent + line for line in _details(node)]
    for child in node.get("Plans", []):
        _render_node(child, indent, lines, rows_decimals)


def _details(node: Mapping[str, Any]) -> list[str]:
    """The lines under a node's title, in the order PostgreSQL prints them (the JSON's)."""
    lines: list[str] = []
    done: set[str] = set()
    for key, value in node.items():
        if key in done or key in _NOT_IN_TEXT:
            continue
        if key in _ONLY_WHEN_SET:
            if value:
                lines.append(f"{key}: {_text(value)}")
            continue
        group = _group(node, key)
        if group is not None:
            keys, rendered = group
            done.update(keys)
            lines += rendered
        elif key == "Workers" and isinstance(value, list):
            lines += _worker_lines(node["Node Type"], value)
        elif not isinstance(value, dict) and not (isinstance(value, list) and _nested(value)):
            lines.append(f"{key}: {_text(value)}")
        # other nested structures (grouping sets, incremental sort groups) are left out
    return lines


def _worker_lines(kind: str, workers: list[Any]) -> list[str]:
    """``Worker 0:  Sort Method: quicksort  Memory: 25kB`` for each parallel worker."""
    lines = []
    for worker in workers:
        if not isinstance(worker, dict):
            continue
        details = {k: v for k, v in worker.items() if k != "Worker Number"}
        rendered = _details({"Node Type": kind, **details})
        if rendered:
            lines.append(f"Worker {worker.get('Worker Number')}:  {rendered[0]}")
            lines += ["  " + line for line in rendered[1:]]
    return lines


def _title(node: Mapping[str, Any]) -> str:
    kind: str = node["Node Type"]
    title = ""
    if node.get("Parallel Aware"):
        title += "Parallel "
    if node.get("Async Capable"):
        title += "Async "
    if kind == "ModifyTable":
        name = node.get("Operation", kind)
    elif kind in ("Merge Join", "Hash Join"):
        name = kind.split()[0]  # the join type adds "... Join"
    elif kind == "Foreign Scan" and node.get("Operation", "Select") != "Select":
        name = f"Foreign {node['Operation']}"
    elif kind == "Custom Scan" and node.get("Custom Plan Provider"):
        name = f"Custom Scan ({node['Custom Plan Provider']})"
    elif kind == "Aggregate":
        name = _AGGREGATES.get(node.get("Strategy", "Plain"), kind)
        if node.get("Partial Mode") in ("Partial", "Finalize"):
            name = f"{node['Partial Mode']} {name}"
    elif kind == "SetOp":
        name = "HashSetOp" if node.get("Strategy") == "Hashed" else "SetOp"
    else:
        name = kind
    title += str(name)
    if kind in ("Index Scan", "Index Only Scan"):
        if node.get("Scan Direction") == "Backward":
            title += " Backward"
        title += f" using {_quote_identifier(node['Index Name'])}"
    if kind == "Bitmap Index Scan":
        title += f" on {_quote_identifier(node['Index Name'])}"
    elif "Alias" in node:
        target = next((node[k] for k in _TARGETS if k in node), None)
        title += " on"
        if target is not None:
            schema = node.get("Schema")
            quoted = _quote_identifier(target)
            title += f" {_quote_identifier(schema)}.{quoted}" if schema else f" {quoted}"
        if target is None or node["Alias"] != target:
            title += f" {_quote_identifier(node['Alias'])}"
    if kind in ("Nested Loop", "Merge Join", "Hash Join"):
        join = node.get("Join Type", "Inner")
        if join != "Inner":
            title += f" {join} Join"
        elif kind != "Nested Loop":
            title += " Join"
    if kind == "SetOp" and "Command" in node:
        title += f" {node['Command']}"
    return title


def _nested(values: list[Any]) -> bool:
    return bool(values) and isinstance(values[0], dict)


def _measures(node: Mapping[str, Any], rows_decimals: int) -> str:
    """``  (cost=0.00..35.50 rows=2550 width=4) (actual time=... rows=... loops=1)``."""
    out = ""
    if "Total Cost" in node:
        out += (
            f"  (cost={node['Startup Cost']:.2f}..{node['Total Cost']:.2f} "
            f"rows={node['Plan Rows']:.0f} width={node['Plan Width']})"
        )
    if "Actual Loops" in node:
        if node["Actual Loops"]:
            out += " (actual "
            if "Actual Total Time" in node:
                start, total = node["Actual Startup Time"], node["Actual Total Time"]
                out += f"time={start:.3f}..{total:.3f} "
            out += f"rows={node['Actual Rows']:.{rows_decimals}f} loops={node['Actual Loops']:.0f})"
        else:
            out += " (never executed)"
    return out


def _group(node: Mapping[str, Any], key: str) -> tuple[tuple[str, ...], list[str]] | None:
    """Keys psql shows together on one line (buffers, sort, hash and cache details)."""
    keys: tuple[str, ...]
    if key in _BUFFER_KEYS or key in _IO_KEYS:
        return _BUFFER_KEYS + _IO_KEYS, _buffer_lines(node)
    kind = node["Node Type"]
    if key in ("Sort Method", "Sort Space Used", "Sort Space Type"):
        keys = ("Sort Method", "Sort Space Used", "Sort Space Type")
        line = f"Sort Method: {node.get('Sort Method')}"
        if "Sort Space Used" in node:
            line += f"  {node.get('Sort Space Type')}: {node['Sort Space Used']}kB"
        return keys, [line]
    if kind == "Hash" and key in _HASH_KEYS:
        return _HASH_KEYS, [_hash_line(node)]
    if kind == "Aggregate" and key in _HASHAGG_KEYS:
        return _HASHAGG_KEYS, _hashagg_lines(node)
    if kind == "Memoize" and key in _MEMOIZE_KEYS:
        return _MEMOIZE_KEYS, [_memoize_line(node)]
    if key in ("Storage", "Maximum Storage"):
        keys = ("Storage", "Maximum Storage")
        line = f"Storage: {node.get('Storage')}  Maximum Storage: {node.get('Maximum Storage')}kB"
        return keys, [line]
    if key in ("Exact Heap Blocks", "Lossy Heap Blocks"):
        keys = ("Exact Heap Blocks", "Lossy Heap Blocks")
        parts = [
            f"{label}={node[k]}"
            for label, k in (("exact", keys[0]), ("lossy", keys[1]))
            if node.get(k)
        ]
        return keys, [f"Heap Blocks: {' '.join(parts)}"] if parts else []
    return None


_HASH_KEYS = (
    "Hash Buckets",
    "Original Hash Buckets",
    "Hash Batches",
    "Original Hash Batches",
    "Peak Memory Usage",
)
_HASHAGG_KEYS = ("Planned Partitions", "HashAgg Batches", "Peak Memory Usage", "Disk Usage")
_MEMOIZE_KEYS = (
    "Cache Hits",
    "Cache Misses",
    "Cache Evictions",
    "Cache Overflows",
    "Peak Memory Usage",
)


def _hash_line(node: Mapping[str, Any]) -> str:
    buckets, batches = node.get("Hash Buckets"), node.get("Hash Batches")
    before = node.get("Original Hash Buckets"), node.get("Original Hash Batches")
    memory = f"Memory Usage: {node.get('Peak Memory Usage')}kB"
    if before != (buckets, batches):
        return (
            f"Buckets: {buckets} (originally {before[0]})  "
            f"Batches: {batches} (originally {before[1]})  {memory}"
        )
    return f"Buckets: {buckets}  Batches: {batches}  {memory}"


def _hashagg_lines(node: Mapping[str, Any]) -> list[str]:
    parts = []
    if node.get("Planned Partitions"):
        parts.append(f"Planned Partitions: {node['Planned Partitions']}")
    if "HashAgg Batches" in node:
        batches = node["HashAgg Batches"]
        used = f"Batches: {batches}  Memory Usage: {node.get('Peak Memory Usage')}kB"
        if batches > 1:
            used += f"  Disk Usage: {node.get('Disk Usage')}kB"
        parts.append(used)
    return ["  ".join(parts)] if parts else []


def _memoize_line(node: Mapping[str, Any]) -> str:
    return (
        f"Hits: {node.get('Cache Hits')}  Misses: {node.get('Cache Misses')}  "
        f"Evictions: {node.get('Cache Evictions')}  Overflows: {node.get('Cache Overflows')}  "
        f"Memory Usage: {node.get('Peak Memory Usage')}kB"
    )


def _buffer_lines(values: Mapping[str, Any]) -> list[str]:
    """``Buffers: shared hit=3 read=1, temp written=5`` - non-zero counters only."""
    areas = []
    for area, kinds in (
        ("shared", ("Hit", "Read", "Dirtied", "Written")),
        ("local", ("Hit", "Read", "Dirtied", "Written")),
        ("temp", ("Read", "Written")),
    ):
        counts = [
            f"{kind.lower()}={values[key]}"
            for kind in kinds
            if values.get(key := f"{area.title()} {kind} Blocks")
        ]
        if counts:
            areas.append(f"{area} {' '.join(counts)}")
    lines = [f"Buffers: {', '.join(areas)}"] if areas else []
    timings = []
    for area in ("Shared", "Local", "Temp"):
        times = [
            f"{kind.lower()}={values[key]}"
            for kind in ("Read", "Write")
            if values.get(key := f"{area} I/O {kind} Time")
        ]
        if times:
            timings.append(f"{area.lower()} {' '.join(times)}")
    legacy = [
        f"{kind.lower()}={values[key]}"
        for kind in ("Read", "Write")
        if values.get(key := f"I/O {kind} Time")
    ]
    if legacy:
        timings.append(" ".join(legacy))
    if timings:
        lines.append(f"I/O Timings: {', '.join(timings)}")
    return lines


def _jit_lines(jit: Mapping[str, Any]) -> list[str]:
    lines = [f"Functions: {jit.get('Functions')}"]
    options = jit.get("Options") or {}
    if options:
        lines.append("Options: " + ", ".join(f"{k} {_text(v)}" for k, v in options.items()))
    timing = jit.get("Timing") or {}
    if timing:
        parts = []
        for step, value in timing.items():
            if isinstance(value, dict):  # PostgreSQL 17: Generation (Deform ...)
                inner = ", ".join(f"{k} {v:.3f} ms" for k, v in value.items() if k != "Total")
                parts.append(f"{step} {value.get('Total', 0):.3f} ms ({inner})")
            else:
                parts.append(f"{step} {value:.3f} ms")
        lines.append("Timing: " + ", ".join(parts))
    return lines


def _trigger_line(trigger: Mapping[str, Any]) -> str:
    constraint = trigger.get("Constraint Name")
    line = "Trigger" if constraint else f"Trigger {trigger.get('Trigger Name')}"
    if constraint:
        line += f" for constraint {constraint}"
    if "Time" in trigger:
        return f"{line}: time={trigger['Time']:.3f} calls={_text(trigger.get('Calls'))}"
    return f"{line}: calls={_text(trigger.get('Calls'))}"


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(_text(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # counts: JSON may write 3.0 where the text has 3
    return str(value)


# count_queries() -------------------------------------------------------------------


@dataclass(eq=False)
class QueryCount:
    """The SQL statements SQLAlchemy sent while a ``count_queries()`` block ran."""

    statements: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.statements)

    def __repr__(self) -> str:
        shown = "".join(
            f"\n  {i}. {' '.join(sql.split())[:100]}" for i, sql in enumerate(self.statements, 1)
        )
        plural = "" if self.count == 1 else "s"
        return f"QueryCount({self.count} statement{plural}){shown}"


_counting: contextvars.ContextVar[tuple[QueryCount, ...]] = contextvars.ContextVar(
    "toolkit_count_queries", default=()
)
_listening = 0
_listening_lock = threading.Lock()


def _record(
    conn: Connection,
    cursor: Any,
    statement: str,
    parameters: Any,
    context: Any,
    executemany: bool,
) -> None:
    for counter in _counting.get():
        counter.statements.append(statement)


@contextmanager
def count_queries() -> Iterator[QueryCount]:
    """Count the statements SQLAlchemy sends, on any engine, while the block runs.

    ``with tk.count_queries() as q: await ...`` then ``q.count`` and ``q.statements``: a
    loop that lazily loads a relationship per object shows up as 1 + N statements, the
    same loop after ``selectinload()`` as 2. Only statements of the current task (and of
    tasks it starts inside the block) are counted: a ``ContextVar`` keeps concurrent
    notebooks and tests apart. Statements ``tk.df`` and the bulk helpers send straight to
    asyncpg (COPY, prepared statements) bypass SQLAlchemy and are not counted.
    """
    global _listening
    counter = QueryCount()
    token = _counting.set((*_counting.get(), counter))
    with _listening_lock:
        if _listening == 0:
            event.listen(Engine, "before_cursor_execute", _record)
        _listening += 1
    try:
        yield counter
    finally:
        with _listening_lock:
            _listening -= 1
            if _listening == 0:
                event.remove(Engine, "before_cursor_execute", _record)
        try:
            _counting.reset(token)
        except ValueError:  # exited in another context than entered: just drop this one
            _counting.set(tuple(c for c in _counting.get() if c is not counter))
