"""What the toolkit keeps per engine, in one record (``EngineState``) in one weak map, and
every Database alive, for ``dispose_all`` at exit.

The map is keyed by the sync ``Engine`` and weak, so an engine's record goes with it. A
record never refers to its engine, and only weakly to the Database that owns it: the
Database holds the engine, so a strong reference would keep the record's own key alive.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine

if TYPE_CHECKING:  # annotations only: the modules above import this one
    from toolkit.database._facade import Database
    from toolkit.database._facts import ServerFacts


__all__ = ["EngineState", "LearnedFacts", "databases", "dispose_all", "new_state", "state_of"]


class LearnedFacts:
    """What a Database's engines last learned about the server (``Database.server_facts``):
    one per Database, shared by the records of its engines (one per event loop)."""

    __slots__ = ("facts",)

    def __init__(self) -> None:
        self.facts: ServerFacts | None = None


class EngineState:
    """One engine's record: the owner's settings it was made with, what its first
    connection learned (the server facts, whether a transaction-mode pooler is between:
    None before that connection), when a raw-path statement last found its connection
    lost, and what the server said when asked again whether it is a standby."""

    __slots__ = (
        "asked_standby",
        "facts",
        "learned",
        "lock",
        "lost_at",
        "owner",
        "pooled",
        "pooler",
        "read_only",
        "statement_timeout",
    )

    def __init__(
        self, database: Database | None = None, learned: LearnedFacts | None = None
    ) -> None:
        self.owner = weakref.ref(database) if database is not None else None
        self.learned = learned
        self.pooler = database.pooler if database is not None else None
        self.read_only = database.read_only if database is not None else False
        self.statement_timeout = database.statement_timeout if database is not None else None
        self.facts: ServerFacts | None = None
        self.pooled: bool | None = None
        self.lock = asyncio.Lock()
        self.lost_at = 0.0
        self.asked_standby: bool | None = None

    def database(self) -> Database | None:
        """The Database this engine belongs to (for its time limits); None when gone."""
        return self.owner() if self.owner is not None else None

    def remember(self, facts: ServerFacts) -> None:
        """Keep what a connection learned, for this engine and for its Database."""
        self.facts = facts
        if self.learned is not None:
            self.learned.facts = facts


_states: weakref.WeakKeyDictionary[Engine, EngineState] = weakref.WeakKeyDictionary()


def new_state(engine: Engine, database: Database, learned: LearnedFacts) -> EngineState:
    """The record of an engine ``database`` just made."""
    state = _states[engine] = EngineState(database, learned)
    return state


def state_of(engine: Engine) -> EngineState:
    """``engine``'s record; an engine the toolkit did not make gets an empty one."""
    state = _states.get(engine)
    if state is None:
        state = _states[engine] = EngineState()
    return state


databases: weakref.WeakSet[Database] = weakref.WeakSet()


async def dispose_all() -> None:
    """Dispose every Database's engine for the running loop (the bridge calls it at exit)."""
    for database in list(databases):
        await database.dispose()
