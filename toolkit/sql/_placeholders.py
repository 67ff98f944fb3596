"""SQL text as ``text()`` must receive it: ``:name`` placeholders found outside literals.

SQLAlchemy's ``text()`` takes every ``:word`` for a bind parameter, even inside a quoted
string (``'10:30'``), a comment or a quoted identifier. ``find_placeholders`` scans the SQL
the way PostgreSQL reads it - quoted strings (``'...'``, ``E'...'``, ``$tag$...$tag$``),
quoted identifiers, comments and ``::`` casts are skipped - and escapes the colons it
skips (``\\:``), so they reach the server as the literal text they are. ``tk.df``, the
``%%sql`` magic and every helper that takes SQL text use it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["OPENERS", "Placeholders", "find_placeholders", "skipped_end"]

# What SQLAlchemy's text() takes for a bind parameter (sqlalchemy.sql.elements.TextClause).
_SQLALCHEMY_BIND = re.compile(r"(?<![:\w\x5c]):(\w+)(?!:)", re.UNICODE)
_WORD = re.compile(r"\w+", re.UNICODE)
_NAME = re.compile(r"[^\W\d]\w*", re.UNICODE)  # as text(): any letter or _, then \w
_DOLLAR_TAG = re.compile(r"\$([A-Za-z_\x80-\uffff][\w\x80-\uffff]*)?\$", re.UNICODE)


@dataclass(frozen=True)
class Placeholders:
    """The result of scanning a statement: its placeholder names (in order of first use),
    the SQL rewritten for SQLAlchemy's ``text()``, and the bare words outside literals."""

    names: tuple[str, ...]
    sql: str
    words: tuple[str, ...]


def find_placeholders(sql: str) -> Placeholders:
    """Find the ``:name`` placeholders of ``sql`` outside strings, comments and casts.

    The returned ``sql`` is the statement as ``text()`` must receive it, without trailing
    semicolons and comments (so it can be wrapped in a subquery): colons inside
    literals are escaped (``\\:``) so they stay literal, and a placeholder directly
    followed by a ``::`` cast gets a space (``:x ::int``), which ``text()`` needs.
    """
    names: list[str] = []
    words: list[str] = []
    out: list[str] = []
    i, n = 0, len(sql)
    significant = 0  # len(out) after the last token that is not a comment, space or ';'

    def literal(end: int) -> None:
        # Copy sql[i:end] verbatim except colons text() would read as binds.
        chunk = sql[i:end]
        out.append(_SQLALCHEMY_BIND.sub(lambda m: "\\" + m.group(0), chunk))

    while i < n:
        c = sql[i]
        nxt = sql[i + 1] if i + 1 < n else ""
        skip = skipped_end(sql, i) if c in OPENERS else None
        if skip is not None:
            end, comment = skip
            literal(end)
            i = end
            if comment:
                continue  # a comment: not significant
        elif c == ":" and nxt == ":":
            out.append("::")
            i += 2
        elif c == ":" and (i == 0 or not (_is_word(sql[i - 1]) or sql[i - 1] == "\\")):
            match = _NAME.match(sql, i + 1)
            if match is None:
                out.append(c)
                i += 1
                significant = len(out)
                continue
            name = match.group(0)
            if name not in names:
                names.append(name)
            out.append(":" + name)
            i = match.end()
            if sql.startswith("::", i):
                out.append(" ")
        elif _is_word(c):
            match = _WORD.match(sql, i)
            assert match is not None
            words.append(match.group(0).lower())
            out.append(match.group(0))
            i = match.end()
        else:
            out.append(c)
            i += 1
            if c.isspace() or c == ";":
                continue
        significant = len(out)
    return Placeholders(tuple(names), "".join(out[:significant]), tuple(words))


def _is_word(c: str) -> bool:
    return c.isalnum() or c == "_"


OPENERS = frozenset("-/eE'\"$")
"""The characters a comment, string or quoted identifier can start with."""


def skipped_end(sql: str, i: int) -> tuple[int, bool] | None:
    """Where the comment, string (``'...'``, ``E'...'``, ``$tag$...$tag$``) or quoted
    identifier starting at ``i`` ends, and whether it is a comment; None when none
    starts there (``$1`` is no string)."""
    c, n = sql[i], len(sql)
    if sql.startswith("--", i):
        end = sql.find("\n", i)
        return (n if end < 0 else end), True
    if sql.startswith("/*", i):
        return _block_comment_end(sql, i), True
    after_word = i > 0 and _is_word(sql[i - 1])
    if c in "eE" and sql.startswith("'", i + 1) and not after_word:
        return _quoted_end(sql, i + 1, "'", backslash=True), False
    if c in "'\"":
        return _quoted_end(sql, i, c, backslash=False), False
    if c == "$" and not after_word and (tag := _DOLLAR_TAG.match(sql, i)) is not None:
        close = sql.find(tag.group(0), tag.end())
        return (n if close < 0 else close + len(tag.group(0))), False
    return None


def _quoted_end(sql: str, start: int, quote: str, *, backslash: bool) -> int:
    """The index after the quote closing the string opened at ``start``."""
    i = start + 1
    while i < len(sql):
        c = sql[i]
        if backslash and c == "\\":
            i += 2
            continue
        if c == quote:
            if sql.startswith(quote, i + 1):  # '' (or "") is an escaped quote
                i += 2
                continue
            return i + 1
        i += 1
    return len(sql)


def _block_comment_end(sql: str, start: int) -> int:
    """PostgreSQL block comments nest."""
    depth, i = 0, start
    while i < len(sql):
        if sql.startswith("/*", i):
            depth += 1
            i += 2
        elif sql.startswith("*/", i):
            depth -= 1
            i += 2
            if depth == 0:
                return i
        else:
            i += 1
    return len(sql)
