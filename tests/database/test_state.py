"""One record per engine (``_state``): it goes with its engine, and its Database with it."""

from __future__ import annotations

import asyncio
import gc
import weakref

from sqlalchemy.engine import URL, Engine

import toolkit as tk
from toolkit.database import Database, _state


def test_an_engines_record_keeps_neither_its_engine_nor_its_database_alive(
    fresh_url: URL,
) -> None:
    """The record refers to its Database weakly: the Database holds the engine (the
    record's key), so a strong reference would keep both alive for good."""

    async def use() -> tuple[weakref.ref[Database], weakref.ref[Engine]]:
        database = Database(fresh_url)
        await tk.df("select 1 as one", database=database)
        engine = database.engine.sync_engine
        state = _state.state_of(engine)
        assert state.database() is database
        assert state.facts is not None
        assert database.server_facts is state.facts
        await database.dispose()
        return weakref.ref(database), weakref.ref(engine)

    database, engine = asyncio.run(use())
    gc.collect()

    assert database() is None
    assert engine() is None
