"""Connecting: where the URL comes from, what a failed connect means, and what the first
connection learns about the server (version, standby, a transaction pooler in between),
which decides the per-connection settings."""

from __future__ import annotations

import contextlib
import dataclasses
import socket
from typing import Any

from asyncpg import PostgresError
from sqlalchemy import event
from sqlalchemy.engine import URL, Dialect
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import await_

from toolkit import config, errors
from toolkit.database._facts import first_look, transaction_pooled
from toolkit.database._pool import watch_for_lost_clients
from toolkit.database._probe import answer
from toolkit.database._state import EngineState, state_of

__all__ = [
    "begin_behind_pooler",
    "end_transaction",
    "resolve_url",
    "set_per_connection",
    "translate_connect_errors",
]


def resolve_url() -> tuple[URL, str]:
    """The URL the environment names, and where it came from; else the embedded server's
    (started now)."""
    settings = config.Settings.from_env()
    if settings.database_url is not None:
        return config.normalize_url(
            settings.database_url, source=settings.url_source
        ), settings.url_source
    from toolkit import server

    return server.start(settings.data_dir), "the embedded server"


def translate_connect_errors(
    engine: AsyncEngine, where: str, source: str, state: EngineState
) -> None:
    """Turn driver/OS connect failures into one ConnectionFailed naming the server (the
    driver's exception is its ``__cause__``)."""

    @event.listens_for(engine.sync_engine, "do_connect")
    def _connect(dialect: Dialect, conn_rec: Any, cargs: Any, cparams: Any) -> Any:
        try:
            return _connect_knowing(state, dialect, cargs, cparams)
        except Exception as exc:
            given = (
                cparams.get("password") is not None
                or config.Settings.from_env().password_in_environment
            )
            peer = await_(_peer(exc, cparams))
            raise errors.connection_failed(
                where, exc, source=source, password_given=given, peer=peer
            ) from exc


async def _peer(exc: BaseException, cparams: dict[str, Any]) -> str | None:
    """What the TCP peer answers to PostgreSQL's first message, when the failure itself
    names no server error, resolution or refusal (another service on that port): no
    SQLSTATE, or asyncpg's own class-08 code for a connection that broke off."""
    host, port = cparams.get("host"), cparams.get("port") or 5432
    if (
        not isinstance(host, str)
        or host.startswith("/")
        or not isinstance(port, int)
        or not (errors.sqlstate_of(exc) or "08").startswith("08")  # a server's own error
        or isinstance(exc, socket.gaierror | ConnectionRefusedError | FileNotFoundError)
    ):
        return None
    return await answer(host, port)


_SESSION_SETTINGS = ("statement_timeout", "default_transaction_read_only")
"""Startup settings that a pooler would refuse, or leave on its server connection for
other clients: behind one they are set per transaction instead."""


def _connect_knowing(state: EngineState, dialect: Dialect, cargs: Any, cparams: Any) -> Any:
    """Connect as the server in front of us needs; the engine's first connection
    learns that first (one at a time: the others wait for it)."""
    if state.pooled is None:
        await_(state.lock.acquire())
        try:
            if state.pooled is None:
                return _first_connection(state, dialect, cargs, cparams)
        finally:
            state.lock.release()
    return dialect.connect(*cargs, **_params(cparams, state.pooled))


def _params(cparams: dict[str, Any], pooled: bool, *, settings: bool = True) -> dict[str, Any]:
    """Connect parameters; behind a transaction-mode pooler nothing prepared stays on a
    server connection: asyncpg's and SQLAlchemy's statement caches are off and every
    statement is the unnamed one (asyncpg parses it again with its execution)."""
    if not pooled and settings:
        return cparams
    params = dict(cparams)
    params["server_settings"] = {
        name: value
        for name, value in (cparams.get("server_settings") or {}).items()
        if name not in _SESSION_SETTINGS
    }
    if pooled:
        params["statement_cache_size"] = 0
        params["prepared_statement_cache_size"] = 0
        params["prepared_statement_name_func"] = _unnamed
    return params


def _unnamed() -> str:
    return ""


def _transaction_pooled(raw: Any, backend: int, dialect: Dialect, cargs: Any, cparams: Any) -> bool:
    """``transaction_pooled`` (``_facts``) with a second connection, closed after; a
    second connection the server refuses (its connection limit, say) leaves it unknown,
    taken as no: ``pooler="transaction"`` says it then."""
    try:
        other = dialect.connect(*cargs, **_params(cparams, False, settings=False))
    except Exception:
        return False
    try:
        return await_(transaction_pooled(raw, other.driver_connection, backend))
    finally:
        other.close()


