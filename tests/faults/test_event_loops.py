"""Case 6: one Database, many event loops.

The same ``Database`` object used from two successive ``asyncio.run`` calls, from a
thread with a loop of its own, inside a running loop through the ``tk.run`` bridge, and
from the script-level bridge: every call works, none says "attached to a different loop",
and no connection is left unclosed (warnings are errors in the script).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from sqlalchemy.engine import URL

SCRIPT = textwrap.dedent(
    """
    import asyncio, sys, threading
    import toolkit as tk
    from sqlalchemy import text

    db = tk.Database(sys.argv[1])

    async def answer(n):
        async with db.session() as s:
            value = (await s.execute(text("select :n + 1"), {"n": n})).scalar_one()
        frame = await tk.df("select :n + 2 as v", {"n": n}, database=db)
        return value, int(frame["v"][0])

    print("run1", asyncio.run(answer(1)))
    print("run2", asyncio.run(answer(2)))

    results = []
    worker = threading.Thread(target=lambda: results.append(asyncio.run(answer(3))))
    worker.start()
    worker.join()
    print("thread", results[0])

    async def inside_a_running_loop():
        nested = tk.run(answer(4))  # the notebook case: a loop already runs
        direct = await answer(5)
        return nested, direct

    print("nested", asyncio.run(inside_a_running_loop()))
    print("bridge", tk.run(answer(6)), tk.run(answer(7)))
    """
)


@pytest.mark.slow
def test_one_database_serves_successive_runs_a_thread_a_running_loop_and_the_bridge(
    database_url: URL,
) -> None:
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", SCRIPT, database_url.render_as_string(False)],
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr
    assert "different loop" not in done.stderr
    assert "nclosed" not in done.stderr  # "unclosed connection" / "Unclosed" warnings
    assert done.stdout.splitlines() == [
        "run1 (2, 3)",
        "run2 (3, 4)",
        "thread (4, 5)",
        "nested ((5, 6), (6, 7))",
        "bridge (7, 8) (8, 9)",
    ]
