"""What the toolkit knows about the server behind a Database, learned on its first connect.

The facts come from the server's catalog and settings, never from error text: version,
Citus (and its version), standby or primary, read-only, and whether a pooler in
transaction mode stands between (so that nothing may rely on a session's state from one
transaction to the next).

A transaction-mode pooler is detected from what the server itself reports: the backend
serving a connection changes between two of its statements, or a second connection is
served by the same backend while the first idles. That test needs a second connection,
so it runs only when the first one shows a go-between: the server sees the client at
another address than the client's own socket (a unix-socket pooler in front of a
unix-socket server shows none: there ``pooler="transaction"`` says it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from asyncpg import PostgresError

__all__ = [
    "POOLERS",
    "FirstLook",
    "Pooler",
    "ServerFacts",
    "first_look",
    "learn",
    "transaction_pooled",
]

Pooler = Literal["transaction"]
POOLERS = ("transaction", "none")
"""The values ``Database(pooler=...)`` takes (None: detect)."""


@dataclass(frozen=True)
class ServerFacts:
    """The server as one connection found it.

    ``read_only``: new transactions are read-only (a standby, the server's or role's
    ``default_transaction_read_only``, or ``Database(read_only=True)`` on a direct
    connection). ``pooler``: ``"transaction"`` when a transaction-mode pooler is between
    (``pooler_source`` says whether it was detected or given), else None.
    """

    version: str
    version_num: int
    citus: str | None
    standby: bool
    read_only: bool
    pooler: Pooler | None = None
    pooler_source: str | None = None

    def describe(self) -> str:
        """One line: ``PostgreSQL 15.8, primary, read-write, Citus 13.2.2, ...``."""
        parts = [
            f"PostgreSQL {self.version}",
            "standby" if self.standby else "primary",
            "read-only" if self.read_only else "read-write",
        ]
        if self.citus is not None:
            parts.append(f"Citus {self.citus}")
        if self.pooler is not None:
            parts.append(f"behind a {self.pooler}-mode pooler ({self.pooler_source})")
        return ", ".join(parts)


_FACTS_SQL = """\
SELECT split_part(current_setting('server_version'), ' ', 1),
       current_setting('server_version_num')::int,
       (SELECT extversion FROM pg_extension WHERE extname = 'citus'),
       pg_is_in_recovery(),
       current_setting('transaction_read_only') = 'on',
       host(inet_client_addr()),
       inet_client_port(),
       pg_backend_pid()"""


@dataclass(frozen=True)
class FirstLook:
    """What the first connection of an engine found."""

    facts: ServerFacts
    go_between: bool
    """The server sees the client elsewhere than at this connection's own socket."""
    backend: int


async def _row(raw: Any, sql: str) -> Any:
    """One row through the unnamed statement: nothing stays prepared on the server,
    where a pooler would hand it to another client's connection."""
    statement = await raw.prepare(sql, name="")
    return await statement.fetchrow()


async def learn(raw: Any) -> ServerFacts:
    """The facts one asyncpg connection finds (one statement)."""
    return (await first_look(raw)).facts


async def first_look(raw: Any) -> FirstLook:
    """The facts, and whether something stands between (see the module's docstring)."""
    row = await _row(raw, _FACTS_SQL)
    version, number, citus, standby, read_only, address, port, backend = row
    facts = ServerFacts(str(version), int(number), citus, bool(standby), bool(read_only))
    client = (str(address), int(port)) if address is not None and port is not None else None
    return FirstLook(facts, _go_between(raw, client), int(backend))


def _go_between(raw: Any, client: tuple[str, int] | None) -> bool:
    transport = getattr(raw, "_transport", None)
    own = transport.get_extra_info("sockname") if transport is not None else None
    if not isinstance(own, tuple):  # our end is a unix socket
        return client is not None  # ...and the server sees TCP
    return client is None or client[1] != own[1]


async def transaction_pooled(raw: Any, other: Any, first: int) -> bool:
    """Whether a transaction-mode pooler serves ``raw`` (whose backend was ``first``),
    tried with ``other``, a second connection made the same way: true when one backend
    serves both, or ``raw`` changed backend.

    Directly or behind a session-mode pooler neither can happen: each connection keeps
    its own backend. Behind a transaction-mode pooler, ``other``'s transaction takes an
    idle backend (PgBouncer: the one ``raw`` just released), and ``raw``'s next
    statement must then take another one.
    """
    backend = "SELECT pg_backend_pid()"
    try:
        await other.execute("BEGIN")
        try:
            theirs = (await _row(other, backend))[0]
            again = (await _row(raw, backend))[0]
        finally:
            await other.execute("ROLLBACK")
    except PostgresError:  # a pooler that refuses BEGIN (statement mode), say
        return False
    return bool(theirs == first or again != first)
