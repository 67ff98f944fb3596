"""The runtime layer: how a coroutine runs, is interrupted, and shows progress.

* ``run`` - the one sync bridge into the async core (``tk.run``), with the long-lived
  event loop plain scripts use (``script_loop``) and the callbacks that run before it
  closes (``before_script_loop_closes``).
* ``interruptible`` / ``cancel_on_interrupt`` - Ctrl-C (the kernel's interrupt) cancels
  the query on the server and raises ``QueryInterrupted``.
* ``progress_bar`` / ``in_notebook`` - progress for the long helpers.

It imports only ``toolkit.errors``; the SQL layer and everything above build on it.
"""

from toolkit.runtime._bridge import before_script_loop_closes, run, script_loop
from toolkit.runtime._interrupt import cancel_on_interrupt, interruptible
from toolkit.runtime._progress import in_notebook, progress_bar

__all__ = [
    "before_script_loop_closes",
    "cancel_on_interrupt",
    "in_notebook",
    "interruptible",
    "progress_bar",
    "run",
    "script_loop",
]
