"""Query plans: ``explain()`` asks PostgreSQL for a statement's plan (running it, rolled
back, with ``analyze=True``) and returns a ``Plan`` - the JSON document, its text in psql's
layout, and a DataFrame of its nodes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from html import escape
from typing import Any, cast

import pandas as pd
from sqlalchemy.ext.asyncio import AsyncSession

from toolkit import errors
from toolkit.database import Database, driver_connection, naming_close_tables
from toolkit.explore._plan_text import remote_plans, render_plan
from toolkit.runtime import interruptible
from toolkit.sql import Query, sql_and_args


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

    @property
    def task_count(self) -> int | None:
        """On Citus, the tasks (shard queries) the outermost distributed scan sends to the
        nodes: 1 for a router query that one distribution value pins to one shard, the
        shard count for a query that fans out. None for a plan with no Citus scan."""
        for _, node in self.nodes():
            job = (node.get("Distributed Query") or {}).get("Job") or {}
            if "Task Count" in job:
                return int(job["Task Count"])
        return None

    def nodes(self) -> Iterator[tuple[int, dict[str, Any]]]:
        """``(depth, node)`` for every plan node, in the order the text shows them; under
        a Citus custom scan, the plans of the tasks it shows (as run on a worker)."""
        stack: list[tuple[int, dict[str, Any]]] = [(0, self.json["Plan"])]
        while stack:
            depth, node = stack.pop()
            yield depth, node
            children = [*remote_plans(node), *node.get("Plans", [])]
            stack.extend((depth + 1, child) for child in reversed(children))

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


@interruptible
async def explain(
    query: Query,
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

    On Citus the text shows the distributed plan as Citus prints it: the custom scan, its
    task count, and one task's plan on its worker (``SET citus.explain_all_tasks = on``
    in the session for every task's); ``Plan.task_count`` tells a router query (1 task)
    from one that fans out to every shard.
    """
    sql, args = sql_and_args(query, params)
    sql = sql.strip().rstrip(";")
    options = "FORMAT JSON, ANALYZE, BUFFERS" if analyze else "FORMAT JSON"
    explained = f"EXPLAIN ({options}) {sql}"
    async with naming_close_tables(explained, session, database):
        with errors.translated():
            async with driver_connection(session, database, write=analyze) as raw:
                # PostgreSQL 18 shows actual rows with two decimals (an average per loop).
                rows_decimals = 2 if raw.get_server_version().major >= 18 else 0
                if analyze:
                    transaction = raw.transaction()  # a savepoint inside a session's transaction
                    await transaction.start()
                    try:
                        document = await raw.fetchval(explained, *args)
                    finally:
                        await transaction.rollback()
                else:
                    document = await raw.fetchval(explained, *args)
    if isinstance(document, str):  # SQLAlchemy's engines decode json; a bare asyncpg does not
        document = json.loads(document)
    parsed = cast(dict[str, Any], document[0])
    return Plan(sql, parsed, render_plan(parsed, rows_decimals), analyze)
