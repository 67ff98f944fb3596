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

__all__ = ["Placeholders", "block_comment_end", "find_placeholders", "quoted_end"]

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
        if c == "-" and nxt == "-":
            end = sql.find("\n", i)
            end = n if end < 0 else end
            literal(end)
            i = end
            continue  # a comment: not significant
        elif c == "/" and nxt == "*":
            end = block_comment_end(sql, i)
            literal(end)
            i = end
            continue
        elif c in "eE" and nxt == "'" and (i == 0 or not _is_word(sql[i - 1])):
            end = quoted_end(sql, i + 1, "'", backslash=True)
            literal(end)
            i = end
        elif c in "'\"":
            end = quoted_end(sql, i, c, backslash=False)
            literal(end)
            i = end
        elif c == "$" and (i == 0 or not _is_word(sql[i - 1])):
            tag = _DOLLAR_TAG.match(sql, i)
            if tag is None:  # $1 and the like: not a string
                out.append(c)
                i += 1
                significant = len(out)
                continue
            close = sql.find(tag.group(0), tag.end())
            end = n if close < 0 else close + len(tag.group(0))
            literal(end)
            i = end
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


def quoted_end(sql: str, start: int, quote: str, *, backslash: bool) -> int:
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


def block_comment_end(sql: str, start: int) -> int:
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
