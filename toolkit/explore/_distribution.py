"""What Citus knows about a table: how it is distributed, and its rows and size summed
over its shards.

On a Citus coordinator a distributed table is an empty shell; its rows live in shards on
the worker nodes, so the coordinator's ``pg_class.reltuples`` and
``pg_total_relation_size`` say 0 rows and 8 kB. The numbers here come from the shards
themselves: one ``run_command_on_all_nodes`` call asks every node, in parallel, for the
``reltuples`` and ``pg_total_relation_size`` of the shards it holds (one round trip per
node, where ``run_command_on_shards`` would make one per shard, and ``citus_tables`` gives
sizes but no row estimates). A shard held by several nodes (a reference table's, copied
everywhere) is counted once, so a size is one copy's. A table with a shard no node
reported (its node down, or a schema the role may not use) gets NULL, not a smaller sum.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from toolkit.database import Database, get_database

CITUS_COLUMNS = ("citus_table_type", "distribution_column", "colocation_id", "shard_count")
"""The columns ``tables()`` adds on a Citus coordinator (Citus's own names, as in
``citus_tables``)."""

NOT_CITUS_OWN = """NOT EXISTS (
    SELECT 1 FROM pg_catalog.pg_depend d
    JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid
    WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = c.oid
      AND d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass
      AND d.deptype = 'e' AND e.extname IN ('citus', 'citus_columnar'))"""
"""A condition on ``pg_class c``: the relation is not one of Citus's own (``citus_tables``,
``citus_schemas``, ...), which the extension creates in the user's ``public`` schema."""

_INSTALLED = text("SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'citus')")

# Each node lists (shard id, reltuples, bytes) of the shard tables it holds, in the
# schemas the user may use (shard_name fails on any other).
_ON_EACH_NODE = """
SELECT coalesce(json_agg(json_build_array(
           s.shardid, c.reltuples, pg_catalog.pg_total_relation_size(c.oid))), '[]')
FROM pg_catalog.pg_dist_shard s
JOIN pg_catalog.pg_class t ON t.oid = s.logicalrelid
JOIN pg_catalog.pg_class c
  ON c.oid = pg_catalog.to_regclass(pg_catalog.shard_name(s.logicalrelid, s.shardid))
WHERE pg_catalog.has_schema_privilege(t.relnamespace, 'USAGE')
"""

CITUS_TABLES_CTE = f"""
citus_placements AS (
    SELECT (p.e ->> 0)::bigint AS shardid, (p.e ->> 1)::float8 AS reltuples,
           (p.e ->> 2)::bigint AS bytes
    FROM pg_catalog.run_command_on_all_nodes($citus${_ON_EACH_NODE}$citus$) r
    CROSS JOIN LATERAL pg_catalog.json_array_elements(r.result::json) AS p(e)
    WHERE r.success
),
citus_shard_stats AS (
    SELECT shardid, max(reltuples) AS reltuples, max(bytes) AS bytes
    FROM citus_placements GROUP BY shardid
),
citus AS (
    SELECT p.logicalrelid::oid AS relid,
           CASE WHEN p.colocationid IN (SELECT colocationid FROM pg_catalog.pg_dist_schema)
                    THEN 'schema'
                WHEN p.partkey IS NOT NULL THEN 'distributed'
                WHEN p.repmodel = 't' THEN 'reference'
                WHEN p.colocationid = 0 THEN 'local'
                ELSE 'distributed' END AS citus_table_type,
           pg_catalog.column_to_column_name(p.logicalrelid, p.partkey) AS distribution_column,
           p.colocationid AS colocation_id,
           count(s.shardid) AS shard_count,
           -- unknown, not too small, when a shard went unmeasured (its node down)
           CASE WHEN count(st.shardid) = count(s.shardid)
                THEN sum(st.reltuples) FILTER (WHERE st.reltuples >= 0)::bigint END
               AS estimate,
           CASE WHEN count(st.shardid) = count(s.shardid) THEN sum(st.bytes)::bigint END
               AS bytes
    FROM pg_catalog.pg_dist_partition p
    LEFT JOIN pg_catalog.pg_dist_shard s ON s.logicalrelid = p.logicalrelid
    LEFT JOIN citus_shard_stats st ON st.shardid = s.shardid
    GROUP BY p.logicalrelid, p.colocationid, p.partkey, p.repmodel
)"""
"""Common table expressions ending in ``citus``: one row per table Citus manages (``relid``,
its type, distribution column, colocation group, shard count, and the shards' summed
``estimate`` and ``bytes``). Valid only where the citus extension is installed."""

