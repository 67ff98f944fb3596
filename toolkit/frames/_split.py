"""How a parallel read splits a query into parts that together give each row once.

* A scan of one table splits by block ranges: each part reads the query with the table's
  name shadowed by a CTE that keeps one ``ctid`` range of it (run as a TID range scan,
  PostgreSQL 14 and newer), so no column of the user's is needed and any ``WHERE`` stays
  as written. Whether the query is such a scan is read from its plan, and the rewritten
  part's plan must show the ``ctid`` condition on that table, else there is no split.
* Any other query splits on a column the caller names (``partition_on``): the query
  becomes a subquery filtered by one range of that column, the ranges cut evenly between
  its minimum and maximum in the shared snapshot (integers, dates, timestamps).

Rows keep the query's order only when its ORDER BY starts with the partition column; a
split by blocks cannot keep any ORDER BY, so such a query is not split that way.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from toolkit import errors
from toolkit.frames._types import Column, columns_from_attributes
from toolkit.sql import limits, order_keys, quote_always

__all__ = ["Part", "Split", "split_by_blocks", "split_on_column"]

RANGES_PER_STREAM = 8
"""Block ranges per connection: the connections take the next range as they finish one,
so a table whose matching rows sit in a few blocks still keeps every connection busy."""

_ROW_SCAN_NODES = frozenset(
    {
        "Seq Scan",
        "Gather",
        "Bitmap Heap Scan",
        "Bitmap Index Scan",
        "BitmapAnd",
        "BitmapOr",
        "Index Scan",
        "Index Only Scan",
        "Tid Scan",
        "Tid Range Scan",
        "Result",
    }
)
"""Plan nodes that give each row of one table at most once: a plan made only of these
(no join, aggregate, sort, limit, set operation...) can be cut by block ranges."""

_RANGE_TYPES = frozenset({"int2", "int4", "int8", "date", "timestamp", "timestamptz"})


@dataclass(frozen=True)
class Part:
    """One part of a split: its SQL and the arguments added after the query's own."""

    sql: str
    extra_args: tuple[Any, ...] = ()


@dataclass(frozen=True)
class Split:
    """The parts (each row of the result is in exactly one), or why there are none."""

    parts: tuple[Part, ...] = ()
    ordered: bool = False
    """Whether the parts, concatenated in order, give the query's ORDER BY."""
    reason: str | None = None
    """Why the query is read in one stream (None with parts, or when one is enough)."""


