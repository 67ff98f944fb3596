"""``Database``: an AsyncEngine and async_sessionmaker per event loop, created on first use.

The seed's set-up (``create_async_engine`` with pool_size=5, max_overflow=10, and
``async_sessionmaker(expire_on_commit=False)``) lives here, with two improvements:

* nothing is created at import or construction: the URL is resolved (and the embedded
  server started) the first time an engine is needed;
* one engine per event loop: a pooled asyncpg connection belongs to the loop that opened
  it, so reusing an engine from another loop fails with "attached to a different loop".
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import select
import socket
import threading
import time
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any

from asyncpg import PostgresError
from asyncpg.exceptions import InterfaceError
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Dialect, Engine, ExceptionContext
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry, QueuePool
from sqlalchemy.util import await_, greenlet_spawn

from toolkit import config, errors
from toolkit.database import _facts as server_facts
from toolkit.database import _probe as probe
from toolkit.database import _standby as standby
from toolkit.database._facts import ServerFacts
from toolkit.runtime import before_script_loop_closes, script_loop

__all__ = [
    "Database",
    "StatementAttempt",
    "async_session",
    "cancel_on_server",
    "connect",
    "connection_or_pooled",
    "driver_connection",
    "get_database",
    "get_engine",
    "get_session",
    "session",
    "session_or_new",
    "statement_attempts",
]


class Database:
    """A PostgreSQL database: owns its engines and session factory.

    ``url`` may be a ``postgresql://`` or ``postgresql+asyncpg://`` URL; None means
    ``TOOLKIT_DATABASE_URL``, then ``DATABASE_URL``, then the embedded server.
    ``read_only`` makes the server reject writes; ``statement_timeout`` (seconds) makes it
    cancel long statements; ``command_timeout`` (seconds) makes the client give up on a
    statement (or a server that stopped answering) and cancel it. ``pool_timeout`` is how
    long a call waits for a free pooled connection. ``async with db:`` disposes the engine.

    ``pooler="transaction"`` says a pooler in transaction mode (PgBouncer's
    ``pool_mode = transaction``, most managed services' pooled endpoints) stands between:
    nothing then stays prepared or set on a server connection from one transaction to
    the next. Without it the first connection detects one where it can (see
    ``toolkit.server_facts``); ``pooler="none"`` skips that. ``server_facts`` and
    ``await db.server()`` say what the first connection learned about the server.
    """

    def __init__(
        self,
        url: str | URL | None = None,
        *,
        read_only: bool = False,
        statement_timeout: float | None = None,
        echo: bool = False,
        pool_size: int = 5,
        max_overflow: int = 10,
        pool_timeout: float = 30.0,
        connect_timeout: float = 10.0,
        command_timeout: float | None = None,
        pooler: str | None = None,
    ) -> None:
        if pooler is not None and pooler not in server_facts.POOLERS:
            raise ValueError(
                f"pooler must be None (detect), 'transaction' or 'none', not {pooler!r}"
            )
        self._given_url = url
        self._url: URL | None = None
        self._url_source = "the URL you passed"
        if url is not None:  # fail fast on a malformed URL; no I/O yet
            self._url = config.normalize_url(url)
        self.read_only = read_only
        self.statement_timeout = statement_timeout
        self.echo = echo
        self.pool_size = pool_size
        self.max_overflow = max_overflow
        self.pool_timeout = pool_timeout
        self.connect_timeout = connect_timeout
        self.command_timeout = command_timeout
        self.pooler = pooler
        self._facts: ServerFacts | None = None
        self._engines: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncEngine] = (
            weakref.WeakKeyDictionary()
        )
        self._finalizers: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, AsyncIterator[None]
        ] = weakref.WeakKeyDictionary()
        self._lock = threading.RLock()
        self.async_session = _LoopBoundSessionmaker(self)
        _databases.add(self)

    # URL ------------------------------------------------------------------------

    @property
    def url(self) -> URL:
        """The resolved asyncpg URL (starts the embedded server if that is the source)."""
        if self._url is None:
            with self._lock:
                if self._url is None:
                    self._url, self._url_source = _resolve_url()
        return self._url

    def __repr__(self) -> str:
        if self._url is not None:
            shown = repr(config.mask_url(self._url))
        else:  # say where the URL will come from, without starting anything
            settings = config.Settings.from_env()
            if settings.database_url is not None:
                shown = f"<from {settings.url_source}: {config.mask_url(settings.database_url)}>"
            else:
                shown = "<embedded server, started on first use>"
        facts = f", server={self._facts.describe()!r}" if self._facts is not None else ""
        pooler = f", pooler={self.pooler!r}" if self.pooler is not None else ""
        return f"Database({shown}, read_only={self.read_only}{pooler}{facts})"

    @property
    def server_facts(self) -> ServerFacts | None:
        """What the first connection learned about the server; None before it (no I/O)."""
        return self._facts

    async def server(self) -> ServerFacts:
        """The server's facts (``server_facts``), connecting first when none was made."""
        state = _states[self.engine.sync_engine]
        if state.facts is None:
            async with driver_connection(database=self) as raw:
                if state.facts is None:  # the first connect could not learn them
                    state.facts = self._facts = await server_facts.learn(raw)
        return state.facts

    # Engines --------------------------------------------------------------------

    @property
    def engine(self) -> AsyncEngine:
        """The engine of the running event loop (created on first use in that loop)."""
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is None:
            # No loop yet (plain sync code asking for the engine): hand out the engine of
            # the loop tk.run() uses, so the first await binds it there.
            loop = script_loop()
        engine = self._engines.get(loop)
        if engine is None:
            with self._lock:
                engine = self._engines.get(loop)
                if engine is None:
                    self._forget_closed_loops()
                    engine = self._create_engine()
                    self._engines[loop] = engine
                    before_script_loop_closes(dispose_all)
                    self._dispose_before_loop_closes(loop, engine)
        return engine

    def _dispose_before_loop_closes(
        self, loop: asyncio.AbstractEventLoop, engine: AsyncEngine
    ) -> None:
        """Close ``engine``'s connections when ``loop`` shuts down (``asyncio.run``'s end).

        ``asyncio.run`` and ``Runner.close`` call ``loop.shutdown_asyncgens()``, which
        ``aclose()``s every live async generator first; this one's ``finally`` disposes the
        engine while its loop still runs. Without it the pooled connections of a finished
        ``asyncio.run`` could only be abandoned ("unclosed connection" warnings).
        """
        if asyncio.events._get_running_loop() is not loop:
            return  # no loop running here yet: the tk.run bridge disposes at exit instead

        async def finalizer() -> AsyncIterator[None]:
            try:
                yield
            finally:
                if self._engines.get(loop) is engine:
                    del self._engines[loop]
                await engine.dispose()

        sentinel = finalizer()
        # Step to the yield now; the loop's firstiter hook registers the generator.
        with contextlib.suppress(StopIteration):
            sentinel.__anext__().send(None)  # type: ignore[attr-defined]
        self._finalizers[loop] = sentinel  # the loop holds it weakly; keep it alive

    def _create_engine(self) -> AsyncEngine:
        url = self.url
        server_settings = {"application_name": "toolkit"}
        if self.read_only:
            server_settings["default_transaction_read_only"] = "on"
        if self.statement_timeout is not None:
            server_settings["statement_timeout"] = str(int(self.statement_timeout * 1000))
        connect_args: dict[str, Any] = {
            "server_settings": server_settings,
            "timeout": self.connect_timeout,
        }
        if self.command_timeout is not None:
            connect_args["command_timeout"] = self.command_timeout
        engine = create_async_engine(
            url,
            echo=self.echo,
            poolclass=_ExplainedPool,
            pool_size=self.pool_size,
            max_overflow=self.max_overflow,
            pool_timeout=self.pool_timeout,
            connect_args=connect_args,
        )
        _owners[engine.sync_engine] = weakref.ref(self)
        where = config.server_address(url)
        state = _states[engine.sync_engine] = _ServerState(self)
        _translate_connect_errors(engine, where, self._url_source, state)
        _set_per_connection(engine, state)
        event.listen(engine.sync_engine, "connect", _end_writes_when_lost)
        _ping_on_checkout(engine)
        _translate_faults(engine, where, self)
        standby.follow_facts(
            engine.sync_engine, lambda: None if state.facts is None else state.facts.standby
        )
        return engine

    def _forget_closed_loops(self) -> None:
        """Drop engines whose loop is closed: their connections cannot be used or awaited."""
        for loop, engine in list(self._engines.items()):
            if loop.is_closed():
                del self._engines[loop]
                engine.sync_engine.dispose(close=False)

    async def dispose(self) -> None:
        """Close the pooled connections of the running loop's engine."""
        loop = asyncio.get_running_loop()
        engine = self._engines.pop(loop, None)
        if engine is not None:
            await engine.dispose()

    async def __aenter__(self) -> Database:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.dispose()

    # Sessions -------------------------------------------------------------------

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A unit of work: commits when the block ends, rolls back if it raises."""
        async with self.async_session() as s:
            try:
                yield s
                await s.commit()
            except BaseException:
                await s.rollback()
                raise

    async def get_session(self) -> AsyncGenerator[AsyncSession, None]:
        """The seed's FastAPI dependency: ``Depends(db.get_session)``."""
        async with self.session() as s:
            yield s


class _LoopBoundSessionmaker(async_sessionmaker[AsyncSession]):
    """An ``async_sessionmaker`` that binds each new session to the running loop's engine."""

    def __init__(self, database: Database | None) -> None:
        super().__init__(class_=AsyncSession, expire_on_commit=False)
        self._database = database

    def __call__(self, **local_kw: Any) -> AsyncSession:
        if "bind" not in local_kw:
            db = self._database if self._database is not None else get_database()
            local_kw["bind"] = db.engine
        return super().__call__(**local_kw)


def _resolve_url() -> tuple[URL, str]:
    settings = config.Settings.from_env()
    if settings.database_url is not None:
        return config.normalize_url(
            settings.database_url, source=settings.url_source
        ), settings.url_source
    from toolkit import server

    return server.start(settings.data_dir), "the embedded server"


def _translate_connect_errors(
    engine: AsyncEngine, where: str, source: str, state: _ServerState
) -> None:
    """Turn driver/OS connect failures into one ConnectionFailed naming the server (the
    driver's exception is its ``__cause__``)."""

    @event.listens_for(engine.sync_engine, "do_connect")
    def _connect(dialect: Dialect, conn_rec: Any, cargs: Any, cparams: Any) -> Any:
        try:
            return _connect_knowing(state, dialect, cargs, cparams)
        except Exception as exc:
            given = cparams.get("password") is not None or bool(os.environ.get("PGPASSWORD"))
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
    return await probe.answer(host, port)


def _cancellation_behind(exc: BaseException) -> BaseException | None:
    """The CancelledError or KeyboardInterrupt that ``exc`` was raised while handling."""
    seen: set[int] = set()
    current = exc.__context__
    while current is not None and id(current) not in seen:
        if isinstance(current, asyncio.CancelledError | KeyboardInterrupt):
            return current
        seen.add(id(current))
        current = current.__context__
    return None


class _ServerState:
    """Per engine: what its first connection learned, and whether a transaction-mode
    pooler is between (None: no connection made yet)."""

    __slots__ = ("facts", "lock", "owner", "pooled", "pooler", "read_only", "statement_timeout")

    def __init__(self, database: Database) -> None:
        self.owner = weakref.ref(database)  # the Database holds the engine that holds this
        self.pooler = database.pooler
        self.read_only = database.read_only
        self.statement_timeout = database.statement_timeout
        self.facts: ServerFacts | None = None
        self.pooled: bool | None = None
        self.lock = asyncio.Lock()


_states: weakref.WeakKeyDictionary[Engine, _ServerState] = weakref.WeakKeyDictionary()

_SESSION_SETTINGS = ("statement_timeout", "default_transaction_read_only")
"""Startup settings that a pooler would refuse, or leave on its server connection for
other clients: behind one they are set per transaction instead."""


def _connect_knowing(state: _ServerState, dialect: Dialect, cargs: Any, cparams: Any) -> Any:
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
    """``server_facts.transaction_pooled`` with a second connection, closed after; a
    second connection the server refuses (its connection limit, say) leaves it unknown,
    taken as no: ``pooler="transaction"`` says it then."""
    try:
        other = dialect.connect(*cargs, **_params(cparams, False, settings=False))
    except Exception:
        return False
    try:
        return await_(server_facts.transaction_pooled(raw, other.driver_connection, backend))
    finally:
        other.close()


def _first_connection(state: _ServerState, dialect: Dialect, cargs: Any, cparams: Any) -> Any:
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
    connection: Any, state: _ServerState, dialect: Dialect, cargs: Any, cparams: Any
) -> bool:
    """Learn the facts and the pooler on the first connection, and make it ready; True
    when it cannot be: a pooler was detected and it was made with the caches on."""
    given = state.pooler
    pooled = given == "transaction"
    raw = connection.driver_connection
    try:
        look = await_(server_facts.first_look(raw))
    except PostgresError:  # a server without these functions: facts unknown
        look = None
    if look is not None and given is None and look.go_between:
        pooled = _transaction_pooled(raw, look.backend, dialect, cargs, cparams)
    if look is not None:
        source = ("detected" if given is None else "pooler= option") if pooled else None
        facts = dataclasses.replace(
            look.facts, pooler="transaction" if pooled else None, pooler_source=source
        )
        state.facts = facts
        owner = state.owner()
        if owner is not None:
            owner._facts = facts
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