def _first_connection(state: EngineState, dialect: Dialect, cargs: Any, cparams: Any) -> Any:
    given = state.pooler
    # Until the pooler question is answered: no startup settings a pooler refuses.
    # (A pooler named or ruled out by the option: the settings go at startup as usual.)
    settings = given is not None
    connection = dialect.connect(
        *cargs, **_params(cparams, given == "transaction", settings=settings)
    )
    try:
        again = _learn_on(connection, state, dialect, cargs, cparams)
    except BaseException:
        connection.close()
        raise
    if again:  # a pooler detected on a connection made with the statement caches on
        connection.close()
        return dialect.connect(*cargs, **_params(cparams, True))
    return connection


def _learn_on(
    connection: Any, state: EngineState, dialect: Dialect, cargs: Any, cparams: Any
) -> bool:
    """Learn the facts and the pooler on the first connection, and make it ready; True
    when it cannot be: a pooler was detected and it was made with the caches on."""
    given = state.pooler
    pooled = given == "transaction"
    raw = connection.driver_connection
    try:
        look = await_(first_look(raw))
    except PostgresError:  # a server without these functions: facts unknown
        look = None
    if look is not None and given is None and look.go_between:
        pooled = _transaction_pooled(raw, look.backend, dialect, cargs, cparams)
    if look is not None:
        source = ("detected" if given is None else "pooler= option") if pooled else None
        facts = dataclasses.replace(
            look.facts, pooler="transaction" if pooled else None, pooler_source=source
        )
        state.remember(facts)
    state.pooled = pooled
    if pooled and given is None:
        return True
    if not pooled and given is None:  # the settings held back, for this connection's session
        held = {
            name: value
            for name, value in (cparams.get("server_settings") or {}).items()
            if name in _SESSION_SETTINGS
        }
        if held:
            await_(
                raw.execute("; ".join(f"SET {name} = '{value}'" for name, value in held.items()))
            )
    return False


def set_per_connection(engine: AsyncEngine, state: EngineState) -> None:
    """Settings the toolkit makes per connection - or, behind a transaction-mode pooler,
    per transaction, as a SET there would stay on the server connection for whichever
    client gets it next (and not follow this client to its next one)."""

    @event.listens_for(engine.sync_engine, "connect")
    def _connected(dbapi_connection: Any, record: Any) -> None:
        if not state.pooled:
            watch_for_lost_clients(dbapi_connection, record)
        elif state.read_only:
            dbapi_connection.readonly = True  # SQLAlchemy's adapter: BEGIN READ ONLY

    if state.statement_timeout is None:
        return  # a "begin" listener makes SQLAlchemy dispatch events on every statement

    @event.listens_for(engine.sync_engine, "begin")
    def _begun(conn: Any) -> None:
        timeout = _local_timeout(state)
        if timeout is not None:  # the adapter sends its BEGIN with this first statement
            cursor = conn.connection.dbapi_connection.cursor()
            try:
                cursor.execute(timeout)
            finally:
                cursor.close()


def _local_timeout(state: EngineState) -> str | None:
    """``SET LOCAL statement_timeout`` behind a transaction-mode pooler, if one is set."""
    seconds = state.statement_timeout
    if not state.pooled or seconds is None:
        return None
    return f"SET LOCAL statement_timeout = {int(seconds * 1000)}"


async def begin_behind_pooler(raw: Any, engine: AsyncEngine) -> Any:
    """Behind a transaction-mode pooler, the raw path's read-only or statement timeout
    hold for one transaction around the helper's statements; None when nothing needs it."""
    state = state_of(engine.sync_engine)
    if not state.pooled:
        return None
    timeout = _local_timeout(state)
    if timeout is None and not state.read_only:
        return None
    transaction = raw.transaction(readonly=state.read_only)
    await transaction.start()
    if timeout is not None:
        await raw.execute(timeout)
    return transaction


async def end_transaction(
    transaction: Any, raw: Any, exc: BaseException | None
) -> BaseException | None:
    """End ``begin_behind_pooler``'s transaction: commit after success (returning the
    commit's failure), else roll back what a server error left (a cancellation or a lost
    connection invalidates the connection instead)."""
    if transaction is None:
        return None
    if exc is None:
        try:
            await transaction.commit()
        except Exception as failed:
            return failed
    elif isinstance(exc, Exception) and not raw.is_closed():
        with contextlib.suppress(Exception):
            await transaction.rollback()
    return None
