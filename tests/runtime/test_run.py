"""toolkit.notebook: the tk.run bridge in scripts, threads and inside a running loop."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading

from sqlalchemy.engine import URL

import toolkit as tk


def _python(code: str, url: URL) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TOOLKIT_DATABASE_URL": url.render_as_string(hide_password=False)}
    return subprocess.run(
        [sys.executable, "-W", "error", "-c", textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_run_called_three_times_in_a_script_reuses_one_engine(database_url: URL) -> None:
    done = _python(
        """
        import toolkit as tk
        engines = set()
        for i in range(3):
            frame = tk.run(tk.df("select :i as i", {"i": i}))
            assert frame["i"].tolist() == [i]
            engines.add(id(tk.get_engine()))
        assert len(engines) == 1, engines
        print("ok")
        """,
        database_url,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
    assert done.stderr == "", "no warnings at exit (connections closed cleanly)"


def test_run_works_inside_a_running_event_loop(database_url: URL) -> None:
    """As in Jupyter: sync code called from a coroutine on the running loop."""
    done = _python(
        """
        import asyncio, toolkit as tk

        def sync_helper():
            return tk.run(tk.df("select 7 as n"))["n"][0]

        async def cell():
            assert sync_helper() == 7
            assert sync_helper() == 7
            assert (await tk.df("select 8 as n"))["n"][0] == 8

        asyncio.run(cell())
        print("ok")
        """,
        database_url,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_run_works_from_a_thread(database_url: URL) -> None:
    results: list[int] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(2):
                results.append(int(tk.run(tk.df("select 5 as n"))["n"][0]))
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert errors == []
    assert results == [5, 5]


def test_run_accepts_any_awaitable_not_only_coroutines(database_url: URL) -> None:
    done = _python(
        """
        import asyncio, toolkit as tk

        async def answer():
            return 42

        loop_future = None
        class Awaitable:
            def __await__(self):
                return answer().__await__()

        assert tk.run(Awaitable()) == 42
        print("ok")
        """,
        database_url,
    )
    assert done.returncode == 0, done.stderr


def test_a_lazy_load_inside_run_is_a_lazy_load_error_naming_the_relationship(
    database_url: URL,
) -> None:
    done = _python(
        """
        import toolkit as tk
        from sqlalchemy.exc import MissingGreenlet
        from toolkit.models import User

        async def lazily_loads() -> None:
            async with tk.async_session() as s:
                user = User(email="lazy@example.com", name="Lazy")
                s.add(user)
                await s.flush()
                s.expire(user, ["posts"])
                try:
                    user.posts  # not loaded: a lazy load, which async code cannot do
                finally:
                    await s.rollback()

        try:
            tk.run(lazily_loads())
        except MissingGreenlet as exc:  # still caught as SQLAlchemy's own error
            assert isinstance(exc, tk.LazyLoadError), type(exc)
            assert type(exc.__cause__) is MissingGreenlet
            print(exc)
        """,
        database_url,
    )
    assert done.returncode == 0, done.stderr
    message = done.stdout.strip()
    assert message.startswith("User.posts was lazily loaded in async code"), message
    assert ".options(selectinload(User.posts))" in message
    assert "await obj.awaitable_attrs.posts" in message