def _set_per_connection(engine: AsyncEngine, state: _ServerState) -> None:
    """Settings the toolkit makes per connection - or, behind a transaction-mode pooler,
    per transaction, as a SET there would stay on the server connection for whichever
    client gets it next (and not follow this client to its next one)."""

    @event.listens_for(engine.sync_engine, "connect")
    def _connected(dbapi_connection: Any, record: Any) -> None:
        if not state.pooled:
            _watch_for_lost_clients(dbapi_connection, record)
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


def _local_timeout(state: _ServerState) -> str | None:
    """``SET LOCAL statement_timeout`` behind a transaction-mode pooler, if one is set."""
    seconds = state.statement_timeout
    if not state.pooled or seconds is None:
        return None
    return f"SET LOCAL statement_timeout = {int(seconds * 1000)}"


async def _begin_behind_pooler(raw: Any, engine: AsyncEngine) -> Any:
    """Behind a transaction-mode pooler, the raw path's read-only or statement timeout
    hold for one transaction around the helper's statements; None when nothing needs it."""
    state = _states.get(engine.sync_engine)
    if state is None or not state.pooled:
        return None
    timeout = _local_timeout(state)
    if timeout is None and not state.read_only:
        return None
    transaction = raw.transaction(readonly=state.read_only)
    await transaction.start()
    if timeout is not None:
        await raw.execute(timeout)
    return transaction


