"""Statements as ``tk.df`` sends them: SQL text or a Select -> ``$n`` SQL and bind values.

Also which statements EXPLAIN and COPY accept, and the cached prepare.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, cast

from sqlalchemy import bindparam, text
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement, Executable
from sqlalchemy.sql.compiler import SQLCompiler

from toolkit import errors
from toolkit.pgtypes import Column

Query = str | Executable


def _statement(query: Query, params: Mapping[str, Any] | None) -> Executable:
    if not isinstance(query, str):
        return query
    statement = text(query)
    if params:
        # Typed binds: asyncpg then gets `$1::INTEGER`, not an untyped text parameter
        # ("select :n" with n=1 would otherwise fail with "expected str, got int").
        statement = statement.bindparams(*(bindparam(k, v) for k, v in params.items()))
    return statement


def _compile(statement: Executable, params: Mapping[str, Any] | None) -> tuple[str, list[Any]]:
    """SQL with ``$n`` placeholders and the bind values, as SQLAlchemy would send them."""
    dialect = _dialect()
    compiled = cast(
        SQLCompiler,
        cast(ClauseElement, statement).compile(
            dialect=dialect, compile_kwargs={"render_postcompile": True}
        ),
    )
    values = compiled.construct_params(dict(params) if params else None) or {}
    processors: Mapping[str, Any] = compiled._bind_processors
    args = []
    for name in compiled.positiontup or ():
        value = values[name]
        processor = processors.get(name) or processors.get(name.rsplit("_", 1)[0])
        args.append(processor(value) if processor is not None else value)
    return compiled.string, args


_DIALECT: list[Dialect] = []


def _dialect() -> Dialect:
    if not _DIALECT:
        from sqlalchemy.dialects.postgresql.asyncpg import dialect

        _DIALECT.append(dialect())  # type: ignore[no-untyped-call]
    return _DIALECT[0]


def _require_rows(columns: Sequence[Column]) -> None:
    if not columns:
        raise errors.ToolkitError(
            "df() needs a statement that returns rows - use a session's execute() for others"
        )


async def _prepare(raw: Any, sql: str) -> Any:
    """A prepared statement from asyncpg's per-connection statement cache.

    ``Connection.prepare`` always makes a new server-side statement (a round trip);
    the cached form is what ``fetch`` uses internally, and is invalidated by asyncpg
    itself when the schema changes.
    """
    cached_prepare = getattr(raw, "_prepare", None)
    if cached_prepare is not None:
        return await cached_prepare(sql, use_cache=True)
    return await raw.prepare(sql)


_PLANNABLE = ("select", "with", "values", "table")
_LEADING_NOISE = re.compile(r"^(?:\s+|\(|--[^\n]*\n?|/\*.*?\*/)*", re.DOTALL)


def _plannable(sql: str) -> bool:
    """True for queries EXPLAIN and COPY accept (not EXPLAIN, SHOW, FETCH...): judged by
    the first keyword, as a failing EXPLAIN would abort the caller's transaction."""
    head = _LEADING_NOISE.sub("", sql, count=1)[:6].lower()
    return head.startswith(_PLANNABLE)
