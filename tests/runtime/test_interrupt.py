"""Interrupt means cancel: the query stops on the server, the engine stays usable.

These run in a real Jupyter kernel (jupyter_client) and a real script process. The bound
on the time to idle is generous on purpose (the query sleeps 20 s; waiting for it would
take 18 s): it proves the query was cancelled, not how fast - the closing notes quote
the measured figures.
"""

from __future__ import annotations

import asyncio
import os
import queue
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL

import toolkit as tk
from tests.conftest import MakeDatabase
from toolkit.database import Database

SLEEP = "select pg_sleep(20)"
ACTIVE = (
    "select count(*) as n from pg_stat_activity "
    "where state = 'active' and query like 'select pg_sleep(20)%'"
)


class Kernel:
    """A real ipykernel, driven the way JupyterLab drives it."""

    def __init__(self, env: dict[str, str]) -> None:
        from jupyter_client import KernelManager

        self.manager = KernelManager(kernel_name="python3")
        self.manager.start_kernel(env=env)
        self.client = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=60)

    def run(self, code: str, timeout: float = 60) -> list[dict[str, Any]]:
        self.client.execute(code)
        return self.until_idle(timeout)

    def until_idle(self, timeout: float) -> list[dict[str, Any]]:
        outputs: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                message = self.client.get_iopub_msg(timeout=0.05)
            except queue.Empty:
                continue
            kind = message["msg_type"]
            if kind == "status" and message["content"]["execution_state"] == "idle":
                return outputs
            if kind in ("stream", "error", "execute_result"):
                outputs.append({"type": kind, **message["content"]})
        raise TimeoutError(f"kernel still busy after {timeout} s")

    def close(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)


@pytest.fixture(scope="module")
async def kernel(make_database: MakeDatabase) -> AsyncIterator[Kernel]:
    """A kernel on a database of its own, like every test that lets other code commit."""
    url = await make_database()
    env = {**os.environ, "TOOLKIT_DATABASE_URL": url.render_as_string(False)}
    started = Kernel(env)
    started.run("import toolkit as tk\nawait tk.df('select 1')")
    yield started
    started.close()


def _printed(outputs: list[dict[str, Any]]) -> str:
    return "".join(o.get("text", "") for o in outputs if o["type"] == "stream")


def _interrupt_and_wait(kernel: Kernel, code: str) -> tuple[float, list[dict[str, Any]]]:
    kernel.client.execute(code)
    time.sleep(2)
    interrupted = time.monotonic()
    kernel.manager.interrupt_kernel()
    outputs = kernel.until_idle(timeout=30)
    return time.monotonic() - interrupted, outputs


@pytest.mark.slow
@pytest.mark.parametrize(
    "code",
    [f"await tk.df('{SLEEP}')", f"tk.run(tk.df('{SLEEP}'))"],
    ids=["top-level-await", "tk.run"],
)
def test_interrupting_a_kernel_cancels_the_query_on_the_server(kernel: Kernel, code: str) -> None:
    waited, outputs = _interrupt_and_wait(kernel, code)
    assert waited < 10, f"the cell stayed busy {waited:.1f} s: the query was not cancelled"
    errors = [o for o in outputs if o["type"] == "error"]
    assert [o["ename"] for o in errors] == ["QueryInterrupted"]  # a KeyboardInterrupt
    shown = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(errors[0]["traceback"])).splitlines()
    assert len(shown) <= 8, shown  # the cell line and the message, no frames of ours
    assert "QueryInterrupted: query cancelled on the server" in "\n".join(shown)
    after = kernel.run(f"print((await tk.df(\"{ACTIVE}\"))['n'][0])")
    assert _printed(after).strip() == "0", "no such query is still running on the server"
    again = kernel.run("print((await tk.df('select 41 + 1 as x'))['x'][0])")
    assert _printed(again).strip() == "42", "the engine is still usable"


@pytest.mark.slow
def test_ctrl_c_in_a_script_cancels_the_query_and_the_engine_stays_usable(
    database_url: URL,
) -> None:
    script = textwrap.dedent(
        f"""
        import time, toolkit as tk
        tk.run(tk.df("select 1"))
        print("ready", flush=True)
        started = time.monotonic()
        try:
            tk.run(tk.df("{SLEEP}"))
        except KeyboardInterrupt:
            print("interrupted", flush=True)
        print(tk.run(tk.df("{ACTIVE}"))["n"][0], flush=True)
        print(tk.run(tk.df("select 42 as x"))["x"][0], flush=True)
        """
    )
    env = {**os.environ, "TOOLKIT_DATABASE_URL": database_url.render_as_string(False)}
    process = subprocess.Popen(
        [sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    time.sleep(1.5)
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=15)
    assert process.returncode == 0
    assert output.split() == ["interrupted", "0", "42"]


# Concurrency ---------------------------------------------------------------------------


async def _checked_out(database: Database) -> int:
    return int(database.engine.pool.checkedout())  # type: ignore[attr-defined]


async def test_a_hundred_tasks_with_their_own_sessions_share_a_small_pool(
    database_url: URL,
) -> None:
    async with Database(database_url, pool_size=5, max_overflow=0) as database:

        async def one(i: int) -> int:
            async with database.session() as s:
                return int(await s.scalar(text("select :i + 0 from pg_sleep(0.01)"), {"i": i}) or 0)

        assert await asyncio.gather(*(one(i) for i in range(100))) == list(range(100))
        assert await _checked_out(database) == 0


async def test_a_hundred_tasks_cancelled_mid_query_leave_no_connection_checked_out(
    database_url: URL,
) -> None:
    async with Database(database_url, pool_size=5, max_overflow=5) as database:
        tasks = [
            asyncio.create_task(tk.df("select pg_sleep(5)", database=database)) for _ in range(100)
        ]
        await asyncio.sleep(0.5)  # some queries running, most waiting for a connection
        for task in tasks:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert all(isinstance(r, asyncio.CancelledError) for r in results)
        assert await _checked_out(database) == 0
        assert (await tk.df(ACTIVE.replace("20", "5"), database=database))["n"][0] == 0
        assert (await tk.df("select 1 as one", database=database))["one"][0] == 1


@pytest.mark.slow
def test_interrupting_the_sql_magic_cancels_the_query_on_the_server(kernel: Kernel) -> None:
    kernel.run("%load_ext toolkit")
    waited, outputs = _interrupt_and_wait(kernel, f"%%sql\n{SLEEP}")
    assert waited < 10, f"the cell stayed busy {waited:.1f} s: the query was not cancelled"
    assert "QueryInterrupted" in str(outputs)  # a KeyboardInterrupt
    assert "query cancelled on the server" in str(outputs)
    after = kernel.run(f"print((await tk.df(\"{ACTIVE}\"))['n'][0])")
    assert _printed(after).strip() == "0"
    again = kernel.run("%%sql -o x\nselect 42 as answer")
    assert "42" in str(again)
