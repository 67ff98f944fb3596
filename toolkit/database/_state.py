"""What the toolkit keeps per engine, weakly (an engine's entries go with it): the server
facts its first connection learned, the Database it belongs to, when it last lost a
connection; and every Database alive, for ``dispose_all`` at exit."""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine

if TYPE_CHECKING:  # annotations only: the modules above import this one
    from toolkit.database._connecting import ServerState
    from toolkit.database._facade import Database


__all__ = ["databases", "dispose_all", "lost_at", "owners", "states"]


states: weakref.WeakKeyDictionary[Engine, ServerState] = weakref.WeakKeyDictionary()


lost_at: weakref.WeakKeyDictionary[Engine, float] = weakref.WeakKeyDictionary()
"""When a raw-path statement last found its connection lost, per engine."""


databases: weakref.WeakSet[Database] = weakref.WeakSet()


owners: weakref.WeakKeyDictionary[Engine, weakref.ref[Database]] = weakref.WeakKeyDictionary()
"""The Database each engine belongs to, for its settings (timeouts) on the raw path; weak
both ways, or the Database (which holds the engine) would keep its own key alive."""


async def dispose_all() -> None:
    """Dispose every Database's engine for the running loop (the bridge calls it at exit)."""
    for database in list(databases):
        await database.dispose()
