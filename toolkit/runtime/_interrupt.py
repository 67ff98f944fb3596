"""Interrupt means cancel: Ctrl-C (or Jupyter's interrupt button) cancels the running
query on the server, instead of waiting for it to finish.

asyncpg sends PostgreSQL a cancel request when the task awaiting a query is cancelled.
So while a toolkit coroutine runs on the main thread's event loop (a notebook cell's
top-level ``await``, or ``tk.run``), SIGINT is routed to cancelling that coroutine's
task; the previous handler (ipykernel's, or Python's) is put back afterwards. The
caller then sees ``QueryInterrupted``, a ``KeyboardInterrupt``, as for any interrupted cell.
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # signal.signal, unwrapped (see below)
import asyncio
import contextvars
import functools
import inspect
import signal
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from toolkit.errors import QueryInterrupted

__all__ = ["cancel_on_interrupt", "interruptible"]

P = ParamSpec("P")
T = TypeVar("T")

_guarding: contextvars.ContextVar[bool] = contextvars.ContextVar("_guarding", default=False)


async def cancel_on_interrupt(awaitable: Awaitable[T]) -> T:
    """Await ``awaitable``; a SIGINT meanwhile cancels it and raises KeyboardInterrupt.

    The interrupt cancels the calling task, and the cancellation is taken back (as
    ``asyncio.timeout`` does) when it reaches this frame: no task of our own per call,
    which would cost more than a small query.
    """
    task = asyncio.current_task()
    if task is None or _guarding.get() or threading.current_thread() is not threading.main_thread():
        return await awaitable  # an outer call already guards, or signals cannot reach us
    loop = task.get_loop()
    delivery: asyncio.Handle | None = None
    delivered = False

    def deliver() -> None:
        nonlocal delivered
        delivered = task.cancel()

    def on_interrupt(signum: int, frame: object) -> None:
        # Python runs this between bytecodes of the main thread (the loop's select() is
        # woken by the signal); as asyncio.Runner does, hand the cancel to the loop.
        nonlocal delivery
        if delivery is None:
            delivery = loop.call_soon_threadsafe(deliver)

    # _signal.signal, not loop.add_signal_handler (which validates the number against
    # signal.valid_signals() on every call) nor signal.signal (which tries to turn the
    # previous handler into an enum member - formatting the repr of asyncio.run's handler,
    # a partial holding the main task, into the failed lookup's message): either cost
    # more than the rest of the guard.
    try:
        previous = _signal.signal(signal.SIGINT, on_interrupt)
    except ValueError:  # not the main thread of the main interpreter after all
        return await awaitable
    cancelling = task.cancelling()
    token = _guarding.set(True)  # nested toolkit calls do not guard again
    try:
        return await awaitable
    except asyncio.CancelledError:
        if delivered and task.uncancel() <= cancelling:
            raise QueryInterrupted(
                "query cancelled on the server; the connection is ready for the next query"
            ) from None
        raise  # cancelled by someone else too: that cancellation goes on
    finally:
        _guarding.reset(token)
        _signal.signal(signal.SIGINT, signal.default_int_handler if previous is None else previous)
        if delivery is not None:
            delivery.cancel()  # an interrupt just as the call ended: no stray cancel later
        _close_if_never_started(awaitable)


def _close_if_never_started(awaitable: Awaitable[Any]) -> None:
    """A coroutine that an interrupt (or another error) stopped before it was awaited:
    close it, or Python warns that it "was never awaited"."""
    if inspect.iscoroutine(awaitable) and inspect.getcoroutinestate(awaitable) == "CORO_CREATED":
        awaitable.close()


def interruptible(
    function: Callable[P, Coroutine[Any, Any, T]],
) -> Callable[P, Coroutine[Any, Any, T]]:
    """Decorate a toolkit coroutine function so that an interrupt cancels its query."""

    @functools.wraps(function)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        return await cancel_on_interrupt(function(*args, **kwargs))

    return wrapper