_ONE_TABLE = text("""
SELECT CASE WHEN p.colocationid IN (SELECT colocationid FROM pg_catalog.pg_dist_schema)
                THEN 'schema'
            WHEN p.partkey IS NOT NULL THEN 'distributed'
            WHEN p.repmodel = 't' THEN 'reference'
            WHEN p.colocationid = 0 THEN 'local'
            ELSE 'distributed' END,
       pg_catalog.column_to_column_name(p.logicalrelid, p.partkey),
       p.colocationid,
       (SELECT count(*) FROM pg_catalog.pg_dist_shard s WHERE s.logicalrelid = p.logicalrelid),
       (SELECT count(DISTINCT pl.groupid) FROM pg_catalog.pg_dist_shard s
        JOIN pg_catalog.pg_dist_placement pl ON pl.shardid = s.shardid
        WHERE s.logicalrelid = p.logicalrelid)
FROM pg_catalog.pg_dist_partition p
WHERE p.logicalrelid = CAST(:oid AS oid)
""")


@dataclass(frozen=True)
class Distribution:
    """How Citus spreads a table over its nodes."""

    citus_table_type: str
    """``distributed`` (hash-distributed on a column), ``reference`` (a full copy on
    every node), ``schema`` (schema-based sharding: one shard) or ``local`` (on the
    coordinator only)."""
    distribution_column: str | None
    colocation_id: int
    """Tables of the same colocation group keep equal distribution values on the same
    node, so joins on the distribution column run shard by shard, without moving rows."""
    shard_count: int
    nodes: int
    """Nodes holding at least one shard (a copy, for a reference table)."""

    def __str__(self) -> str:
        shards = f"{self.shard_count} shard{'s' if self.shard_count != 1 else ''}"
        where = f"on {self.nodes} node{'s' if self.nodes != 1 else ''}"
        if self.citus_table_type == "reference":
            return f"reference table: a copy on each of {self.nodes} nodes ({shards})"
        if self.distribution_column is not None:
            return (
                f"distributed by {self.distribution_column}, colocation group "
                f"{self.colocation_id}, {shards} {where}"
            )
        return f"{self.citus_table_type} table, colocation group {self.colocation_id}, {shards}"


async def citus_installed(
    conn: AsyncConnection, session: AsyncSession | None, database: Database | None
) -> bool:
    """Whether this database has the citus extension (a coordinator, or a worker): from
    the server facts its engine learned on the first connect, or, in a caller's session
    (whose engine may belong to no ``Database``), from the catalog."""
    if session is None:
        return (await (database or get_database()).server()).citus is not None
    return bool((await conn.execute(_INSTALLED)).scalar())


async def distribution_of(
    conn: AsyncConnection, oid: int, session: AsyncSession | None, database: Database | None
) -> Distribution | None:
    """The table's distribution, or None where Citus does not manage it (or is absent)."""
    if not await citus_installed(conn, session, database):
        return None
    row = (await conn.execute(_ONE_TABLE, {"oid": oid})).first()
    if row is None:
        return None
    kind, column, colocation, shards, nodes = row
    return Distribution(str(kind), column, int(colocation), int(shards), int(nodes))


async def shard_estimate(
    conn: AsyncConnection, oid: int, session: AsyncSession | None, database: Database | None
) -> int | None:
    """The table's rows summed over its shards' estimates; None where Citus does not
    manage it (or is absent), or its shards were never analyzed."""
    if not await citus_installed(conn, session, database):
        return None
    found = await conn.execute(_ESTIMATE, {"oid": oid})
    value = found.scalar()
    return None if value is None else int(value)


_ESTIMATE = text(
    f"WITH {CITUS_TABLES_CTE}\nSELECT estimate FROM citus WHERE relid = CAST(:oid AS oid)"
)
