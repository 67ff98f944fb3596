"""Interrupt means cancel: Ctrl-C (or Jupyter's interrupt button) cancels the running
query on the server, instead of waiting for it to finish.

asyncpg sends PostgreSQL a cancel request when the task awaiting a query is cancelled.
So while a toolkit coroutine runs on the main thread's event loop (a notebook cell's
top-level ``await``, or ``tk.run``), SIGINT is routed to cancelling that coroutine's
task; the previous handler (ipykernel's, or Python's) is put back afterwards. The
caller then sees ``KeyboardInterrupt``, as for any interrupted cell.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import signal
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

__all__ = ["cancel_on_interrupt", "interruptible"]

P = ParamSpec("P")
T = TypeVar("T")

_guarding: contextvars.ContextVar[bool] = contextvars.ContextVar("_guarding", default=False)


async def cancel_on_interrupt(awaitable: Awaitable[T]) -> T:
    """Await ``awaitable``; a SIGINT meanwhile cancels it and raises KeyboardInterrupt."""
    if _guarding.get() or threading.current_thread() is not threading.main_thread():
        return await awaitable  # an outer call already guards, or signals cannot reach us
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(_guarded(awaitable))
    interrupted = False

    def on_interrupt(signum: int, frame: object) -> None:
        # Python runs this between bytecodes of the main thread (the loop's select() is
        # woken by the signal); as asyncio.Runner does, hand the cancel to the loop.
        nonlocal interrupted
        interrupted = True
        loop.call_soon_threadsafe(task.cancel)

    # signal.signal, not loop.add_signal_handler: the latter validates the number against
    # signal.valid_signals() on every call, which cost more than the rest of the guard.
    try:
        previous = signal.signal(signal.SIGINT, on_interrupt)
    except ValueError:  # not the main thread of the main interpreter after all
        try:
            return await task
        finally:
            _close_if_never_started(awaitable)
    try:
        return await task
    except asyncio.CancelledError:
        if interrupted:
            raise KeyboardInterrupt("query cancelled on the server") from None
        raise
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler if previous is None else previous)
        _close_if_never_started(awaitable)


def _close_if_never_started(awaitable: Awaitable[Any]) -> None:
    """A task cancelled before its first step never awaits our coroutine: close it, or
    Python warns that it "was never awaited"."""
    if inspect.iscoroutine(awaitable) and inspect.getcoroutinestate(awaitable) == "CORO_CREATED":
        awaitable.close()


async def _guarded(awaitable: Awaitable[T]) -> T:
    _guarding.set(True)  # this task's own context: nested helpers do not re-guard
    return await awaitable


def interruptible(
    function: Callable[P, Coroutine[Any, Any, T]],
) -> Callable[P, Coroutine[Any, Any, T]]:
    """Decorate a toolkit coroutine function so that an interrupt cancels its query."""

    @functools.wraps(function)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        return await cancel_on_interrupt(function(*args, **kwargs))

    return wrapper
