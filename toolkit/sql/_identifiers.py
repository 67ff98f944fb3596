"""Names the toolkit writes into SQL: checked, then quoted by SQLAlchemy.

PostgreSQL keeps at most 63 bytes of a name (NAMEDATALEN - 1) and silently truncates a
longer one - in ``CREATE TABLE`` as in ``SELECT`` - so two names that share their first
63 bytes reach the same table or column, and a table written under a long name is read
back under another. A name cannot hold a NUL character either (the protocol ends the SQL
text there). Every table, schema and column name the toolkit puts into SQL, or hands to
asyncpg's COPY, passes ``checked`` first, so such a name fails before anything is sent.
Quotes, semicolons and any other characters are fine: quoting makes them part of the name.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects.postgresql.base import RESERVED_WORDS

from toolkit.errors import InvalidIdentifier
from toolkit.sql._dialect import dialect

__all__ = [
    "MAX_BYTES",
    "checked",
    "qualified",
    "quote",
    "quote_always",
    "quote_like_postgres",
    "table_name",
]

MAX_BYTES = 63
"""The longest name PostgreSQL keeps, in bytes of the database encoding (UTF-8 assumed)."""


def checked(name: str, what: str = "name") -> str:
    """``name`` itself, if PostgreSQL can hold it exactly; else InvalidIdentifier."""
    if not isinstance(name, str):
        raise TypeError(f"a {what} must be a str, got {type(name).__name__}")
    if not name:
        raise InvalidIdentifier(f"the {what} is empty - PostgreSQL names need a character")
    if "\x00" in name:
        raise InvalidIdentifier(
            f"{what} {name!r} contains a NUL character (\\x00), which PostgreSQL names "
            "cannot hold - remove it"
        )
    encoded = name.encode("utf-8")
    if len(encoded) > MAX_BYTES:
        kept = encoded[:MAX_BYTES].decode("utf-8", errors="ignore")
        raise InvalidIdentifier(
            f"{what} {name!r} is {len(encoded)} bytes long: PostgreSQL keeps at most "
            f"{MAX_BYTES} bytes of a name and would silently truncate it to {kept!r}, where "
            f"another table or column may already be - use a name of {MAX_BYTES} bytes "
            "or fewer"
        )
    return name


def quote(name: str, what: str = "name") -> str:
    """``name`` checked and quoted for PostgreSQL (only where needed, by SQLAlchemy)."""
    return str(dialect().identifier_preparer.quote(checked(name, what)))


def qualified(table: str, schema: str | None) -> str:
    """``schema.table`` (or ``table``), each part checked and quoted."""
    quoted = quote(table, "table name")
    return f"{quote(schema, 'schema name')}.{quoted}" if schema is not None else quoted


def table_name(table: Any) -> str:
    """A SQLAlchemy ``Table``'s name as SQL (schema-qualified), each part checked first."""
    checked(table.name, "table name")
    if table.schema is not None:
        checked(table.schema, "schema name")
    return str(dialect().identifier_preparer.format_table(table))


def quote_always(name: str) -> str:
    """``name`` in double quotes, whatever it holds: for ``regclass`` text, where an
    unquoted name would be folded to lower case. Not checked (a lookup may try a name
    that cannot exist; see ``checked``)."""
    return '"' + name.replace('"', '""') + '"'


def quote_like_postgres(name: str) -> str:
    """Quoted only where PostgreSQL's own ``quote_ident`` would: for showing a name the
    way the server prints it (plans, descriptions), not for building SQL."""
    plain = (
        bool(name)
        and (name[0].islower() or name[0] == "_")
        and all(c.islower() or c.isdigit() or c == "_" for c in name)
        and name.isascii()
        and name not in RESERVED_WORDS
    )
    return name if plain else quote_always(name)
