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

from toolkit import frames as frames  # ``toolkit.explore.frames``, as on the single module
from toolkit.errors import NoSuchSchema, NoSuchTable
from toolkit.explore.catalog import TableName as TableName
from toolkit.explore.contents import profile, sample
from toolkit.explore.counting import QueryCount, count_queries
from toolkit.explore.counting import _record as _record  # the listener count_queries() adds
from toolkit.explore.plans import Plan, explain
from toolkit.explore.structure import TableDescription, describe, tables

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

# Set here (``toolkit.explore.TABLESAMPLE_FROM = ...``); ``sample()`` reads it at each call.
TABLESAMPLE_FROM = 100_000
"""Estimated rows from which ``sample(random=True)`` reads a ``TABLESAMPLE`` of pages
instead of shuffling the whole table."""
