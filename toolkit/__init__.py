"""toolkit: query PostgreSQL asynchronously from notebooks.

``import toolkit as tk`` creates nothing: no engine, no settings, no server. The default
database is resolved on first use (TOOLKIT_DATABASE_URL, DATABASE_URL, else an embedded
PostgreSQL started for you).
"""

from toolkit._version import __version__ as __version__
from toolkit.bulk import bulk_delete, bulk_insert, bulk_update, upsert
from toolkit.database import (
    Database,
    async_session,
    connect,
    get_database,
    get_engine,
    get_session,
    session,
)
from toolkit.demo import reset_demo, seed_demo
from toolkit.errors import (
    ConfigurationError,
    ConnectionFailed,
    ConnectionLost,
    DatabaseError,
    IntegrityViolation,
    InvalidCharacter,
    InvalidIdentifier,
    LazyLoadError,
    PermissionDenied,
    PoolExhausted,
    QueryCanceled,
    QueryInterrupted,
    QueryTimeout,
    ReadOnlyViolation,
    RecoveryConflict,
    ServerError,
    ToolkitError,
    ToolkitWarning,
    UndefinedColumn,
    UndefinedTable,
)
from toolkit.execute import execute
from toolkit.explore import (
    NoSuchSchema,
    NoSuchTable,
    Plan,
    QueryCount,
    TableDescription,
    count_queries,
    describe,
    explain,
    profile,
    sample,
    tables,
)
from toolkit.frames import df, stream_df, to_dataframe, to_parquet, to_table
from toolkit.migrate import downgrade, migrate
from toolkit.pagination import KeysetPage, Page, PaginationError, keyset, keyset_page, paginate
from toolkit.runtime import run


def load_ipython_extension(ip: object) -> None:  # ``%load_ext toolkit``; IPython only then
    from toolkit.notebook import load_ipython_extension as load

    load(ip)


def unload_ipython_extension(ip: object) -> None:  # ``%unload_ext toolkit``
    from toolkit.notebook import unload_ipython_extension as unload

    unload(ip)


__all__ = [
    "ConfigurationError",
    "ConnectionFailed",
    "ConnectionLost",
    "Database",
    "DatabaseError",
    "IntegrityViolation",
    "InvalidCharacter",
    "InvalidIdentifier",
    "KeysetPage",
    "LazyLoadError",
    "NoSuchSchema",
    "NoSuchTable",
    "Page",
    "PaginationError",
    "PermissionDenied",
    "Plan",
    "PoolExhausted",
    "QueryCanceled",
    "QueryCount",
    "QueryInterrupted",
    "QueryTimeout",
    "ReadOnlyViolation",
    "RecoveryConflict",
    "ServerError",
    "TableDescription",
    "ToolkitError",
    "ToolkitWarning",
    "UndefinedColumn",
    "UndefinedTable",
    "async_session",
    "bulk_delete",
    "bulk_insert",
    "bulk_update",
    "connect",
    "count_queries",
    "describe",
    "df",
    "downgrade",
    "execute",
    "explain",
    "get_database",
    "get_engine",
    "get_session",
    "keyset",
    "keyset_page",
    "load_ipython_extension",
    "migrate",
    "paginate",
    "profile",
    "reset_demo",
    "run",
    "sample",
    "seed_demo",
    "session",
    "stream_df",
    "tables",
    "to_dataframe",
    "to_parquet",
    "to_table",
    "unload_ipython_extension",
    "upsert",
]
