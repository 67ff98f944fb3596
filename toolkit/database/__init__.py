"""The database layer: ``Database`` (engines, sessions, pools) and the default database.

Above the runtime and SQL layers and the embedded server; every feature reaches
PostgreSQL through here:

* ``Database`` and the default-database functions (``connect``, ``get_database``,
  ``get_engine``, ``session``, ``get_session``, ``async_session``);
* "the caller's session, or a new one", at each level: ``session_or_new`` (a session),
  ``connection_or_pooled`` (its connection), ``driver_connection`` (the asyncpg
  connection, for COPY and prepared statements), with ``statement_attempts`` (what a
  lost connection means for a statement) and ``cancel_on_server``;
* what the first connection learned about the server (``ServerFacts``), the refusal of
  writes on a hot standby (``refuse_writes``, ``refuse_writes_on``), and the
  "did you mean ...?" of a misspelt table (``naming_close_tables``).

The modules, bottom up: ``_state`` (one record per engine, every Database alive),
``_facts``, ``_standby``, ``_probe``; ``_pool`` (checkout checks, paused idle reads, lost
clients), ``_faults`` (driver faults as the toolkit's errors), ``_connecting`` (URL,
connect errors, the first connection's findings, per-connection settings), ``_engine``
(one engine, assembled), ``_facade`` (``Database``), ``_default`` (the default database),
``_driver`` (the raw driver path, statement attempts), ``_scopes`` (the session-or-new
helpers), ``_suggest``.
"""

from toolkit.database._default import (
    async_session,
    connect,
    get_database,
    get_engine,
    get_session,
    session,
)
from toolkit.database._driver import StatementAttempt, cancel_on_server, statement_attempts
from toolkit.database._facade import Database
from toolkit.database._facts import ServerFacts
from toolkit.database._scopes import connection_or_pooled, driver_connection, session_or_new
from toolkit.database._standby import refuse_writes, refuse_writes_on
from toolkit.database._state import dispose_all
from toolkit.database._suggest import (
    USER_SCHEMA,
    close_match,
    closest_table,
    naming_close_tables,
    table_candidates,
)

__all__ = [
    "USER_SCHEMA",
    "Database",
    "ServerFacts",
    "StatementAttempt",
    "async_session",
    "cancel_on_server",
    "close_match",
    "closest_table",
    "connect",
    "connection_or_pooled",
    "dispose_all",
    "driver_connection",
    "get_database",
    "get_engine",
    "get_session",
    "naming_close_tables",
    "refuse_writes",
    "refuse_writes_on",
    "session",
    "session_or_new",
    "statement_attempts",
    "table_candidates",
]
