"""Case 5: a cancellation storm - 200 tasks cancelled at random points mid-query.

Afterwards no connection is checked out, the server runs no query of ours, every unit of
work was written whole or not at all, and the next 100 queries succeed.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable

from sqlalchemy import func, select, text

import toolkit as tk
from tests.faults.conftest import Observer
from toolkit.database import Database
from toolkit.models import User

TASKS = 200
UNIT = 20  # rows written by each unit of work


def _operations(db: Database) -> list[Callable[[int], Awaitable[object]]]:
    """Mixed work: small and COPY-sized frames, ORM sessions, streams, bulk writes."""

    async def small_frame(i: int) -> object:
        return await tk.df("select g from generate_series(1, 50) g, pg_sleep(0.05)", database=db)

    async def copy_frame(i: int) -> object:
        return await tk.df("select g, md5(g::text) from generate_series(1, 200000) g", database=db)

    async def session_query(i: int) -> object:
        async with db.session() as s:
            return (await s.execute(text("select pg_sleep(0.1), 1"))).all()

    async def stream(i: int) -> object:
        sql = "select g, md5(g::text) from generate_series(1, 100000) g"
        return [len(chunk) async for chunk in tk.stream_df(sql, chunk_size=5000, database=db)]

    async def unit_of_work(i: int) -> object:
        rows = [{"email": f"t{i}-{n}@example.com", "name": f"task {i}"} for n in range(UNIT)]
        async with db.session() as s:
            ids = await tk.bulk_insert(User, rows, returning=True, session=s)
            await s.execute(text("select pg_sleep(0.05)"))
            changes = [{"id": key, "name": "updated"} for key in ids]  # type: ignore[union-attr]
            return await tk.bulk_update(User, changes, session=s)

    return [small_frame, copy_frame, session_query, stream, unit_of_work]


async def test_200_tasks_cancelled_at_random_points_leave_no_connection_query_or_half_write(
    fault_db: Database, observer: Observer
) -> None:
    rng = random.Random(20261124)
    operations = _operations(fault_db)
    loop = asyncio.get_running_loop()
    tasks = []
    for i in range(TASKS):
        task = asyncio.create_task(rng.choice(operations)(i))
        loop.call_later(rng.uniform(0.0, 1.5), task.cancel)
        tasks.append(task)

    outcomes = await asyncio.gather(*tasks, return_exceptions=True)

    cancelled = sum(isinstance(o, asyncio.CancelledError) for o in outcomes)
    failures = [o for o in outcomes if isinstance(o, BaseException)]
    unexpected = [o for o in failures if not isinstance(o, asyncio.CancelledError)]
    assert unexpected == []
    assert cancelled > TASKS // 2  # the storm really cancelled most tasks mid-way
    print(f"storm: {cancelled} of {TASKS} tasks cancelled, {TASKS - cancelled} finished")
    assert fault_db.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    await observer.wait_until(lambda queries: queries == [], observer.active_queries, 2.0)

    # Every unit of work is all-or-nothing: 0 or UNIT rows, and updated only if all written.
    async with fault_db.session() as s:
        per_task = (await s.execute(select(User.name, func.count()).group_by(User.name))).all()
    assert all(count % UNIT == 0 for _, count in per_task), per_task
    assert {name for name, _ in per_task} <= {"updated"}

    # The next 100 queries succeed.
    frames = await asyncio.gather(
        *(tk.df("select :i as i", {"i": i}, database=fault_db) for i in range(100))
    )
    assert [int(f["i"][0]) for f in frames] == list(range(100))