async def split_by_blocks(
    raw: Any, sql: str, args: Sequence[Any], columns: Sequence[Column], streams: int
) -> Split:
    """Block-range parts of a one-table scan, checked against the rewritten plan."""
    if order_keys(sql):
        return Split(
            reason="its ORDER BY cannot be kept by a split into block ranges - pass "
            "partition_on= naming the column the rows are ordered by"
        )
    if raw.get_server_version().major < 14:
        return Split(
            reason="PostgreSQL 13 and older have no TID range scan, so each block range "
            "would scan the whole table - pass partition_on= naming a column"
        )
    scans, other = _relation_scans(await _plan(raw, sql, args))
    if other is not None or len(scans) != 1:
        what = other or f"it reads {len(scans)} relations"
        return Split(
            reason=f"the query is not a plain scan of one table ({what}) - pass "
            "partition_on= naming a column of the result to split it on"
        )
    schema, table = scans[0]["Schema"], scans[0]["Relation Name"]
    found = await raw.fetchrow(
        "SELECT c.relkind::text, c.relpersistence::text, "
        "pg_relation_size(c.oid) / current_setting('block_size')::int AS blocks "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = $1 AND c.relname = $2",
        schema,
        table,
    )
    if found is None or found["relkind"] not in ("r", "m") or found["relpersistence"] == "t":
        return Split(
            reason=f"{schema}.{table} is not a table other connections can read by blocks "
            "- pass partition_on= naming a column"
        )
    count = min(int(found["blocks"]), streams * RANGES_PER_STREAM)
    if count < 2:
        return Split()  # a table of one block: one stream is all it needs
    cuts = [found["blocks"] * i // count for i in range(1, count)]
    shadow = quote_always(table)
    source = f"{quote_always(schema)}.{shadow}"
    parts = tuple(
        Part(_block_range_sql(sql, shadow, source, low, high))
        for low, high in zip([None, *cuts], [*cuts, None], strict=True)
    )
    if not await _narrowed(raw, parts[0], args, columns, schema, table):
        return Split(
            reason=f"the query's reference to {schema}.{table} could not be narrowed to a "
            "block range (a view, or a table named with its schema: name the table itself, "
            "without its schema, which must be on the search_path) - or pass partition_on= "
            "naming a column"
        )
    return Split(parts)


def _block_range_sql(sql: str, shadow: str, source: str, low: int | None, high: int | None) -> str:
    bounds = [f"ctid >= '({low},0)'::tid" if low is not None else None]
    bounds.append(f"ctid < '({high},0)'::tid" if high is not None else None)
    where = " AND ".join(b for b in bounds if b is not None)
    # NOT MATERIALIZED: the CTE is inlined, so the user's WHERE and the block range meet
    # in one scan; the query is a subquery so that its own WITH, if any, stays legal.
    return (
        f"WITH {shadow} AS NOT MATERIALIZED (SELECT * FROM {source} WHERE {where})\n"
        f"SELECT * FROM (\n{sql}\n) AS _tk_part"
    )


async def split_on_column(
    raw: Any,
    sql: str,
    args: Sequence[Any],
    columns: Sequence[Column],
    streams: int,
    column: str,
) -> Split:
    """Range parts on ``column`` of the result, cut between its minimum and maximum."""
    matches = [c for c in columns if c.name == column]
    if len(matches) != 1:
        names = ", ".join(c.name for c in columns)
        raise errors.ToolkitError(
            f"partition_on={column!r} "
            + ("names two columns of the result" if matches else "is not a column of the result")
            + f" (its columns: {names}) - name one column, as it is spelled in the result"
        )
    if matches[0].pg_type not in _RANGE_TYPES:
        raise errors.ToolkitError(
            f"partition_on={column!r} is a {matches[0].pg_type} column; a split takes an "
            "integer, date or timestamp column - name one of those"
        )
    if limits(sql):
        return Split(
            reason="its LIMIT (or OFFSET, FETCH) would run again in every part, which may "
            "pick other rows each time - read it in one stream, or split the query under it"
        )
    keys = order_keys(sql)
    position = str(columns.index(matches[0]) + 1)
    ordered = bool(keys)
    if keys and not (keys[0].names(column) or keys[0].expression == position):
        return Split(
            reason=f"its ORDER BY starts with {keys[0].expression}, not {column}: a split on "
            f"{column} cannot keep that order - partition on the first ORDER BY column"
        )
    name = f"_tk_part.{quote_always(column)}"
    low, high = await raw.fetchrow(
        f"SELECT min({name}), max({name}) FROM (\n{sql}\n) AS _tk_part", *args
    )
    if low is None or low == high:
        return Split()  # no rows, or one value: nothing to cut
    cuts = sorted({low + (high - low) * i // streams for i in range(1, streams)} - {low})
    if not cuts:
        return Split()
    first, after = f"${len(args) + 1}", f"${len(args) + 2}"
    descending = bool(keys) and keys[0].descending
    nulls_first = keys[0].nulls_first if keys else True
    ranges = list(zip([None, *cuts], [*cuts, None], strict=True))
    if descending:
        ranges.reverse()
    parts = []
    for i, (lower, upper) in enumerate(ranges):
        conditions: list[str] = []
        extra: list[Any] = []
        if lower is not None:
            conditions.append(f"{name} >= {first if not extra else after}")
            extra.append(lower)
        if upper is not None:
            conditions.append(f"{name} < {first if not extra else after}")
            extra.append(upper)
        where = " AND ".join(conditions)
        if i == (0 if nulls_first else len(ranges) - 1):
            where = f"({where}) OR {name} IS NULL"
        parts.append(Part(f"SELECT * FROM (\n{sql}\n) AS _tk_part WHERE {where}", tuple(extra)))
    return Split(tuple(parts), ordered=ordered)


async def _plan(raw: Any, sql: str, args: Sequence[Any]) -> dict[str, Any]:
    plan = await raw.fetchval(f"EXPLAIN (VERBOSE, FORMAT JSON) {sql}", *args)
    top: dict[str, Any] = (json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]
    return top


def _nodes(node: dict[str, Any]) -> list[dict[str, Any]]:
    found = [node]
    for child in node.get("Plans", ()):
        found.extend(_nodes(child))
    return found


def _relation_scans(top: dict[str, Any]) -> tuple[list[dict[str, Any]], str | None]:
    """The plan's scans of a relation, and the first node that is not a plain row scan."""
    scans: list[dict[str, Any]] = []
    for node in _nodes(top):
        kind = node["Node Type"]
        if kind not in _ROW_SCAN_NODES or node.get("Parent Relationship") in (
            "InitPlan",
            "SubPlan",
        ):
            return scans, f"{kind} in its plan"
        if "Relation Name" in node:
            scans.append(node)
    return scans, None


def _cut_by_ctid(top: dict[str, Any], schema: str, table: str) -> bool:
    """Whether the part's plan scans ``schema.table`` once, under a ``ctid`` condition."""
    scans, other = _relation_scans(top)
    if other is not None or len(scans) != 1:
        return False
    scan = scans[0]
    if (scan.get("Schema"), scan.get("Relation Name")) != (schema, table):
        return False
    conditions = [scan.get(key, "") for key in ("TID Cond", "Filter", "Recheck Cond")]
    return any("ctid" in condition for condition in conditions)


async def _narrowed(
    raw: Any, part: Part, args: Sequence[Any], columns: Sequence[Column], schema: str, table: str
) -> bool:
    """Whether the part reads ``schema.table`` by block range and gives the query's
    columns (a whole-row reference to the shadowed table would come back as another
    type; a system column the CTE lacks fails: in a savepoint, so the read goes on)."""
    try:
        async with raw.transaction():
            prepared = await raw.prepare(part.sql)
            plan = await _plan(raw, part.sql, args)
        described = columns_from_attributes(prepared.get_attributes())
    except Exception:
        return False
    return _cut_by_ctid(plan, schema, table) and described == tuple(columns)
