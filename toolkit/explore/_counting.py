"""Counting statements: ``with count_queries() as q:`` records the SQL that SQLAlchemy
sends while the block runs (an N+1 made visible), through one engine listener shared by
all open blocks and a ``ContextVar`` that keeps concurrent tasks apart.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine


@dataclass(eq=False)
class QueryCount:
    """The SQL statements SQLAlchemy sent while a ``count_queries()`` block ran."""

    statements: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.statements)

    def __repr__(self) -> str:
        shown = "".join(
            f"\n  {i}. {' '.join(sql.split())[:100]}" for i, sql in enumerate(self.statements, 1)
        )
        plural = "" if self.count == 1 else "s"
        return f"QueryCount({self.count} statement{plural}){shown}"


_counting: contextvars.ContextVar[tuple[QueryCount, ...]] = contextvars.ContextVar(
    "toolkit_count_queries", default=()
)
_listening = 0
_listening_lock = threading.Lock()


def _record(
    conn: Connection,
    cursor: Any,
    statement: str,
    parameters: Any,
    context: Any,
    executemany: bool,
) -> None:
    for counter in _counting.get():
        counter.statements.append(statement)


@contextmanager
def count_queries() -> Iterator[QueryCount]:
    """Count the statements SQLAlchemy sends, on any engine, while the block runs.

    ``with tk.count_queries() as q: await ...`` then ``q.count`` and ``q.statements``: a
    loop that lazily loads a relationship per object shows up as 1 + N statements, the
    same loop after ``selectinload()`` as 2. Only statements of the current task (and of
    tasks it starts inside the block) are counted: a ``ContextVar`` keeps concurrent
    notebooks and tests apart. Statements ``tk.df`` and the bulk helpers send straight to
    asyncpg (COPY, prepared statements) bypass SQLAlchemy and are not counted.
    """
    global _listening
    counter = QueryCount()
    token = _counting.set((*_counting.get(), counter))
    with _listening_lock:
        if _listening == 0:
            event.listen(Engine, "before_cursor_execute", _record)
        _listening += 1
    try:
        yield counter
    finally:
        with _listening_lock:
            _listening -= 1
            if _listening == 0:
                event.remove(Engine, "before_cursor_execute", _record)
        try:
            _counting.reset(token)
        except ValueError:  # exited in another context than entered: just drop this one
            _counting.set(tuple(c for c in _counting.get() if c is not counter))
