"""Notebook display for ``%load_ext toolkit``.

* A ``list`` of toolkit models (what ``get_all_users`` returns) renders as a compact HTML
  table: loaded column values only (nothing is lazily loaded to draw it), escaped, at
  most ``toolkit.frames.HTML_ROWS`` rows. Any other list keeps IPython's usual repr.
* SQLAlchemy's ``MissingGreenlet`` (a lazy load in async code), and the ``LazyLoadError``
  ``tk.run`` makes of it, are shown as one short message naming the relationship and the
  two fixes (``toolkit.errors.lazy_load_message``), instead of a long traceback.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from toolkit.errors import LazyLoadError, lazy_load_message

__all__ = ["models_html", "register", "unregister"]

_previous_printer: dict[int, Any] = {}


def models_html(value: Any) -> str | None:
    """An HTML table for a list of toolkit models; None (the default repr) otherwise."""
    from toolkit.frames import HTML_ROWS, html_table, to_dataframe
    from toolkit.models import Base

    if not isinstance(value, list) or not value:
        return None
    if not all(isinstance(item, Base) for item in value):
        return None
    kinds = sorted({type(item).__name__ for item in value})
    frame = to_dataframe(value[:HTML_ROWS]) if len(kinds) == 1 else _mixed(value[:HTML_ROWS])
    footer = f"{len(value)} row{'' if len(value) == 1 else 's'} ({', '.join(kinds)})"
    if len(value) > HTML_ROWS:
        footer = f"{len(value) - HTML_ROWS} more · {footer}"
    return html_table(frame, footer)


def _mixed(items: list[Any]) -> pd.DataFrame:
    return pd.DataFrame({"model": [repr(item) for item in items]})


def _chained(previous: Any) -> Any:
    def printer(value: Any) -> str | None:
        html = models_html(value)
        if html is None and previous is not None:
            return previous(value)  # type: ignore[no-any-return]
        return html

    printer.__toolkit__ = True  # type: ignore[attr-defined]
    return printer


# MissingGreenlet --------------------------------------------------------------------


def _missing_greenlet(
    shell: Any, etype: Any, value: Any, tb: Any, tb_offset: Any = None
) -> list[str]:
    # IPython's run_code ignores what a custom handler returns: show it here (in a kernel
    # this sends the error message, ename the class's name, with this one line). A
    # LazyLoadError (``tk.run`` made it) already names the relationship, and its own
    # traceback no longer holds the lazy loader's frames: it is shown as it is.
    message = str(value) if isinstance(value, LazyLoadError) else lazy_load_message(tb)
    stb = [f"{etype.__name__}: {message}"]
    shell._showtraceback(etype, value, stb)
    return stb


# Registration -----------------------------------------------------------------------


def register(ip: Any) -> None:
    from sqlalchemy.exc import MissingGreenlet

    formatter = ip.display_formatter.formatters["text/html"]
    try:
        current = formatter.lookup_by_type(list)
    except KeyError:
        current = None
    if not getattr(current, "__toolkit__", False):
        _previous_printer[id(ip)] = current
        formatter.for_type(list, _chained(current))
    ip.set_custom_exc((MissingGreenlet,), _missing_greenlet)
    ip._toolkit_custom_exc = True


def unregister(ip: Any) -> None:
    formatter = ip.display_formatter.formatters["text/html"]
    try:
        current = formatter.lookup_by_type(list)
    except KeyError:
        current = None
    if getattr(current, "__toolkit__", False):
        formatter.pop(list, None)
        previous = _previous_printer.pop(id(ip), None)
        if previous is not None:
            formatter.for_type(list, previous)
    if getattr(ip, "_toolkit_custom_exc", False):
        ip.set_custom_exc((), None)
        ip._toolkit_custom_exc = False
