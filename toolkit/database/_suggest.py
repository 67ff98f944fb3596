""" "Did you mean 'users'?": the closest name the catalog holds, for a name that is not there.

Every helper that can meet a misspelt table (``tk.df``, ``stream_df``, ``paginate``,
``explain``, ``describe``, ``sample``) asks here, so the suggestion is made one way: tables
on the search path by their bare name, every table as ``schema.name``, case ignored.
"""

from __future__ import annotations

import contextlib
import difflib
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from toolkit import errors
from toolkit.database._facade import Database
from toolkit.database._scopes import connection_or_pooled

__all__ = [
    "USER_SCHEMA",
    "close_match",
    "closest_table",
    "naming_close_tables",
    "table_candidates",
]

USER_SCHEMA = (
    "((n.nspname !~ '^pg_' AND n.nspname <> 'information_schema') "
    "OR n.oid = pg_catalog.pg_my_temp_schema())"
)
"""SQL over ``pg_namespace n``: the schemas a user's tables live in (not the catalogs)."""

_CANDIDATES = text(f"""
SELECT n.nspname, c.relname, pg_catalog.pg_table_is_visible(c.oid)
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'v', 'm', 'p', 'f') AND {USER_SCHEMA}
ORDER BY 1, 2
""")


async def table_candidates(conn: AsyncConnection) -> list[tuple[str, str, bool]]:
    """Every user table, view and materialized view: (schema, name, on the search path)."""
    return [(r[0], r[1], bool(r[2])) for r in await conn.execute(_CANDIDATES)]


def closest_table(shown: str, candidates: Sequence[tuple[str, str, bool]]) -> str | None:
    """The candidate closest to ``shown``: bare names on the search path, else qualified."""
    names = [name for _, name, visible in candidates if visible]
    names += [f"{schema}.{name}" for schema, name, _ in candidates]
    return close_match(shown, names)


def close_match(word: str, choices: Sequence[str]) -> str | None:
    """The closest choice, ignoring case (``Users`` suggests ``users``)."""
    lowered: dict[str, str] = {}
    for choice in choices:
        lowered.setdefault(choice.lower(), choice)
    found = difflib.get_close_matches(word.lower(), list(lowered), n=1)
    return lowered[found[0]] if found else None


@asynccontextmanager
async def naming_close_tables(
    sql: str | None, session: AsyncSession | None, database: Database | None
) -> AsyncIterator[None]:
    """Add "did you mean 'users'?" to an ``UndefinedTable`` raised inside, as ``sample``
    and ``describe`` say it. The missing name is read from ``sql`` (None: the statement
    SQLAlchemy reports it sent) at the position the server's error report gives (its
    ``position`` field), not from the message text."""
    try:
        yield
    except errors.UndefinedTable as exc:
        sent = sql if sql is not None else getattr(exc.original, "statement", None)
        position = errors.server_field(exc, "position")
        missing = _name_at(sent, position) if isinstance(sent, str) else None
        if missing is not None:
            # best effort: a catalog that cannot be read leaves the error as it is
            with contextlib.suppress(errors.ToolkitError, DBAPIError):
                async with connection_or_pooled(session, database) as conn:
                    close = closest_table(missing, await table_candidates(conn))
                if close is not None:
                    said = exc.args[0].split(" - ", 1)[0]
                    exc.args = (f"{said} - did you mean {close!r}? (tk.tables() lists them)",)
        raise


_IDENTIFIER = r'(?:"(?:[^"]|"")+"|[^\W\d]\w*)'
_QUALIFIED = re.compile(rf"{_IDENTIFIER}(?:\s*\.\s*{_IDENTIFIER})?")


def _name_at(sql: str, position: str | None) -> str | None:
    """The (maybe schema-qualified) name starting at a 1-based character ``position``,
    as PostgreSQL reads it: quoted parts as written, unquoted ones folded to lower case."""
    if position is None or not position.isdigit():
        return None
    found = _QUALIFIED.match(sql, int(position) - 1)
    if found is None:
        return None
    parts = re.findall(_IDENTIFIER, found.group())
    return ".".join(p[1:-1].replace('""', '"') if p.startswith('"') else p.lower() for p in parts)
