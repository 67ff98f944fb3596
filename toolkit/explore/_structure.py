"""What a database holds, from its catalog: ``tables()`` lists the tables, views and
materialized views with their estimated size, and ``describe()`` gives one table's columns,
indexes and foreign keys. No table is read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

import pandas as pd
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession

from toolkit import errors
from toolkit.database import USER_SCHEMA, Database, close_match, connection_or_pooled
from toolkit.explore._catalog import (
    TableName,
    catalog_columns,
    resolve_relation,
)
from toolkit.explore._distribution import (
    CITUS_COLUMNS,
    CITUS_TABLES_CTE,
    NOT_CITUS_OWN,
    Distribution,
    citus_installed,
    distribution_of,
)
from toolkit.frames import df
from toolkit.runtime import interruptible
from toolkit.sql import checked, quote_like_postgres

_TABLES_SQL = f"""
{{with_citus}}
SELECT n.nspname AS schema,
       c.relname AS name,
       CASE c.relkind WHEN 'r' THEN 'table' WHEN 'v' THEN 'view'
            WHEN 'm' THEN 'materialized view' WHEN 'p' THEN 'partitioned table'
            WHEN 'f' THEN 'foreign table' END AS kind,
       s.estimate AS estimated_rows,
       s.bytes AS total_bytes,
       pg_catalog.pg_size_pretty(s.bytes) AS total_size{{citus_columns}}
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace{{citus_join}}
CROSS JOIN LATERAL (
    SELECT
        CASE WHEN {{citus_known}} THEN {{citus_estimate}}
             WHEN c.relkind IN ('r', 'm', 'f') AND c.reltuples >= 0
                 THEN c.reltuples::bigint
             WHEN c.relkind = 'p'
                 THEN (SELECT sum(p.reltuples)::bigint
                       FROM pg_catalog.pg_partition_tree(c.oid) t
                       JOIN pg_catalog.pg_class p ON p.oid = t.relid
                       WHERE t.isleaf AND p.reltuples >= 0)
        END AS estimate,
        CASE WHEN {{citus_known}} THEN {{citus_bytes}}
             WHEN c.relkind IN ('r', 'm') THEN pg_catalog.pg_total_relation_size(c.oid)
             WHEN c.relkind = 'p'
                 THEN (SELECT sum(pg_catalog.pg_total_relation_size(t.relid))::bigint
                       FROM pg_catalog.pg_partition_tree(c.oid) t)
        END AS bytes
) s
WHERE c.relkind IN ('r', 'v', 'm', 'p', 'f') AND {USER_SCHEMA} AND {NOT_CITUS_OWN}
"""

_PLAIN = {
    "with_citus": "",
    "citus_columns": "",
    "citus_join": "",
    "citus_known": "false",
    "citus_estimate": "NULL",
    "citus_bytes": "NULL",
}
_CITUS = {
    "with_citus": f"WITH {CITUS_TABLES_CTE}",
    "citus_columns": "".join(f",\n       ct.{name}" for name in CITUS_COLUMNS),
    "citus_join": "\nLEFT JOIN citus ct ON ct.relid = c.oid",
    "citus_known": "ct.relid IS NOT NULL",
    "citus_estimate": "ct.estimate",
    "citus_bytes": "ct.bytes",
}

_SCHEMAS = text(f"""
SELECT n.nspname FROM pg_catalog.pg_namespace n WHERE {USER_SCHEMA} ORDER BY 1
""")


# tables() --------------------------------------------------------------------------


@interruptible
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

    On a Citus coordinator the rows and sizes of distributed and reference tables are
    their shards', summed (the coordinator holds only an empty shell), four columns say
    how each is distributed (``citus_table_type``, ``distribution_column``,
    ``colocation_id``, ``shard_count``; NULL for a table Citus does not manage), and
    Citus's own views (``citus_tables``, ``citus_schemas``) are left out.
    """
    with errors.translated():
        async with connection_or_pooled(session, database) as conn:
            citus = await citus_installed(conn, session, database)
    listing = _TABLES_SQL.format_map(_CITUS if citus else _PLAIN)
    params: dict[str, Any] | None = None
    if schema is not None:
        checked(schema, "schema name")  # a longer name cannot match: say why
        listing += " AND n.nspname = :schema"
        params = {"schema": schema}
    frame = await df(listing + " ORDER BY 1, 2", params, session=session, database=database)
    if schema is not None and frame.empty:
        with errors.translated():
            async with connection_or_pooled(session, database) as conn:
                schemas = list((await conn.execute(_SCHEMAS)).scalars())
        if schema not in schemas:
            raise errors.NoSuchSchema(_no_such_schema(schema, schemas))
    return frame


def _no_such_schema(schema: str, schemas: Sequence[str]) -> str:
    close = close_match(schema, schemas)
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
    distribution: Distribution | None = None
    """On a Citus coordinator, how the table is spread over the nodes (distribution
    column, colocation group, shard count); None for a table Citus does not manage."""

    def __repr__(self) -> str:
        parts = [f"{self.name} ({self.kind})"]
        if self.distribution is not None:
            parts[0] += f"\n{self.distribution}"
        for title, frame in self._sections():
            body = _shown(frame).to_string(index=False, na_rep="") if len(frame) else "(none)"
            parts.append(f"{title}:\n" + _indent(body, "  "))
        return "\n\n".join(parts)

    def _repr_html_(self) -> str:
        html = [f"<h4>{escape(self.name)} <small>({escape(self.kind)})</small></h4>"]
        if self.distribution is not None:
            html.append(f"<p>{escape(str(self.distribution))}</p>")
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


@interruptible
async def describe(
    table: TableName,
    *,
    session: AsyncSession | None = None,
    database: Database | None = None,
) -> TableDescription:
    """Columns, indexes and foreign keys of ``table`` (``"name"`` or ``"schema.name"``),
    and on a Citus coordinator its distribution (``.distribution``).

    Types are PostgreSQL's own spelling (``format_type``), also for types SQLAlchemy does
    not know. An unknown name raises ``NoSuchTable`` with the closest existing name.
    """
    with errors.translated():
        async with connection_or_pooled(session, database) as conn:
            relation = await resolve_relation(conn, table)
            columns = await catalog_columns(conn, relation)
            info = await conn.run_sync(_constraints, relation.schema, relation.name)
            distribution = await distribution_of(conn, relation.oid, session, database)
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
    return TableDescription(
        relation.display, relation.kind, column_frame, index_frame, fk_frame, distribution
    )


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
    target = quote_like_postgres(fk["referred_table"])
    if fk.get("referred_schema"):
        target = f"{quote_like_postgres(fk['referred_schema'])}.{target}"
    return f"{target}({', '.join(quote_like_postgres(c) for c in fk['referred_columns'])})"