async def _end(transaction: Any, raw: Any, exc: BaseException | None) -> BaseException | None:
    """End ``_begin_behind_pooler``'s transaction: commit after success (returning the
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


async def cancel_on_server(raw: Any) -> None:
    """Ask the server to cancel what ``raw`` runs, before the caller closes ``raw``.

    asyncpg's own cancel request (as on a timeout): a new connection carrying the
    connection's key, which PgBouncer forwards to the server connection this client
    holds. Closing alone ends the query only at its next write - or, directly, within
    ``client_connection_check_interval``, which behind a pooler is not set. Waits at
    most a second for the request to be sent.
    """
    waiter = asyncio.get_running_loop().create_future()
    raw._cancel_current_command(waiter)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(waiter), 1)


def _watch_for_lost_clients(dbapi_connection: Any, record: Any) -> None:
    """Make the server end a query whose client went away, even while it still computes.

    Without ``client_connection_check_interval`` (PostgreSQL 14+) a backend notices a
    closed connection only when it next writes; a cancelled COPY closes its connection.
    """
    raw = dbapi_connection.driver_connection
    if raw.get_server_version() >= (14,):
        # Not supported on every platform (e.g. Windows): then the server keeps its default.
        with contextlib.suppress(PostgresError):
            await_(raw.execute(f"SET client_connection_check_interval = {_CHECK_INTERVAL_MS}"))


_CHECK_INTERVAL_MS = 500


def _end_writes_when_lost(dbapi_connection: Any, record: Any) -> None:
    """Make a COPY fail, not hang, when the server ends its connection mid-stream.

    A COPY that filled the socket waits for asyncpg's "writing allowed" signal, which
    a lost connection never gives (with no ``command_timeout`` it would wait forever).
    On the loss this drops the protocol's transport, so the waiting write fails at
    once (``_fault_named`` then names the lost connection), and gives the signal.
    """
    raw = dbapi_connection.driver_connection
    raw.add_termination_listener(_end_writes)


def _end_writes(raw: Any) -> None:
    protocol = getattr(raw, "_protocol", None)
    if protocol is not None and protocol.is_closed():
        protocol.abort()  # already closed: only lets go of the transport
        protocol.resume_writing()


def _ping_on_checkout(engine: AsyncEngine) -> None:
    """``pool_pre_ping``, in one round trip, and none for a connection just returned.

    A pooled connection the server closed (a restart, an idle-session timeout, a killed
    backend) is replaced before the caller sees it. SQLAlchemy's asyncpg ping wraps
    ``;`` in BEGIN and ROLLBACK (for pgbouncer's transaction mode): three round trips
    per checkout, a fifth of a 100-row ``tk.df``. Here a simple-protocol ``SELECT 1``
    is one message and one reply, which pgbouncer serves in any mode.

    A connection returned to the pool less than ``_RECENT`` seconds ago is not pinged
    when its socket shows nothing arrived since: a server that closes a connection
    sends its end first, which makes the socket readable. (A ping still covers long
    idle periods, after which a network may have dropped the connection silently.)
    As with pre-ping, a connection just opened is not pinged, and a dead one
    invalidates the connections opened before it (a restarted server closed them all).
    Nor is the shortcut taken for a connection returned before a statement on the raw
    path found its own connection lost: the retry of a read then gets one that answered.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _opened(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info[_FRESH] = True

    @event.listens_for(engine.sync_engine, "checkin")
    def _returned(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        if dbapi_connection is not None:  # None: invalidated on the way back
            record.info[_RETURNED] = time.monotonic()
            _hold_input(dbapi_connection.driver_connection)

    @event.listens_for(engine.sync_engine, "close")
    def _closing(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        _release_input(dbapi_connection.driver_connection)  # a close waits for the server's end

    @event.listens_for(engine.sync_engine, "checkout")
    def _ping(dbapi_connection: Any, record: ConnectionPoolEntry, proxy: Any) -> None:
        if record.info.pop(_FRESH, False):
            return
        raw = dbapi_connection.driver_connection
        returned = record.info.pop(_RETURNED, None)
        recent = returned is not None and time.monotonic() - returned < _RECENT
        quiet = recent and _quiet(raw)  # asked before the loop may read again
        _release_input(raw)
        if quiet and returned > _lost_at.get(engine.sync_engine, 0.0):
            return
        if raw.is_closed():
            raise sa_exc.InvalidatePoolError()
        try:
            await_(raw.execute("SELECT 1"))
        except Exception as exc:
            if raw.is_closed():  # what SQLAlchemy's asyncpg dialect calls a disconnect
                raise sa_exc.InvalidatePoolError() from exc
            raise


def _quiet(raw: Any) -> bool:
    """True when the server has sent nothing on this idle connection (no end, no error).

    Asks the socket directly: the event loop may not have read an end that arrived.
    """
    if raw.is_closed():
        return False
    transport = getattr(raw, "_transport", None)  # asyncpg's; without it, ping
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None:
        return False
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):  # e.g. a descriptor select() cannot watch
        return False
    return not readable


def _hold_input(raw: Any) -> None:
    """Leave what the server sends to an idle pooled connection in its socket, unread.

    Otherwise the event loop reads it: a server that ends the connection sends an error
    (FATAL, "terminating connection") just before closing, and asyncpg, receiving it
    while idle, moves to a state that fails the next statement with "cannot switch to
    state 11; another operation (2) is in progress" - while the socket, already read,
    shows nothing to ``_quiet``. Held unread, the error keeps the socket readable.
    """
    transport = getattr(raw, "_transport", None)
    if transport is not None and not raw.is_closed():
        transport.pause_reading()


def _release_input(raw: Any) -> None:
    transport = getattr(raw, "_transport", None)
    if transport is not None:
        transport.resume_reading()


_lost_at: weakref.WeakKeyDictionary[Engine, float] = weakref.WeakKeyDictionary()
"""When a raw-path statement last found its connection lost, per engine."""

_RETURNED = "toolkit.returned"
_RECENT = 1.0
_FRESH = "toolkit.fresh"


def _translate_faults(engine: AsyncEngine, where: str, database: Database) -> None:
    """Raise a lost connection or a fired time limit as the toolkit error that names it.

    SQLAlchemy has already invalidated the connection when this runs (a dead or timed-out
    connection never goes back into the pool); pre-ping failures are left to the pool,
    which reconnects silently.
    """

    @event.listens_for(engine.sync_engine, "handle_error")
    def _on_error(context: ExceptionContext) -> None:
        exc = context.original_exception
        if context.is_pre_ping or not isinstance(exc, Exception):
            return  # pre-ping reconnects; CancelledError/KeyboardInterrupt stay as they are
        disconnect = context.is_disconnect and not isinstance(exc, TimeoutError)
        fault = _fault(exc, disconnect=disconnect, where=where, database=database)
        fault = fault or standby.error_of(exc, engine.sync_engine)
        if fault is not None:
            raise fault from None


def _fault(
    exc: BaseException,
    *,
    disconnect: bool,
    where: str,
    database: Database | None,
    outcome: str = "transaction",
) -> errors.ToolkitError | None:
    """``errors.fault_of`` with the limits ``database`` was configured with."""
    return errors.fault_of(
        exc,
        disconnect=disconnect,
        where=where,
        statement_timeout=database.statement_timeout if database else None,
        command_timeout=database.command_timeout if database else None,
        outcome=outcome,
    )


class _ExplainedPool(AsyncAdaptedQueuePool):
    """SQLAlchemy's async queue pool, whose timeout says what the pool is and how to size it."""

    def _do_get(self) -> ConnectionPoolEntry:
        try:
            return super()._do_get()
        except sa_exc.TimeoutError:
            raise errors.PoolExhausted(
                f"no pooled connection came free within pool_timeout={self._timeout:g} s: "
                f"all {self.size() + self._max_overflow} (pool_size={self.size()} + "
                f"max_overflow={self._max_overflow}) are checked out by sessions or tasks "
                "still running - close sessions you are done with (`async with` blocks), "
                "limit concurrent tasks (asyncio.Semaphore), or raise pool_size/max_overflow "
                "in tk.connect(...) below the server's max_connections"
            ) from None


_databases: weakref.WeakSet[Database] = weakref.WeakSet()
_owners: weakref.WeakKeyDictionary[Engine, weakref.ref[Database]] = weakref.WeakKeyDictionary()
"""The Database each engine belongs to, for its settings (timeouts) on the raw path; weak
both ways, or the Database (which holds the engine) would keep its own key alive."""


async def dispose_all() -> None:
    """Dispose every Database's engine for the running loop (the bridge calls it at exit)."""
    for database in list(_databases):
        await database.dispose()


# The default database -------------------------------------------------------------

_default: Database | None = None
_default_lock = threading.Lock()


def get_database() -> Database:
    """The default Database, created (from the environment) on first call."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = Database()
    return _default


def connect(url: str | URL | None = None, **options: Any) -> Database:
    """Make a new default Database (``tk.connect(url, read_only=True)``) and return it."""
    global _default
    database = Database(url, **options)
    with _default_lock:
        _default = database
    return database


def get_engine() -> AsyncEngine:
    """The default database's engine for the running loop."""
    return get_database().engine


def session() -> Any:
    """``async with tk.session() as s:`` - commit on success, rollback on error."""
    return get_database().session()


async def get_session() -> AsyncGenerator[AsyncSession, None]:
    """The seed's FastAPI dependency, typed as what it is: an async generator."""
    async with get_database().session() as s:
        yield s


@asynccontextmanager
async def session_or_new(
    session: AsyncSession | None, database: Database | None = None
) -> AsyncIterator[AsyncSession]:
    """The caller's session, or a new one (closed at the end; its reads need no commit).

    Every helper taking ``session=`` runs in it through this (or ``connection_or_pooled``,
    ``driver_connection`` one level down), so "yours, else ours" has one home.
    """
    if session is not None:
        yield session
        return
    async with (database or get_database()).async_session() as own:
        yield own


@asynccontextmanager
async def connection_or_pooled(
    session: AsyncSession | None, database: Database | None = None
) -> AsyncIterator[AsyncConnection]:
    """The session's connection (inside its transaction), else a pooled one."""
    if session is not None:
        yield await session.connection()
        return
    async with (database or get_database()).engine.connect() as conn:
        yield conn


def driver_connection(
    session: AsyncSession | None = None,
    database: Database | None = None,
    *,
    write: bool = False,
    refuse_on_standby: str | None = None,
) -> contextlib.AbstractAsyncContextManager[Any]:
    """The asyncpg connection under ``session`` (inside its transaction), else a pooled one.

    For COPY and array statements the toolkit talks to asyncpg directly. SQLAlchemy's
    adapter only sends BEGIN when it first executes, so with ``write=True`` it is made to
    begin now: the writes then belong to the session's transaction, and its rollback
    undoes them, instead of committing on their own. ``refuse_on_standby`` names a helper
    that writes: on a hot standby it is refused before anything is sent (``standby``).
    """
    if session is not None:
        return _session_driver_connection(session, write, refuse_on_standby)
    # A pooled write runs in a transaction the toolkit's helper opened (bulk helpers,
    # to_table), which the loss rolls back; a pooled read wrote nothing (tk.df says
    # more, per statement).
    outcome = "atomic" if write else "read"
    engine = (database or get_database()).engine
    return _PooledDriverConnection(engine, outcome, refuse_on_standby)


@asynccontextmanager
async def _session_driver_connection(
    session: AsyncSession, write: bool, refuse_on_standby: str | None
) -> AsyncIterator[Any]:
    conn = await session.connection()
    raw: Any = (await conn.get_raw_connection()).driver_connection
    if refuse_on_standby is not None:
        await standby.refuse_writes(raw, conn.engine.sync_engine, refuse_on_standby)
    if write and not raw.is_in_transaction():
        await conn.exec_driver_sql("SELECT 1")
    try:
        yield raw
    except BaseException as exc:

        async def invalidate() -> None:
            if not conn.invalidated:
                await conn.invalidate()

        fault = await _fault_named(
            exc, raw, conn.engine, invalidate, pooled=False, outcome="session"
        )
        if fault is None:
            raise
        raise fault from None


class _PooledDriverConnection:
    """A connection straight from the pool: no ``Connection`` object around it (whose
    transaction bookkeeping the raw path does not use: a third of the checkout's cost),
    and a plain class rather than two generator-based context managers."""

    __slots__ = ("_engine", "_outcome", "_pooled", "_refuse_on_standby", "_transaction")

    def __init__(self, engine: AsyncEngine, outcome: str, refuse_on_standby: str | None) -> None:
        self._engine = engine
        self._outcome = outcome
        self._refuse_on_standby = refuse_on_standby
        self._pooled: Any = None
        self._transaction: Any = None

    async def __aenter__(self) -> Any:
        self._pooled = await self._engine.raw_connection()
        raw = self._pooled.driver_connection
        if self._refuse_on_standby is not None:
            try:
                await standby.refuse_writes(raw, self._engine.sync_engine, self._refuse_on_standby)
            except BaseException:
                await _give_back(self._engine, self._pooled)
                raise
        try:
            self._transaction = await _begin_behind_pooler(raw, self._engine)
        except BaseException:
            await greenlet_spawn(self._pooled.invalidate)
            await _give_back(self._engine, self._pooled)
            raise
        return raw

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        pooled, engine = self._pooled, self._engine
        try:
            failed = await _end(self._transaction, pooled.driver_connection, exc)
            exc = failed or exc
            if exc is not None:

                async def invalidate() -> None:
                    if pooled.is_valid:
                        await greenlet_spawn(pooled.invalidate)

                raw = pooled.driver_connection
                fault = await _fault_named(
                    exc, raw, engine, invalidate, pooled=True, outcome=self._outcome
                )
                if fault is not None:
                    raise fault from None
                if failed is not None:
                    raise failed
        finally:
            await _give_back(engine, pooled)


async def _give_back(engine: AsyncEngine, pooled: Any) -> None:
    """Return a raw-path connection to the pool.

    That is no I/O (nothing was begun through SQLAlchemy's adapter, so its reset is a
    no-op) unless the pool holds overflow connections and may close this one instead:
    only then is the close shielded from cancellation, as SQLAlchemy's own ``__aexit__``
    does - a shield costs a task and a turn of the loop, 1-2% of a small query.
    """
    pool = engine.sync_engine.pool
    if not isinstance(pool, QueuePool) or pool.overflow() > 0:
        await asyncio.shield(greenlet_spawn(pooled.close))
    else:
        await greenlet_spawn(pooled.close)


async def _fault_named(
    exc: BaseException,
    raw: Any,
    engine: AsyncEngine,
    invalidate: Callable[[], Awaitable[None]],
    *,
    pooled: bool,
    outcome: str,
) -> BaseException | None:
    """On the raw driver path, the fault to raise as the engine would (see
    ``_translate_faults``) in place of ``exc``; None to let ``exc`` go on.

    Errors there bypass SQLAlchemy, which would otherwise try to roll back a connection
    the server dropped (and fail again). A pooled connection is also invalidated after a
    cancellation or a client-side error: a raw call cut short may have left it inside a
    BEGIN that SQLAlchemy knows nothing of, and would not roll back. Only after a server
    error (the protocol then is at a clean sync point) does it go back into the pool.

    On a connection found closed, any other exception but the toolkit's own is the
    loss too: asyncpg's InternalClientError ("cannot switch to state 11") when its
    protocol met the server's farewell where it expected nothing, or a COPY's write to
    the transport ``_end_writes`` let go of.
    """
    lost = raw.is_closed()
    if lost:
        _lost_at[engine.sync_engine] = time.monotonic()
    if lost or (pooled and not isinstance(exc, PostgresError)):
        await invalidate()
    driver_error = isinstance(exc, PostgresError | InterfaceError | TimeoutError)
    if not driver_error and not (lost and _is_plain_error(exc)):
        return None
    cancelled = _cancellation_behind(exc)
    if lost and cancelled is not None:
        # A cancelled COPY closes its connection; the clean-up after it (a rollback)
        # then fails on the closed connection. The cancellation is what happened.
        return cancelled
    owner = _owners.get(engine.sync_engine)
    where = config.server_address(engine.url)
    database = owner() if owner is not None else None
    fault = _fault(exc, disconnect=lost, where=where, database=database, outcome=outcome)
    return fault or standby.error_of(exc, engine.sync_engine)


def _is_plain_error(exc: BaseException) -> bool:
    """An Exception that is not the toolkit's own (InternalClientError, AttributeError...)."""
    return isinstance(exc, Exception) and not isinstance(exc, errors.ToolkitError)


def statement_attempts(session: AsyncSession | None, *, reads: bool) -> Iterator[StatementAttempt]:
    """Run one statement, and once more on a new connection when it is safe.

    ``for attempt in statement_attempts(session, reads=...): with attempt: ...`` - a
    ``ConnectionLost`` inside the block ends it; the loop then tries once more when
    the statement only reads, runs outside a caller's session, and nothing of it has
    reached the caller yet. Otherwise the error is raised again, its message saying
    whether the statement may have been applied (see ``StatementAttempt``). The server
    can end a connection at any moment, also between the pool's check and the
    statement: a restart, a failover or an idle-session killer does.
    """
    first = StatementAttempt(session is not None, reads, retry=session is None and reads)
    yield first
    if first.lost:
        yield StatementAttempt(session is not None, reads, retry=False, retried=True)


class StatementAttempt:
    """One try of a statement: what it got to, for the verdict on a lost connection.

    The caller calls ``sending(raw)`` just before the statement is executed (preparing
    or planning it applies nothing) and ``delivering()`` before its first rows reach the
    caller.
    """

    __slots__ = ("_in_session", "_reads", "_retried", "_retry", "delivered", "lost", "sent")

    def __init__(self, in_session: bool, reads: bool, *, retry: bool, retried: bool = False):
        self._in_session = in_session
        self._reads = reads
        self._retry = retry
        self._retried = retried
        self.sent: bool | None = None  # None: not sent; else: inside a transaction or not
        self.delivered = False
        self.lost = False

    def sending(self, raw: Any) -> None:
        self.sent = bool(raw.is_in_transaction())

    def delivering(self) -> None:
        self.delivered = True

    def __enter__(self) -> StatementAttempt:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        if not isinstance(exc, errors.ConnectionLost):
            return False
        if self._retry and not self.delivered:
            self.lost = True
            return True  # statement_attempts tries again
        lost = errors.connection_lost(exc.where, exc.original or exc, outcome=self._outcome())
        raise lost from None

    def _outcome(self) -> str:
        if self.sent is False and not self._reads:
            return "sent"  # outside any transaction: it may have committed
        if self._in_session:
            return "session"
        if self._reads:
            return "streamed" if self.delivered else "read twice" if self._retried else "read"
        return "not sent" if self.sent is None else "atomic"


async_session: async_sessionmaker[AsyncSession] = _LoopBoundSessionmaker(None)
"""The seed's ``async_session``: ``async with tk.async_session() as s:`` (default database)."""
