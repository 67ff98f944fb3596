"""The one dialect the toolkit compiles with: SQLAlchemy's PostgreSQL dialect for asyncpg.

Not the default PostgreSQL dialect: that is psycopg2's, whose "pyformat" paramstyle
doubles every ``%`` in a quoted name (``"a%b"`` would name another table). Made on first
use and kept: building a dialect is not free, and nothing about it varies.
"""

from __future__ import annotations

import functools

from sqlalchemy.engine import Dialect

__all__ = ["dialect"]


@functools.cache
def dialect() -> Dialect:
    """The asyncpg PostgreSQL dialect (one instance, made on first call)."""
    from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect

    return asyncpg_dialect()  # type: ignore[no-untyped-call]
