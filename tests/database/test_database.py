"""toolkit.database: lazy engines, one per event loop, sessions that commit or roll back."""

from __future__ import annotations

import asyncio
import gc
import inspect
import threading
import weakref

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import toolkit as tk
from toolkit.database import Database
from toolkit.errors import ConfigurationError, DatabaseError, QueryCanceled, ReadOnlyViolation
from toolkit.models import User


async def _count_users(database: Database, email: str) -> int:
    async with database.async_session() as s:
        return int(await s.scalar(select(func.count()).where(User.email == email)) or 0)


def test_a_malformed_or_foreign_url_fails_at_construction() -> None:
    with pytest.raises(ConfigurationError, match="malformed"):
        Database("not a url")
    with pytest.raises(ConfigurationError, match="PostgreSQL only"):
        Database("sqlite:///file.db")


def test_repr_masks_the_password() -> None:
    shown = repr(Database("postgresql://analyst:hunter2@db.example.com/sales"))
    assert "hunter2" not in shown
    assert "analyst" in shown
    assert "db.example.com" in shown


async def test_engine_uses_the_seed_pool_settings(db: Database) -> None:
    engine = db.engine
    assert engine.url.drivername == "postgresql+asyncpg"
    assert engine.pool.size() == 5  # type: ignore[attr-defined]
    assert engine.pool._max_overflow == 10  # type: ignore[attr-defined]
    assert db.engine is engine, "one engine per loop, reused"


def test_async_session_is_a_sessionmaker_that_keeps_objects_loaded_after_commit(
    db: Database,
) -> None:
    assert isinstance(tk.async_session, async_sessionmaker)
    assert tk.async_session.kw["expire_on_commit"] is False
    assert db.async_session.kw["expire_on_commit"] is False


async def test_session_commits_when_the_block_succeeds(fresh: Database) -> None:
    async with fresh.session() as s:
        s.add(User(email="commit@example.com", name="C"))
    assert await _count_users(fresh, "commit@example.com") == 1


async def test_session_rolls_back_everything_when_the_block_raises(fresh: Database) -> None:
    async def failing_unit_of_work() -> None:
        async with fresh.session() as s:
            s.add(User(email="rollback@example.com", name="R"))
            await s.flush()
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await failing_unit_of_work()
    assert await _count_users(fresh, "rollback@example.com") == 0


async def test_objects_stay_readable_after_commit(fresh: Database) -> None:
    async with fresh.session() as s:
        user = User(email="readable@example.com", name="Readable")
        s.add(user)
    assert user.name == "Readable"  # expire_on_commit=False: no lazy refresh needed
    assert user.id is not None


def test_get_session_is_an_async_generator_dependency() -> None:
    assert inspect.isasyncgenfunction(tk.get_session)
    assert inspect.isasyncgenfunction(Database.get_session)


async def test_get_session_commits_on_close_and_rolls_back_on_error(fresh: Database) -> None:
    dependency = fresh.get_session()
    s = await anext(dependency)
    assert isinstance(s, AsyncSession)
    s.add(User(email="dep-ok@example.com", name="D"))
    with pytest.raises(StopAsyncIteration):
        await anext(dependency)  # the framework finishing the request
    assert await _count_users(fresh, "dep-ok@example.com") == 1

    dependency = fresh.get_session()
    s = await anext(dependency)
    s.add(User(email="dep-err@example.com", name="E"))
    with pytest.raises(ValueError, match="handler failed"):
        await dependency.athrow(ValueError("handler failed"))
    assert await _count_users(fresh, "dep-err@example.com") == 0


async def test_read_only_database_rejects_writes_on_the_server(fresh_url: URL) -> None:
    async with Database(fresh_url, read_only=True) as ro:
        assert (await tk.df("select count(*) as n from users", database=ro))["n"][0] >= 0
        with pytest.raises(ReadOnlyViolation, match="read-only"):
            await tk.df(
                "insert into users (email, name) values ('w@x.y', 'w') returning id",
                database=ro,
            )


async def test_statement_timeout_cancels_long_queries(fresh_url: URL) -> None:
    async with Database(fresh_url, statement_timeout=0.1) as limited:
        with pytest.raises(QueryCanceled) as caught:
            await tk.df("select pg_sleep(5)", database=limited)
    assert isinstance(caught.value, DatabaseError)
    assert caught.value.sqlstate == "57014"


def test_each_event_loop_gets_its_own_engine(fresh_url: URL) -> None:
    """asyncio.run twice, and from a thread: no "attached to a different loop"."""
    database = Database(fresh_url)
    engines = []

    async def use() -> int:
        engines.append(database.engine)
        async with database.async_session() as s:
            return int(await s.scalar(text("select 41 + 1")) or 0)

    assert asyncio.run(use()) == 42
    assert asyncio.run(use()) == 42
    results: list[int] = []
    thread = threading.Thread(target=lambda: results.append(asyncio.run(use())))
    thread.start()
    thread.join()
    assert results == [42]
    assert len({id(e) for e in engines}) == 3


def test_a_database_no_longer_referenced_is_garbage_collected(fresh_url: URL) -> None:
    """Nothing module-level keeps a Database (and its engines) alive after its last use."""

    async def use() -> weakref.ref[Database]:
        database = Database(fresh_url)
        await tk.df("select 1 as one", database=database)
        await database.dispose()
        return weakref.ref(database)

    gone = asyncio.run(use())
    gc.collect()

    assert gone() is None
