"""What the database's catalog says identifies a table's rows: its unique column sets and
its NOT NULL columns, for keys of tables described without constraint metadata (a
``table()`` construct, a ``Table`` declared with columns only).

The table is resolved as PostgreSQL resolves the name in a statement (``to_regclass``:
the schema if one is given, else the session's search_path, temporary tables first). A
table's facts are read once and kept per engine for ``CACHE_SECONDS``, so a notebook
that pages the same table again pays no catalog round trip, and a constraint dropped
meanwhile is seen again soon; temporary tables, which differ per connection, are never
kept.
"""

from __future__ import annotations

import json
import time
import weakref
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.expression import TableClause

from toolkit import errors

CACHE_SECONDS = 60.0
"""How long a table's catalog facts are reused before they are read again."""


@dataclass(frozen=True)
class TableKeys:
    """A table's row identifiers as the catalog declares them."""

    unique_sets: tuple[tuple[str, ...], ...]
    """Column sets no two rows share, primary key first, then the smallest: only sets of
    NOT NULL columns (a unique nullable column may repeat NULLs)."""
    not_null: frozenset[str]
    """Columns with a validated NOT NULL constraint."""


# Unique indexes the planner itself would trust to prove uniqueness: valid, immediate,
# not partial, no expressions, not an exclusion (WITHOUT OVERLAPS) index; only their key
# columns (INCLUDE columns are not part of the uniqueness). A NOT NULL constraint added
# NOT VALID (PostgreSQL 18) sets attnotnull although older rows may still hold NULLs.
_FACTS = text(
    """
    SELECT c.relpersistence = 't' AS temporary,
      (SELECT coalesce(json_agg(a.attname), '[]')
         FROM pg_attribute a
        WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attnotnull
          AND NOT EXISTS (
            SELECT FROM pg_constraint n
             WHERE n.conrelid = c.oid AND n.contype = 'n' AND NOT n.convalidated
               AND n.conkey = ARRAY[a.attnum])
      )::text AS not_null,
      (SELECT coalesce(json_agg(s.columns ORDER BY i.indisprimary DESC, i.indnkeyatts,
                                i.indexrelid), '[]')
         FROM pg_index i
        CROSS JOIN LATERAL (
          SELECT json_agg(a.attname ORDER BY k.n) AS columns
            FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, n)
            JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
           WHERE k.n <= i.indnkeyatts) AS s
        WHERE i.indrelid = c.oid AND i.indisunique AND i.indisvalid AND i.indimmediate
          AND NOT i.indisexclusion AND i.indpred IS NULL AND i.indexprs IS NULL
      )::text AS unique_sets
    FROM pg_class c
    WHERE c.oid = to_regclass(:name)
    """
)

_cache: weakref.WeakKeyDictionary[Engine, dict[tuple[str | None, str], tuple[float, TableKeys]]]
_cache = weakref.WeakKeyDictionary()


async def table_keys(session: AsyncSession, table: TableClause) -> TableKeys | None:
    """``table``'s unique column sets and NOT NULL columns; None if no such table exists
    (a CTE's name, a typo) - then nothing about its rows is known."""
    schema: str | None = getattr(table, "schema", None)
    connection = await session.connection()
    kept = _cache.setdefault(connection.sync_engine, {})
    found = kept.get((schema, table.name))
    if found is not None and time.monotonic() - found[0] < CACHE_SECONDS:
        return found[1]
    name = connection.dialect.identifier_preparer.format_table(table)  # as statements name it
    with errors.translated():
        row = (await session.execute(_FACTS, {"name": name})).one_or_none()
    if row is None:
        return None
    sets = [tuple(s) for s in json.loads(row.unique_sets)]
    not_null = frozenset(json.loads(row.not_null))
    keys = TableKeys(tuple(s for s in sets if not_null.issuperset(s)), not_null)
    if not row.temporary:
        kept[(schema, table.name)] = (time.monotonic(), keys)
    return keys
