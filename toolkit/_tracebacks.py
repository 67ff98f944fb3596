"""How a toolkit error shows in IPython and Jupyter: its message, in a few lines.

IPython asks an exception for ``_render_traceback_()`` before formatting it; the toolkit's
errors answer with the user's own frames only (the cell line that made the call) and the
message, which already names the fix. The frames inside the toolkit, SQLAlchemy and the
driver stay one command away: ``%tb verbose`` shows the last error whole, and
``%xmode verbose`` shows every error whole from then on. Outside IPython nothing here runs.
"""

from __future__ import annotations

import functools
import re
import sysconfig
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["FULL_MODES", "render"]

FULL_MODES = frozenset({"Verbose"})
"""IPython exception modes (``%xmode``) in which a toolkit error shows its whole traceback
(every frame, without Verbose's local variables)."""

_HINT = "(the whole traceback: %tb verbose)"


def render(exc: BaseException) -> list[str]:
    """The lines IPython shows for ``exc``: the user's frames and the message, or the whole
    traceback when ``%xmode``/``%tb`` asks for it."""
    shell = _shell()
    if shell is None:  # called outside IPython: what Python itself would show
        import traceback

        return traceback.format_exception(exc)
    formatter = shell.InteractiveTB
    if formatter.mode in FULL_MODES:
        return _whole(formatter, exc)
    cause, suppress = exc.__cause__, exc.__suppress_context__
    exc.__cause__, exc.__suppress_context__ = None, True  # the driver's chain: in %tb only
    try:
        lines = formatter.structured_traceback(type(exc), exc, _own_frames(exc.__traceback__))
    finally:
        exc.__cause__, exc.__suppress_context__ = cause, suppress
    return [*_without_banner(list(lines)), _HINT]


def _whole(formatter: Any, exc: BaseException) -> list[str]:
    """Every frame, in IPython's default ("Context") form: Verbose's local variables are
    left out, since the connection code's locals hold the password."""
    mode = formatter.mode
    formatter.set_mode("Context")
    try:
        return list(formatter.structured_traceback(type(exc), exc, exc.__traceback__))
    finally:
        formatter.set_mode(mode)


def _shell() -> Any:
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()


def _own_frames(tb: TracebackType | None) -> TracebackType | None:
    """The traceback with only the caller's frames (cells and the user's modules): the
    toolkit's, the libraries' and the standard library's frames left out."""
    kept: list[TracebackType] = []
    while tb is not None:
        if not _is_library(tb.tb_frame.f_code.co_filename):
            kept.append(tb)
        tb = tb.tb_next
    chained: TracebackType | None = None
    for entry in reversed(kept):
        chained = TracebackType(chained, entry.tb_frame, entry.tb_lasti, entry.tb_lineno)
    return chained


def _is_library(filename: str) -> bool:
    return filename.startswith(_library_dirs())


@functools.cache
def _library_dirs() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    dirs = {str(Path(__file__).resolve().parent)}  # the toolkit, installed or editable
    dirs |= {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    return tuple(str(Path(d).resolve()) + "/" for d in dirs)


def _without_banner(lines: list[str]) -> list[str]:
    """IPython's dashed rule and "Traceback (most recent call last)" header: noise above
    a message of one or two lines."""
    if lines and set(_plain(lines[0]).strip()) == {"-"}:
        lines = lines[1:]
    if lines and "Traceback (most recent call last)" in _plain(lines[0]):
        lines = lines[1:]
    return lines


def _plain(line: str) -> str:
    return _COLOUR.sub("", line)


_COLOUR = re.compile(r"\x1b\[[0-9;]*m")
"""An ANSI colour code, as IPython's formatter writes them."""
