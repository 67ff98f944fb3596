"""Statements as ``tk.df`` sends them: SQL text or a Select -> ``$n`` SQL and bind values.

Also which statements EXPLAIN and COPY accept, and the cached prepare.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, cast

from sqlalchemy import bindparam, text
from sqlalchemy.sql import ClauseElement, Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.type_api import _resolve_value_to_type

from toolkit import errors
from toolkit.sql._dialect import dialect
from toolkit.sql._placeholders import find_placeholders

__all__ = [
    "Query",
    "command_count",
    "compile_statement",
    "plannable",
    "prepare",
    "reads_only",
    "sql_and_args",
    "sql_text",
    "statement",
]

Query = str | Executable


def statement(query: Query, params: Mapping[str, Any] | None) -> Executable:
    """``query`` as an executable: SQL text becomes ``text()`` with its parameters bound."""
    if not isinstance(query, str):
        return query
    clause = text(sql_text(query, params))
    if params:
        # Typed binds: asyncpg then gets `$1::INTEGER`, not an untyped text parameter
        # ("select :n" with n=1 would otherwise fail with "expected str, got int").
        clause = clause.bindparams(*(bindparam(k, v) for k, v in params.items()))
    return clause


def sql_text(sql: str, params: Mapping[str, Any] | None) -> str:
    """SQL text as ``text()`` must receive it, checked against ``params``.

    Colons inside string literals, quoted identifiers and comments stay literal text
    (``'10:30'``, ``':name'``), trailing semicolons and comments are dropped (the text may
    be wrapped in ``COPY (...)`` or a subquery), and a ``:name`` placeholder without a
    value in ``params`` is refused with how to escape it. A NUL character is refused
    before anything is sent: the protocol would end the statement there.
    """
    if "\x00" in sql:
        raise errors.InvalidCharacter(
            "the SQL text contains a NUL character (\\x00), which PostgreSQL cannot take "
            "in a statement - remove it; to send a value, bind it as a :name parameter "
            "(text columns cannot hold NUL either: store such data as bytea)",
            sqlstate="22021",
        )
    scan = _scan(sql)
    missing = [name for name in scan.names if not params or name not in params]
    if missing:
        shown = ", ".join(f":{name}" for name in missing)
        first = missing[0]
        raise errors.ToolkitError(
            f"no value for {shown} in params - pass params={{{first!r}: ...}}, or write "
            f"\\:{first} if the colon is literal text (inside 'quoted strings' it always is)"
        )
    return scan.sql


_scan = functools.lru_cache(maxsize=512)(find_placeholders)
"""Scans are cached by SQL text: a statement run again is not tokenized again."""


def sql_and_args(query: Query, params: Mapping[str, Any] | None) -> tuple[str, list[Any]]:
    """``query`` as asyncpg takes it: SQL with ``$n`` placeholders, and the bind values.

    SQL text is checked and compiled once per text and parameter types (the types decide
    the ``$1::INTEGER`` casts SQLAlchemy renders); a repeat only looks the plan up. In a
    small query, parsing and compiling again cost about a tenth of the whole call.
    """
    if not isinstance(query, str):
        return compile_statement(statement(query, params), params)
    key = _text_key(query, params)
    plan = _TEXT_PLANS.get(key) if key is not None else None
    if plan is None or key is None:
        compiled = _compiled(statement(query, params))
        args = _args(compiled, params)  # checked before it is kept
        plan = _plan_of(compiled, params)
        if plan is not None and key is not None:
            _TEXT_PLANS[key] = plan
            if len(_TEXT_PLANS) > _TEXT_PLANS_KEPT:
                _TEXT_PLANS.popitem(last=False)
        return compiled.string, args
    with contextlib.suppress(KeyError):  # another thread's call may have evicted it
        _TEXT_PLANS.move_to_end(key)
    values = params or {}
    args = [
        value if process is None else process(value)
        for value, process in zip(
            [values[name] for name in plan.names], plan.processors, strict=True
        )
    ]
    return plan.sql, args


class _TextPlan(NamedTuple):
    sql: str
    names: tuple[str, ...]
    """The parameter sent as each ``$n``."""
    processors: tuple[Callable[[Any], Any] | None, ...]


_TEXT_PLANS: OrderedDict[tuple[Any, ...], _TextPlan] = OrderedDict()
_TEXT_PLANS_KEPT = 512


def _text_key(sql: str, params: Mapping[str, Any] | None) -> tuple[Any, ...] | None:
    """SQL text and each parameter's name and SQLAlchemy type - what ``bindparam(name,
    value)`` would infer, so the key holds exactly what the compiled SQL depends on
    (``BigInteger`` past 32 bits, ``DateTime(timezone=True)`` for an aware datetime...).
    None for a type that cannot be a key."""
    if not params:
        return (sql,)
    try:
        key = (sql, *[(n, _resolve_value_to_type(v)._static_cache_key) for n, v in params.items()])
        hash(key)
    except Exception:
        return None
    return key


def _plan_of(compiled: SQLCompiler, params: Mapping[str, Any] | None) -> _TextPlan | None:
    """The plan behind a compiled text statement; None when a ``$n`` is not simply a
    parameter of ``params`` by name (an escaped bind name, say)."""
    names = tuple(compiled.positiontup or ())
    if any(params is None or name not in params for name in names):
        return None
    processors: Mapping[str, Any] = compiled._bind_processors
    return _TextPlan(compiled.string, names, tuple(processors.get(n) for n in names))


def compile_statement(
    statement: Executable, params: Mapping[str, Any] | None
) -> tuple[str, list[Any]]:
    """SQL with ``$n`` placeholders and the bind values, as SQLAlchemy would send them."""
    compiled = _compiled(statement)
    return compiled.string, _args(compiled, params)


def _compiled(statement: Executable) -> SQLCompiler:
    return cast(
        SQLCompiler,
        cast(ClauseElement, statement).compile(
            dialect=dialect(), compile_kwargs={"render_postcompile": True}
        ),
    )


def _args(compiled: SQLCompiler, params: Mapping[str, Any] | None) -> list[Any]:
    values = compiled.construct_params(dict(params) if params else None) or {}
    processors: Mapping[str, Any] = compiled._bind_processors
    args = []
    for name in compiled.positiontup or ():
        value = values[name]
        processor = processors.get(name) or processors.get(name.rsplit("_", 1)[0])
        args.append(processor(value) if processor is not None else value)
    if len(args) > MAX_PARAMETERS:
        raise errors.ToolkitError(
            f"this query has {len(args):,} bind parameters and PostgreSQL's protocol allows "
            f"{MAX_PARAMETERS:,} (a long list in `.in_(...)` sends one per value): send the "
            "list as one array instead - `column == any_(literal(values, ARRAY(Integer)))` "
            "(sqlalchemy.any_, sqlalchemy.literal, sqlalchemy.dialects.postgresql.ARRAY) - "
            "or use tk.bulk_update/upsert/bulk_delete, which do"
        )
    return args


MAX_PARAMETERS = 32_767
"""Bind parameters one statement may carry (the protocol counts them in an int16)."""


async def prepare(raw: Any, sql: str) -> Any:
    """A prepared statement from asyncpg's per-connection statement cache.

    ``Connection.prepare`` always makes a new server-side statement (a round trip);
    the cached form is what ``fetch`` uses internally, and is invalidated by asyncpg
    itself when the schema changes. Behind a transaction-mode pooler the cache is off
    (``database``): this is then the unnamed statement, which asyncpg parses again with
    each execution, so it holds on whichever server connection the execution gets.
    """
    cached_prepare = getattr(raw, "_prepare", None)
    if cached_prepare is not None:
        return await cached_prepare(sql, use_cache=True)
    return await raw.prepare(sql)


_PLANNABLE = ("select", "with", "values", "table")
_LEADING_NOISE = re.compile(r"^(?:\s+|\(|--[^\n]*\n?|/\*.*?\*/)*", re.DOTALL)


@functools.lru_cache(maxsize=512)
def reads_only(sql: str) -> bool:
    """True for a query that cannot write, judged from its text: one ``plannable`` has
    no INSERT, UPDATE, DELETE or MERGE (a data-modifying WITH) and no SELECT INTO
    outside its literals and comments. ``FOR UPDATE`` only locks. A function the query
    calls is not looked into (a SELECT of a function that writes counts as a read).

    Only such a query is run again when its connection is lost (``tk.df``).
    """
    if not plannable(sql):
        return False
    words = find_placeholders(sql).words
    for previous, word in zip(("", *words), words, strict=False):
        if word in _WRITING and not (word == "update" and previous in ("for", "key")):
            return False
    return True


_WRITING = frozenset({"insert", "update", "delete", "merge", "into"})


@functools.lru_cache(maxsize=512)
def plannable(sql: str) -> bool:
    """True for queries EXPLAIN and COPY accept (not EXPLAIN, SHOW, FETCH...): judged by
    the first keyword, as a failing EXPLAIN would abort the caller's transaction."""
    head = _LEADING_NOISE.sub("", sql, count=1)[:6].lower()
    return head.startswith(_PLANNABLE)


def command_count(status: str | None) -> int:
    """The row count of a command tag (``INSERT 0 3``, ``UPDATE 3``); 0 for a tag without
    one (``CREATE TABLE``)."""
    last = (status or "").rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0
