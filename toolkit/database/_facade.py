"""``Database``: a thin facade - an AsyncEngine (assembled by ``_engine``) and a session
factory per event loop, created on first use."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any

from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from toolkit import config, errors
from toolkit.database._connecting import resolve_url
from toolkit.database._engine import build_engine
from toolkit.database._facts import POOLERS, ServerFacts, learn
from toolkit.database._state import LearnedFacts, databases, dispose_all, state_of
from toolkit.runtime import before_script_loop_closes, script_loop

__all__ = ["Database", "LoopBoundSessionmaker"]


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
    ``ServerFacts``); ``pooler="none"`` skips that. ``server_facts`` and
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
        if pooler is not None and pooler not in POOLERS:
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
        self._learned = LearnedFacts()
        self._engines: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncEngine] = (
            weakref.WeakKeyDictionary()
        )
        self._finalizers: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, AsyncIterator[None]
        ] = weakref.WeakKeyDictionary()
        self._lock = threading.RLock()
        self.async_session = LoopBoundSessionmaker(lambda: self)
        databases.add(self)

    # URL ------------------------------------------------------------------------

    @property
    def url(self) -> URL:
        """The resolved asyncpg URL (starts the embedded server if that is the source)."""
        if self._url is None:
            with self._lock:
                if self._url is None:
                    self._url, self._url_source = resolve_url()
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
        known = self._learned.facts
        facts = f", server={known.describe()!r}" if known is not None else ""
        pooler = f", pooler={self.pooler!r}" if self.pooler is not None else ""
        return f"Database({shown}, read_only={self.read_only}{pooler}{facts})"

    @property
    def server_facts(self) -> ServerFacts | None:
        """What the first connection learned about the server; None before it (no I/O)."""
        return self._learned.facts

    async def server(self) -> ServerFacts:
        """The server's facts (``server_facts``), connecting first when none was made."""
        state = state_of(self.engine.sync_engine)
        facts = state.facts
        if facts is None:
            with errors.translated():
                async with self.engine.connect() as conn:
                    raw = (await conn.get_raw_connection()).driver_connection
                    facts = state.facts
                    if facts is None:  # the first connect could not learn them
                        facts = await learn(raw)
                        state.remember(facts)
        return facts

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
        url = self.url  # resolves the URL's source, too
        return build_engine(self, url, self._url_source, self._learned)

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


class LoopBoundSessionmaker(async_sessionmaker[AsyncSession]):
    """An ``async_sessionmaker`` that binds each new session to the running loop's engine
    of the Database ``database()`` gives (a Database's own, or the default one)."""

    def __init__(self, database: Callable[[], Database]) -> None:
        super().__init__(class_=AsyncSession, expire_on_commit=False)
        self._database = database

    def __call__(self, **local_kw: Any) -> AsyncSession:
        if "bind" not in local_kw:
            local_kw["bind"] = self._database().engine
        return super().__call__(**local_kw)
