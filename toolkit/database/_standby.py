"""Hot standbys (read replicas): writes refused before anything is sent, and a standby's
errors told as what they mean.

A hot standby answers every read but no write: it replays the primary's WAL and is "in
recovery" (``pg_is_in_recovery()``). Left to the server, a bulk load would convert its
rows and then get "cannot execute COPY during recovery", and the toolkit would suggest
``read_only=True`` was to blame. Replaying the primary's changes can also cancel a query
that still needs what a change removes: SQLSTATE 40001, which on a primary means a
serialization failure instead - so the mapping goes by the code *and* the server's role,
never by the message text.

The role comes from the server facts its first connection learned (once per engine,
``_facts``), kept with what the server said when asked since in the engine's record
(``_state``). A standby can be promoted while the engine lives, so a write refused on
that knowledge asks the server again first (one round trip, on the refusal path only):
a promoted standby takes writes at once, and a write to a primary costs nothing extra.
Where the facts are unknown, each write asks.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncConnection

from toolkit import errors
from toolkit.database._state import state_of

__all__ = ["error_of", "refuse_writes", "refuse_writes_on"]

_PRIMARY_ADVICE = (
    "point TOOLKIT_DATABASE_URL (or tk.connect(...)) at the primary to write, "
    "and keep the replica for reads"
)


def _standby(engine: Engine) -> bool | None:
    """Whether ``engine``'s server is a standby: what it answered when asked again since
    (a promotion shows here), else what its server facts say; None when unknown."""
    state = state_of(engine)
    if state.asked_standby is not None:
        return state.asked_standby
    return None if state.facts is None else state.facts.standby


_ASK = "SELECT pg_is_in_recovery()"


async def refuse_writes(raw: Any, engine: Engine, what: str = "this write") -> None:
    """Raise ReadOnlyViolation, before anything is written, when the server of ``raw``
    is a hot standby; ``what`` names the operation in the message."""
    if _standby(engine) is False:
        return
    standby = bool(await raw.fetchval(_ASK))  # unknown, or a standby since promoted?
    state_of(engine).asked_standby = standby
    if standby:
        error = errors.ReadOnlyViolation(
            f"{what} was refused before anything was sent: the server is a read-only hot "
            "standby (a replica in recovery, replaying its primary's changes), which "
            f"takes no writes - {_PRIMARY_ADVICE}",
            sqlstate=_READ_ONLY,
        )
        raise error


async def refuse_writes_on(conn: AsyncConnection, what: str) -> None:
    """``refuse_writes`` on a SQLAlchemy connection (migrations, the demo data)."""
    raw = (await conn.get_raw_connection()).driver_connection
    await refuse_writes(raw, conn.engine.sync_engine, what)


_READ_ONLY = "25006"
_CONFLICT = "40001"


def error_of(exc: BaseException, engine: Engine) -> errors.DatabaseError | None:
    """The toolkit error for ``exc`` when it says what only a standby means, else None:
    a write the standby refused, a query a recovery conflict cancelled."""
    if not _standby(engine):
        return None
    code = errors.sqlstate_of(exc)
    mapped: errors.DatabaseError
    if code == _READ_ONLY:
        mapped = errors.ReadOnlyViolation(
            f"{_first_line(exc)} - the server is a read-only hot standby (a replica in "
            f"recovery), which takes no writes: {_PRIMARY_ADVICE}",
            sqlstate=code,
        )
    elif code == _CONFLICT:
        detail = _detail(exc)
        mapped = errors.RecoveryConflict(
            "the standby cancelled this query: replaying its primary's changes needed "
            f"something the query was still using (a recovery conflict{detail}). Nothing "
            "was written; running it again usually works. If long queries on this replica "
            "keep being cancelled, ask its administrator for hot_standby_feedback = on "
            "(the primary then keeps the row versions standby queries still read) or a "
            "larger max_standby_streaming_delay (replay then waits longer for queries "
            "before cancelling them)",
            sqlstate=code,
        )
    else:
        return None
    mapped.original = exc
    return mapped


def _first_line(exc: BaseException) -> str:
    return (str(errors.driver_error(exc) or exc).strip().splitlines() or ["a write"])[0]


def _detail(exc: BaseException) -> str:
    """The server's DETAIL ("User query might have needed to see row versions that must
    be removed."), which says which kind of conflict it was."""
    detail = errors.server_field(exc, "detail")
    return f": {detail.rstrip('.')}" if detail else ""
