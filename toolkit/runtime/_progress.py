"""Progress bars: shown in notebooks by default, silent in scripts unless asked."""

from __future__ import annotations

import functools
import sys
import warnings
from typing import Any

__all__ = ["in_notebook", "progress_bar"]


def in_notebook() -> bool:
    """True inside a Jupyter kernel (not a plain IPython terminal, not a script)."""
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    ipython = getattr(shell, "get_ipython", lambda: None)()
    return ipython is not None and "IPKernelApp" in getattr(ipython, "config", {})


def progress_bar(total: int | None, enabled: bool, desc: str) -> Any:
    """A tqdm bar (a widget in notebooks with ipywidgets, else text on stderr); disabled
    when not enabled. Finished, it stays as one line: ``desc: 300k rows [00:01, 250k rows/s]``.
    """
    return _bar_class()(
        total=total, disable=not enabled, unit=" rows", unit_scale=True, desc=desc, file=sys.stderr
    )


@functools.cache
def _bar_class() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tqdm.auto warns when ipywidgets is missing
        from tqdm.auto import tqdm

    class Bar(tqdm):  # type: ignore[misc]
        """tqdm whose ``close`` sends its last line at once.

        tqdm ends a kept bar with a newline it does not flush. In a Jupyter kernel that
        newline waits in stderr's buffer while the cell's own prints go out on stdout, so
        it arrives last, as an output of its own: an empty stderr stripe under the cell.
        Flushed here, it joins the bar's line (Jupyter merges consecutive stderr text).
        """

        def close(self) -> None:
            shown = not getattr(self, "disable", True)
            super().close()
            flush = getattr(getattr(self, "fp", None), "flush", None)
            if shown and flush is not None:
                flush()

    return Bar
