"""The SQL layer: everything the toolkit needs to turn a query into text and arguments.

* ``dialect`` - the PostgreSQL (asyncpg) dialect every statement is compiled with;
* ``checked`` / ``quote`` - the one check-and-quote of a name written into SQL;
* ``statement`` / ``compile_statement`` / ``sql_and_args`` / ``sql_text`` - a ``Select``
  or ``:named`` text with its parameters, compiled to ``$n`` SQL and bind values;
* ``find_placeholders`` - the ``:name`` scanner that knows quotes and comments;
* ``order_keys`` / ``limits`` - a statement's own ORDER BY and LIMIT, read from its text
  by the same rules;
* ``plannable`` / ``reads_only`` / ``command_count`` / ``prepare`` - what a statement is
  and what it returned.

It imports only ``toolkit.errors`` (never the runtime layer, never a feature).
"""

from toolkit.sql._dialect import dialect
from toolkit.sql._identifiers import (
    MAX_BYTES,
    checked,
    qualified,
    quote,
    quote_always,
    quote_like_postgres,
    table_name,
)
from toolkit.sql._order import OrderKey, limits, order_keys
from toolkit.sql._placeholders import Placeholders, find_placeholders
from toolkit.sql._statements import (
    Query,
    command_count,
    compile_statement,
    plannable,
    prepare,
    reads_only,
    sql_and_args,
    sql_text,
    statement,
)

__all__ = [
    "MAX_BYTES",
    "OrderKey",
    "Placeholders",
    "Query",
    "checked",
    "command_count",
    "compile_statement",
    "dialect",
    "find_placeholders",
    "limits",
    "order_keys",
    "plannable",
    "prepare",
    "qualified",
    "quote",
    "quote_always",
    "quote_like_postgres",
    "reads_only",
    "sql_and_args",
    "sql_text",
    "statement",
    "table_name",
]
