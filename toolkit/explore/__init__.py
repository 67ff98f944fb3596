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

The modules: ``_catalog`` (finding a table by name, its columns, reflecting it),
``_structure`` (``tables``, ``describe``), ``_contents`` (``sample``, ``profile``),
``_distribution`` (what Citus adds: shards, distribution), ``_plans`` (``explain``),
``_plan_text`` (EXPLAIN JSON as psql's text), ``_counting`` (``count_queries``).
"""

from toolkit.errors import NoSuchSchema, NoSuchTable
from toolkit.explore._catalog import TableName
from toolkit.explore._contents import profile, sample
from toolkit.explore._counting import QueryCount, count_queries
from toolkit.explore._plans import Plan, explain
from toolkit.explore._structure import TableDescription, describe, tables

__all__ = [
    "NoSuchSchema",
    "NoSuchTable",
    "Plan",
    "QueryCount",
    "TableDescription",
    "TableName",
    "count_queries",
    "describe",
    "explain",
    "profile",
    "sample",
    "tables",
]
