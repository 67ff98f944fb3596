"""``%load_ext toolkit``: the ``%%sql`` cell magic (and ``%sql`` line magic).

The SQL runs through ``tk.df`` (interruptible; its own pooled connection) and the cell
returns a DataFrame. ``:name`` placeholders are bound from the notebook's namespace as
parameters - never formatted in. Placeholders are found by ``tk.df``'s tokenizer
(``toolkit.sql.find_placeholders``), which skips quoted strings, quoted identifiers,
comments and ``::`` casts: ``'a :b'`` stays literal text.

This module imports IPython; ``toolkit`` itself only imports it on ``%load_ext``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from typing import Any, cast

import pandas as pd
from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from sqlalchemy.exc import SQLAlchemyError

from toolkit import errors
from toolkit.frames import exact_frame
from toolkit.notebook._display import register, unregister
from toolkit.runtime import run
from toolkit.sql import Placeholders, find_placeholders, plannable, statement

__all__ = ["SqlMagics", "load_ipython_extension", "unload_ipython_extension"]

DEFAULT_LIMIT = 1000

# IPython's magic_arguments helpers are untyped: typed aliases keep ``sql`` typed.
_Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]
_magic_arguments = cast(Callable[[], _Decorator], magic_arguments)
_argument = cast(Callable[..., _Decorator], argument)
_parse_argstring = cast(Callable[[Any, str], Any], parse_argstring)

_WRITES = {"insert", "update", "delete", "merge"}


def _is_query(scan: Placeholders) -> bool:
    """A row-returning query that can be wrapped in ``SELECT * FROM (...) LIMIT``."""

    if not plannable(scan.sql):
        return False
    # WITH ... INSERT/UPDATE/DELETE must stay at the top level: run it as a statement.
    return not (scan.words and scan.words[0] == "with" and _WRITES & set(scan.words))


# The magic -------------------------------------------------------------------------

_OPTION_WITH_VALUE = {"-o", "--out", "--limit"}
_FLAG = {"-v", "--show-sql"}
_TOKEN = re.compile(r"\S+")


def _split_line(line: str) -> tuple[str, str]:
    """``%sql [options] SQL``: the leading options, and the SQL after them."""
    position, expect_value = 0, False
    for match in _TOKEN.finditer(line):
        token = match.group(0)
        if expect_value:
            expect_value = False
        elif token in _OPTION_WITH_VALUE:
            expect_value = True
        elif token in _FLAG or token.startswith("--limit=") or token.startswith("--out="):
            pass
        else:
            break
        position = match.end()
    return line[:position], line[position:]


@magics_class
class SqlMagics(Magics):
    """``%%sql`` / ``%sql``: SQL in, DataFrame out."""

    @_magic_arguments()
    @_argument("-o", "--out", metavar="NAME", help="also store the DataFrame in this variable")
    @_argument(
        "--limit",
        type=int,
        default=DEFAULT_LIMIT,
        help=f"show at most N rows (default {DEFAULT_LIMIT}; 0 for all)",
    )
    @_argument(
        "-v",
        "--show-sql",
        action="store_true",
        help="print the SQL, the bound parameter names and the elapsed time",
    )
    @line_cell_magic
    def sql(self, line: str, cell: str | None = None) -> pd.DataFrame | None:
        """Run SQL; ``:name`` binds the notebook variable ``name`` as a parameter."""
        if cell is None:
            options, statement = _split_line(line)
        else:
            options, statement = line, cell
        args = _parse_argstring(self.sql, options)
        if args.limit < 0:
            raise UsageError("--limit must be 0 (no cap) or a positive number of rows")
        if args.out is not None and not args.out.isidentifier():
            raise UsageError(f"-o needs a variable name, not {args.out!r}")
        statement = statement.strip()
        if not statement:
            raise UsageError("no SQL to run: write it after %sql, or in the %%sql cell")
        scan = find_placeholders(statement)
        params = self._params(scan.names)
        started = time.perf_counter()
        try:
            frame, note = run(_execute(scan, params, args.limit))
        except errors.ToolkitError as exc:
            raise UsageError(str(exc)) from None
        except SQLAlchemyError as exc:  # not a server error, e.g. a bad bind value
            raise UsageError(f"{type(exc).__name__}: {str(exc).splitlines()[0]}") from None
        elapsed = time.perf_counter() - started
        if args.show_sql:
            bound = ", ".join(f":{name}" for name in scan.names) or "none"
            print(f"{statement}\n-- parameters: {bound}; {elapsed * 1000:.0f} ms")
        if note:
            print(note)
        if frame is not None and args.out is not None:
            self._namespace()[args.out] = frame
        return frame

    def _namespace(self) -> dict[str, Any]:
        if self.shell is None:
            raise UsageError("%sql needs IPython: load it with %load_ext toolkit")
        namespace: dict[str, Any] = self.shell.user_ns
        return namespace

    def _params(self, names: tuple[str, ...]) -> dict[str, Any]:
        namespace: Mapping[str, Any] = self._namespace()
        params: dict[str, Any] = {}
        for name in names:
            if name not in namespace:
                raise UsageError(f"no variable named {name!r} in the notebook for :{name}")
            params[name] = namespace[name]
        return params


async def _execute(
    scan: Placeholders, params: dict[str, Any], limit: int
) -> tuple[pd.DataFrame | None, str | None]:
    """Run one statement on its own connection: (frame or None, a note to print)."""
    import toolkit as tk

    if _is_query(scan):
        if not limit:
            return await tk.df(scan.sql, params or None), None
        capped = f"SELECT * FROM (\n{scan.sql}\n) AS q LIMIT {limit + 1}"
        frame = await tk.df(capped, params or None)
        if len(frame) > limit:
            note = f"showing the first {limit} rows (--limit 0 for all)"
            return frame.iloc[:limit], note
        return frame, None
    return await _run_statement(scan.sql, params, limit)


async def _run_statement(
    sql: str, params: dict[str, Any], limit: int
) -> tuple[pd.DataFrame | None, str | None]:
    """INSERT/UPDATE/DDL...: in a session of its own, committed; rows if it returns any."""
    import toolkit as tk

    with errors.translated():
        async with tk.session() as s:
            result = await s.execute(statement(sql, params or None))
            if result.returns_rows:
                rows = result.fetchall() if not limit else result.fetchmany(limit + 1)
                frame = exact_frame(rows, list(result.keys()))
                if limit and len(frame) > limit:
                    note = f"showing the first {limit} rows (--limit 0 for all)"
                    return frame.iloc[:limit], note
                return frame, None
            count = result.rowcount
    if count is not None and count >= 0:
        return None, f"{count} row{'' if count == 1 else 's'} affected"
    return None, "done"


# Extension entry points --------------------------------------------------------------


def load_ipython_extension(ip: Any) -> None:
    """``%load_ext toolkit``: the magics, HTML for model lists, the MissingGreenlet note."""
    ip.register_magics(SqlMagics)
    register(ip)


def unload_ipython_extension(ip: Any) -> None:
    """``%unload_ext toolkit``: remove what ``load_ipython_extension`` added."""
    unregister(ip)
    magics = ip.magics_manager.magics
    for kind in ("line", "cell"):
        if "sql" in magics[kind]:
            del magics[kind]["sql"]
