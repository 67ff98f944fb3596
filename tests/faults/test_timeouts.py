"""Case 3: a time limit ends a slow query - the server's ``statement_timeout`` or the
client's ``command_timeout``.

The query ends within 10% of the limit, the error says which limit fired (and its value),
the server shows no leftover query, and the next call on the same Database works.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL

import toolkit as tk
from tests.faults.conftest import Observer
from toolkit.database import Database
from toolkit.errors import QueryTimeout

LIMIT = 1.0
SLOW = "select pg_sleep(5) as slept"
# Estimated at 100k rows, so tk.df takes the COPY path (raw asyncpg, not SQLAlchemy).
SLOW_AND_LARGE = (
    "select g, pg_sleep(case when g = 1 then 5 else 0 end) from generate_series(1, 100000) g"
)


async def _timed_out(call: Callable[[], Awaitable[object]]) -> tuple[QueryTimeout, float]:
    started = time.monotonic()
    with pytest.raises(QueryTimeout) as caught:
        await call()
    return caught.value, time.monotonic() - started


async def _via_session(db: Database) -> None:
    async with db.session() as s:
        await s.execute(text(SLOW))


@pytest.mark.parametrize("limit", ["statement_timeout", "command_timeout"])
@pytest.mark.parametrize("path", ["tk.df", "tk.df COPY path", "session.execute"])
async def test_a_time_limit_ends_the_query_within_ten_percent_and_names_itself(
    fault_url: URL, observer: Observer, limit: str, path: str
) -> None:
    async with Database(fault_url, **{limit: LIMIT}) as db:  # type: ignore[arg-type]
        calls: dict[str, Callable[[], Awaitable[object]]] = {
            "tk.df": lambda: tk.df(SLOW, database=db),
            "tk.df COPY path": lambda: tk.df(SLOW_AND_LARGE, database=db),
            "session.execute": lambda: _via_session(db),
        }

        error, elapsed = await _timed_out(calls[path])

        assert LIMIT <= elapsed <= LIMIT * 1.1, f"{path} under {limit} took {elapsed:.3f} s"
        assert error.limit == limit
        assert error.sqlstate == "57014"
        assert f"{limit}" in str(error)
        assert error.seconds == LIMIT
        assert f"{limit}=1 s" in str(error)
        # No leftover query on the server, at once (checked by an outside observer).
        await observer.wait_until(lambda queries: queries == [], observer.active_queries, 0.5)
        # The same Database serves the next call.
        frame = await tk.df("select 1 as one", database=db)
        assert frame["one"].tolist() == [1]


async def test_a_statement_timeout_set_in_the_session_is_named_too(
    fault_db: Database,
) -> None:
    async with fault_db.session() as s:
        await s.execute(text("SET LOCAL statement_timeout = '200ms'"))
        with pytest.raises(QueryTimeout) as caught:
            await s.execute(text(SLOW))

    assert caught.value.limit == "statement_timeout"
    assert caught.value.seconds is None  # set by SQL, not by Database(statement_timeout=...)


async def test_a_query_under_the_limits_is_not_affected(fault_url: URL) -> None:
    async with Database(fault_url, statement_timeout=LIMIT, command_timeout=LIMIT) as db:
        frame = await tk.df("select 1 as one from pg_sleep(0.2)", database=db)

    assert frame["one"].tolist() == [1]
