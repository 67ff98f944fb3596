"""The toolkit's exceptions: one tree, messages that name the next step.

Driver errors are classified by SQLSTATE (the five-character code PostgreSQL sends with
every error), not by parsing message text, which changes with server version and locale.
One exception: SQLSTATE 57014 covers both a ``statement_timeout`` and a cancel request, and
only the server's message tells them apart; a localised message leaves it a QueryCanceled.

Why one module: the tree and the mapping into it are read together - which class a
SQLSTATE becomes, and what its message tells the user to do next - and every layer
imports them from here.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any

from asyncpg import PostgresError
from asyncpg.exceptions import ConnectionDoesNotExistError
from sqlalchemy.exc import DBAPIError, MissingGreenlet

__all__ = [
    "ConfigurationError",
    "ConnectionFailed",
    "ConnectionLost",
    "DatabaseError",
    "IntegrityViolation",
    "InvalidCharacter",
    "InvalidIdentifier",
    "LazyLoadError",
    "NoSuchSchema",
    "NoSuchTable",
    "PaginationError",
    "PermissionDenied",
    "PoolExhausted",
    "QueryCanceled",
    "QueryInterrupted",
    "QueryTimeout",
    "ReadOnlyViolation",
    "RecoveryConflict",
    "ServerError",
    "ToolkitError",
    "UndefinedColumn",
    "UndefinedTable",
    "driver_error",
    "fault_of",
    "from_dbapi_error",
    "lazy_load_error",
    "lazy_load_message",
    "server_field",
    "sqlstate_of",
    "translated",
]


class _ShortInIPython(BaseException):
    """Shows in IPython and Jupyter as its message under the cell line that raised it
    (``toolkit._tracebacks``); ``%tb verbose`` shows every frame."""

    def _render_traceback_(self) -> list[str]:  # IPython's hook, called instead of ultratb
        from toolkit._tracebacks import render

        return render(self)


class ToolkitError(_ShortInIPython, Exception):
    """Base class of every error the toolkit raises on purpose."""


class QueryInterrupted(_ShortInIPython, KeyboardInterrupt):
    """An interrupt (Ctrl-C, Jupyter's stop button) cancelled the running query on the
    server; the connection is ready for the next one. A ``KeyboardInterrupt``, so code
    that stops on Ctrl-C stops here too."""


class ConfigurationError(ToolkitError):
    """The configuration (a URL, a setting) is malformed."""


class ServerError(ToolkitError):
    """The embedded PostgreSQL server could not be started, stopped or found."""


class ConnectionFailed(ToolkitError):
    """No connection could be opened to the PostgreSQL server."""


class ConnectionLost(ToolkitError):
    """An open connection broke mid-operation (server restarted, backend terminated).

    The server rolls back whatever transaction the connection had open. The message says
    what that means for the statement: ``applied`` is False when it was certainly not
    applied (not sent, or inside a transaction that never committed) and None when it
    may have been (a write sent outside a transaction, whose reply never came).
    """

    applied: bool | None = False
    where: str | None = None
    original: BaseException | None = None


class PoolExhausted(ToolkitError):
    """Every pooled connection stayed checked out for longer than ``pool_timeout``."""


class DatabaseError(ToolkitError):
    """PostgreSQL rejected a statement. ``sqlstate`` holds its error code."""

    sqlstate: str | None = None
    original: BaseException | None = None
    """The exception as SQLAlchemy or the driver raised it (the driver's own is also the
    ``__cause__``: a script's traceback shows it first, IPython only under ``%tb``)."""

    def __init__(self, message: str, *, sqlstate: str | None = None) -> None:
        super().__init__(message)
        if sqlstate is not None:
            self.sqlstate = sqlstate


class UndefinedTable(DatabaseError):
    """The statement names a table that does not exist (SQLSTATE 42P01)."""


class UndefinedColumn(DatabaseError):
    """The statement names a column that does not exist (SQLSTATE 42703)."""


class IntegrityViolation(DatabaseError):
    """A constraint (unique, foreign key, not null, check) rejected the change (class 23)."""


class QueryCanceled(DatabaseError):
    """The query was cancelled: a statement timeout or a user interrupt (SQLSTATE 57014)."""


class QueryTimeout(QueryCanceled):
    """A time limit ended the query: ``limit`` names which one, ``seconds`` its value.

    ``"statement_timeout"`` is the server's limit (``Database(statement_timeout=...)``);
    ``"command_timeout"`` is the client's (``Database(command_timeout=...)``), which also
    covers a server that stopped answering. Either way the query no longer runs.
    """

    limit: str = "statement_timeout"
    seconds: float | None = None


class ReadOnlyViolation(DatabaseError):
    """A write was attempted in a read-only transaction (SQLSTATE 25006), or on a hot
    standby (refused before anything was sent)."""


class RecoveryConflict(DatabaseError):
    """A hot standby cancelled the query: replaying its primary's changes needed what the
    query was using (SQLSTATE 40001 on a standby). Nothing was written; running it again
    usually works. ``toolkit.standby`` maps it, knowing the server's role."""


class PermissionDenied(DatabaseError):
    """The role lacks a privilege the statement needs (SQLSTATE 42501)."""


class NoSuchTable(UndefinedTable):
    """No table, view or materialized view has the name asked for.

    A subclass of ``UndefinedTable`` (SQLSTATE 42P01), so one ``except`` catches both this
    and the server's own "relation does not exist".
    """

    sqlstate = "42P01"


class NoSuchSchema(DatabaseError):
    """No schema has the name asked for (SQLSTATE 3F000, PostgreSQL's invalid_schema_name)."""

    sqlstate = "3F000"


class PaginationError(ToolkitError):
    """A query cannot be paginated as asked; the message says what to change."""


class InvalidIdentifier(ToolkitError, ValueError):
    """A table, schema or column name PostgreSQL cannot hold as given: longer than 63 bytes
    (the server silently truncates longer names, so another table or column could be
    reached), empty, or containing a NUL character. Raised before anything is sent.
    """


class InvalidCharacter(DatabaseError):
    """Text PostgreSQL cannot store: a NUL character (``\\x00``), or bytes that are not
    valid in the database's encoding (SQLSTATE 22021, character_not_in_repertoire).
    """


class ToolkitWarning(UserWarning):
    """Something worth knowing that is not an error: a parallel read done in one stream,
    say, and why. Each is said once per process."""


class LazyLoadError(ToolkitError, MissingGreenlet):
    """An attribute was lazily loaded in async code (SQLAlchemy's ``MissingGreenlet``,
    which it also is, so an ``except MissingGreenlet`` still catches it); the message names
    the relationship and the two ways to load it (``lazy_load_error`` builds it)."""

    def __str__(self) -> str:  # the message alone: no SQLAlchemy background link after it
        return str(self.args[0]) if self.args else ""


def lazy_load_error(exc: MissingGreenlet) -> LazyLoadError:
    """``exc`` (raised by a lazy load) as a ``LazyLoadError`` naming what was loaded."""
    return LazyLoadError(lazy_load_message(exc.__traceback__))


def lazy_load_message(tb: TracebackType | None) -> str:
    """One paragraph: what was lazily loaded, and how to load it instead."""
    try:
        prop = _lazily_loaded(tb)
    except Exception:  # never let the explanation hide the error
        prop = None
    if prop is None:
        return (
            "an attribute was lazily loaded (implicit I/O) in async code. "
            "Load it in the query, e.g. .options(selectinload(Model.relationship)), "
            "or await obj.awaitable_attrs.<name>."
        )
    owner = prop.parent.class_.__name__
    return (
        f"{owner}.{prop.key} was lazily loaded in async code, which "
        f"cannot do implicit I/O. Load it in the query: "
        f".options(selectinload({owner}.{prop.key})), "
        f"or await it: await obj.awaitable_attrs.{prop.key}"
    )


def _lazily_loaded(tb: TracebackType | None) -> Any:
    """The relationship SQLAlchemy's lazy loader was loading when the error was raised:
    a frame whose ``self`` is the lazy loader (``LazyLoader``; ``_LazyLoader`` in
    SQLAlchemy 2.1) holds it as ``self.parent_property``."""
    from sqlalchemy.orm import RelationshipProperty, strategies

    loader = getattr(strategies, "LazyLoader", None) or getattr(strategies, "_LazyLoader", None)
    found = None
    while tb is not None:
        owner = tb.tb_frame.f_locals.get("self")
        prop = getattr(owner, "parent_property", None)
        if isinstance(prop, RelationshipProperty) and (loader is None or isinstance(owner, loader)):
            found = prop
        tb = tb.tb_next
    return found


# SQLSTATE (exact code, then two-character class) -> (exception class, what to do next).
_BY_CODE: dict[str, tuple[type[DatabaseError], str]] = {
    "42P01": (
        UndefinedTable,
        "if it is one of the toolkit's tables, run `toolkit migrate` "
        "(or `await tk.migrate()`); otherwise check the name and schema",
    ),
    "42703": (UndefinedColumn, "check the column name against the table's definition"),
    "57014": (
        QueryCanceled,
        "the query was cancelled (statement_timeout or an interrupt); "
        "raise the limit or make the query cheaper",
    ),
    "25006": (
        ReadOnlyViolation,
        "this database is read-only (read_only=True); connect without it to write",
    ),
    "42501": (PermissionDenied, "ask for the privilege or connect as a role that has it"),
    "22021": (
        InvalidCharacter,
        "PostgreSQL text cannot hold a NUL character (\\x00) - remove it "
        "(e.g. s.replace('\\x00', '')) or store such values as bytea; "
        "the statement changed nothing",
    ),
}
_BY_CLASS: dict[str, tuple[type[DatabaseError], str]] = {
    "23": (IntegrityViolation, "no change was made; fix the offending rows and retry"),
}


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what it wraps: SQLAlchemy's ``orig``, else ``__cause__``."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        nxt = getattr(current, "orig", None)
        current = nxt if isinstance(nxt, BaseException) else current.__cause__


def sqlstate_of(exc: BaseException) -> str | None:
    """Find the SQLSTATE of a driver error, however SQLAlchemy wrapped it."""
    for current in _chain(exc):
        code = getattr(current, "sqlstate", None) or getattr(current, "pgcode", None)
        if isinstance(code, str) and len(code) == 5:
            return code
    return None


def _server_message(exc: BaseException) -> str:
    """The server's own message (first line), without SQLAlchemy's SQL and links, and its
    HINT where it sent one (``Perhaps you meant to reference the column "users.name".``)."""
    driver = driver_error(exc)
    message = str(driver if driver is not None else exc).splitlines()[0]
    detail = server_field(exc, "detail")
    if detail and sqlstate_of(exc) == "0A000":  # a refusal (Citus's): its DETAIL says why
        message = f"{message}: {detail.rstrip('.')}"
    hint = server_field(exc, "hint")
    return f"{message} ({hint.rstrip('.')})" if hint else message


def driver_error(exc: BaseException) -> BaseException | None:
    """The driver's own exception behind ``exc`` (asyncpg's, with the server's fields)."""
    for current in _chain(exc):
        if getattr(current, "sqlstate", None) and hasattr(current, "as_dict"):
            return current
    return None


def server_field(exc: BaseException, name: str) -> str | None:
    """A field of the server's error report (``hint``, ``detail``, ``position``...)."""
    driver = driver_error(exc)
    value = getattr(driver, name, None) if driver is not None else None
    return value if isinstance(value, str) and value else None


def from_dbapi_error(exc: BaseException) -> DatabaseError | None:
    """Map a driver error to a toolkit error by SQLSTATE; None if the code is not mapped."""
    code = sqlstate_of(exc)
    if code is None:
        return None
    entry = _BY_CODE.get(code) or _BY_CLASS.get(code[:2])
    if entry is None:
        return None
    cls, advice = entry
    mapped = cls(f"{_server_message(exc)} - {advice}", sqlstate=code)
    mapped.original = exc
    return mapped


@contextmanager
def translated() -> Iterator[None]:
    """Re-raise database errors as toolkit errors: a fault (lost connection, time limit)
    or a SQLSTATE subclass where one is mapped, else a plain DatabaseError; ``.original``
    keeps the driver's exception.

    Statements run through SQLAlchemy get their faults mapped by the engine already
    (``Database``); this also covers the raw asyncpg paths (COPY, array statements).
    """
    try:
        yield
    except (DBAPIError, PostgresError, ConnectionDoesNotExistError, TimeoutError) as exc:
        mapped: ToolkitError | None = fault_of(exc) or from_dbapi_error(exc)
        if mapped is None:
            code = sqlstate_of(exc)
            if code is None:
                raise  # not a server error (e.g. a closed connection): keep it as it is
            mapped = DatabaseError(_server_message(exc), sqlstate=code)
            mapped.original = exc
        raise mapped from driver_error(exc) or exc  # the driver's own account, for debugging
    except (ValueError, OverflowError) as exc:
        if not _raised_by_decoder(exc):
            raise
        raise ToolkitError(
            f"a value in the result has no Python equivalent ({exc}): a date or timestamp "
            "outside years 1-9999, the time 24:00, an interval past 999,999,999 days or "
            "infinite - cast that column to text in the query (column::text) to read it"
        ) from exc


def _raised_by_decoder(exc: BaseException) -> bool:
    """Whether asyncpg's decoding of a value raised ``exc`` (its innermost frame is in
    asyncpg's codecs): a value Python's types cannot hold, such as a BC date."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    where = "" if tb is None else tb.tb_frame.f_code.co_filename.replace("\\", "/")
    return "asyncpg/" in where and "/codecs/" in where


# Faults: lost connections and time limits -------------------------------------------

# Server-sent codes that mean "this connection is gone" (class 08 is matched as a class).
_LOST_CODES = {"57P01", "57P02", "57P03"}  # admin_shutdown, crash_shutdown, cannot_connect_now


def fault_of(
    exc: BaseException,
    *,
    disconnect: bool = False,
    where: str | None = None,
    statement_timeout: float | None = None,
    command_timeout: float | None = None,
    outcome: str = "transaction",
) -> ToolkitError | None:
    """The toolkit error for a fault - a time limit or a lost connection - else None.

    ``disconnect`` is SQLAlchemy's own verdict, when it has one; the limits are the
    configured values, quoted in the message; ``outcome`` is ``connection_lost``'s.
    """
    if isinstance(exc, TimeoutError):  # asyncpg's command_timeout (asyncio.TimeoutError)
        return query_timeout("command_timeout", command_timeout, exc)
    code = sqlstate_of(exc)
    if code == "57014" and "statement timeout" in _server_message(exc):
        return query_timeout("statement_timeout", statement_timeout, exc)
    lost = code in _LOST_CODES or (code or "").startswith("08")
    if disconnect or lost or _wraps(exc, ConnectionDoesNotExistError):
        return connection_lost(where, exc, outcome=outcome)
    return None


def query_timeout(limit: str, seconds: float | None, exc: BaseException) -> QueryTimeout:
    """The one error for a time limit that ended a query; names the limit and its value."""
    value = f"{limit}={seconds:g} s" if seconds is not None else limit
    if limit == "command_timeout":
        what = (
            f"the client-side time limit fired ({value}): the toolkit stopped waiting, "
            "cancelled the query and closed its connection, so it no longer runs on the server"
        )
        fix = "raise Database(command_timeout=...) or make the query cheaper"
    else:
        what = f"the server's time limit fired ({value}): PostgreSQL cancelled the statement"
        fix = (
            "raise Database(statement_timeout=...) (or SET statement_timeout), "
            "or make the query cheaper"
        )
    error = QueryTimeout(f"{what} - {fix}", sqlstate="57014")
    error.limit = limit
    error.seconds = seconds
    error.original = exc
    return error


_RECONNECTS = "the pool reconnects by itself"
_ROLL_BACK = "roll back (await session.rollback(), or leave the `async with` block)"
_OUTCOMES: dict[str, tuple[bool | None, str]] = {
    "transaction": (
        False,
        "the server rolled back its open transaction, so nothing from this unit of work "
        f"was written - {_ROLL_BACK} and retry; {_RECONNECTS}",
    ),
    "session": (
        False,
        "your session's transaction is gone: the server rolled it back, so nothing from "
        "this unit of work was written, and nothing is retried inside a session - "
        f"{_ROLL_BACK} and run the unit of work again; {_RECONNECTS}",
    ),
    "atomic": (
        False,
        "inside the toolkit's own transaction, which never committed: nothing was "
        f"written - run it again; {_RECONNECTS}",
    ),
    "not sent": (
        False,
        f"before the statement was sent: it was not applied - run it again; {_RECONNECTS}",
    ),
    "sent": (
        None,
        "after the statement was sent, outside a transaction: it may have been applied - "
        "check the table before running it again (a statement that writes is never retried)",
    ),
    "read": (
        False,
        f"during a statement that only reads: nothing was written - run it again; {_RECONNECTS}",
    ),
    "read twice": (
        False,
        "again on a new connection, after the read had been retried once (nothing was "
        "written) - check that the server is up, then run it again",
    ),
    "streamed": (
        False,
        "after the stream had delivered rows, so it could not be retried (it only read: "
        "nothing was written) - run the stream again",
    ),
}


def connection_lost(
    where: str | None, exc: BaseException, *, outcome: str = "transaction"
) -> ConnectionLost:
    """The one error for a connection that broke mid-operation.

    ``outcome`` (a key of ``_OUTCOMES``) says what became of the statement, so the
    message can say whether it may have been applied and what to do next.
    """
    applied, aftermath = _OUTCOMES[outcome]
    at = f" at {where}" if where else ""
    detail = _first_line(_lost_cause(exc))
    detail = detail.removeprefix("(sqlalchemy.dialects.postgresql.asyncpg.Error) ")
    joint = "; " if outcome in ("transaction", "session") else " "
    error = ConnectionLost(
        f"the connection to PostgreSQL{at} was lost mid-operation ({detail}){joint}{aftermath}"
    )
    error.applied = applied
    error.where = where
    error.original = exc
    return error


def _lost_cause(exc: BaseException) -> BaseException:
    """What ended the connection: asyncpg's error that carries the server's reason
    ("terminating connection due to conflict with recovery"), when ``exc`` is only a
    clean-up (a savepoint's release) that then failed on the closed connection."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        for wrapped in _chain(current):
            if isinstance(wrapped, ConnectionDoesNotExistError):
                cause: BaseException = wrapped  # asyncpg's classes are untyped
                return cause
        current = current.__context__
    return exc


def _wraps(exc: BaseException, kind: type[BaseException]) -> bool:
    """Whether ``exc`` is, or wraps, a ``kind``."""
    return any(isinstance(current, kind) for current in _chain(exc))


# Connection failures ---------------------------------------------------------------

_CONNECT_ADVICE_BY_CODE = {
    "28P01": "the password was rejected: check the user and password in the URL",
    "28000": "the server refused this user: check the user name and pg_hba.conf",
    "3D000": "the database does not exist: create it (createdb) or fix its name in the URL",
    "53300": "the server has too many connections: close idle sessions or lower pool_size",
    "57P03": "the server is starting up or shutting down: retry in a moment",
}


_NOT_POSTGRES = {
    "other": "the server there does not speak PostgreSQL's protocol (it answered something else)",
    "silent": "the server there accepted the connection but never answered PostgreSQL's handshake",
}
_OTHER_PORTS = (
    ": is the port right? PostgreSQL listens on 5432 by default (3306 is MySQL/MariaDB's, "
    "6379 Redis's, 5672 RabbitMQ's)"
)


def connection_failed(
    where: str,
    exc: BaseException,
    *,
    source: str,
    password_given: bool = True,
    peer: str | None = None,
) -> ConnectionFailed:
    """Build the one clear error for a failed connect.

    ``where`` names the server (host:port or socket, never the password); ``source``
    says where the URL came from, so the message can say what to change;
    ``password_given`` whether the URL (or PGPASSWORD) held one; ``peer`` what a probe of
    the port found when the failure named no PostgreSQL error (``toolkit.probe``).
    """
    code = sqlstate_of(exc)
    if code == "28P01" and not password_given:
        advice = (
            "the server asks for a password and none was given: put it in the URL "
            "(postgresql://user:PASSWORD@host/database, percent-encoding @ : / as %40 %3A "
            "%2F) or set PGPASSWORD"
        )
    elif peer in _NOT_POSTGRES:
        advice = _NOT_POSTGRES[peer] + _OTHER_PORTS
    elif code in _CONNECT_ADVICE_BY_CODE:
        advice = _CONNECT_ADVICE_BY_CODE[code]
    elif isinstance(exc, socket.gaierror):
        advice = "the host name does not resolve: check the host in the URL"
    elif isinstance(exc, ConnectionRefusedError | FileNotFoundError):
        advice = "nothing is listening there: is the server running, and are host and port right?"
    elif isinstance(exc, TimeoutError):
        advice = "the connection timed out: is the host reachable (firewall, VPN)?"
    else:
        advice = f"{type(exc).__name__}: {_first_line(exc)}"
    return ConnectionFailed(f"could not connect to PostgreSQL at {where} ({source}): {advice}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "no detail"
