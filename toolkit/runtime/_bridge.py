"""``tk.run(awaitable)``: the one sync bridge into the async core.

* In a plain script each thread gets one long-lived event loop (an ``asyncio.Runner``),
  so calling ``tk.run`` many times reuses one engine and its pool. Calling
  ``asyncio.run`` repeatedly would create a new loop each time, and a pooled asyncpg
  connection cannot move between loops.
* Inside a running loop (Jupyter, where top-level ``await`` is better) the loop is made
  re-entrant with nest-asyncio2 - applied lazily, to that loop only, never at import.
"""

from __future__ import annotations

import asyncio
import atexit
import contextvars
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from sqlalchemy.exc import MissingGreenlet

from toolkit.errors import LazyLoadError, lazy_load_error

__all__ = ["before_script_loop_closes", "run", "script_loop"]

T = TypeVar("T")

_local = threading.local()
_before_close: list[Callable[[], Awaitable[None]]] = []
_patched_loops: set[int] = set()
_patch_lock = threading.Lock()


def _runner() -> asyncio.Runner:
    runner: asyncio.Runner | None = getattr(_local, "runner", None)
    if runner is None:
        runner = asyncio.Runner()
        _local.runner = runner
        if threading.current_thread() is threading.main_thread():
            atexit.register(_close_runner, runner)
    return runner


def script_loop() -> asyncio.AbstractEventLoop:
    """The loop ``tk.run`` uses in this thread (created on first call)."""
    return _runner().get_loop()


def before_script_loop_closes(callback: Callable[[], Awaitable[None]]) -> None:
    """Await ``callback()`` on a script's loop before it closes at exit (once per callback).

    The layer above registers its clean-up here (``toolkit.database`` closes pooled
    connections), so the bridge never imports it.
    """
    if callback not in _before_close:
        _before_close.append(callback)


def run(awaitable: Awaitable[T]) -> T:
    """Run ``awaitable`` to completion from sync code and return its result.

    A lazy load inside it (SQLAlchemy's ``MissingGreenlet``) comes out as
    ``LazyLoadError``, naming the relationship and how to load it.
    """
    try:
        return _run(awaitable)
    except MissingGreenlet as exc:
        if isinstance(exc, LazyLoadError):
            raise
        raise lazy_load_error(exc) from exc


def _run(awaitable: Awaitable[T]) -> T:
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        # The caller's context (as asyncio.run gives): context variables set in the
        # script, e.g. by `with tk.count_queries()`, are seen by the coroutine.
        return _runner().run(_as_coroutine(awaitable), context=contextvars.copy_context())
    _make_reentrant(loop)
    return loop.run_until_complete(_as_coroutine(awaitable))


async def _await(awaitable: Awaitable[T]) -> T:
    return await awaitable


def _as_coroutine(awaitable: Awaitable[T]) -> Coroutine[Any, Any, T]:
    if asyncio.iscoroutine(awaitable):
        return awaitable
    return _await(awaitable)


def _make_reentrant(loop: asyncio.AbstractEventLoop) -> None:
    with _patch_lock:
        if id(loop) in _patched_loops:
            return
        import nest_asyncio2

        nest_asyncio2.apply(loop)
        _patched_loops.add(id(loop))


def _close_runner(runner: asyncio.Runner) -> None:
    """At exit: run the registered clean-ups (pooled connections closed), then close."""
    try:
        for callback in list(_before_close):
            runner.run(_await(callback()))
    finally:
        runner.close()
