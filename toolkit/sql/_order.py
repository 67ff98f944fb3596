"""A statement's top-level ORDER BY, and whether a LIMIT picks its rows, read from its text.

A parallel read returns rows in the query's order only when its split can keep that
order, so it must know the order asked for - and the plan cannot tell (an index scan
gives ordered rows with no Sort node). The scan skips literals, quoted identifiers and
comments as PostgreSQL reads them, and anything in parentheses (a window's or an
aggregate's ORDER BY, a subquery's).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from toolkit.sql._placeholders import OPENERS, skipped_end

__all__ = ["OrderKey", "limits", "order_keys"]

_WORD = re.compile(r"[^\W\d]\w*|\d+", re.UNICODE)
_ENDS_ORDER_BY = frozenset({"limit", "offset", "fetch", "for"})


@dataclass(frozen=True)
class OrderKey:
    """One ORDER BY item: its expression's text, direction, and where NULLs go."""

    expression: str
    descending: bool
    nulls_first: bool

    def names(self, column: str) -> bool:
        """Whether the expression is ``column`` (a name, maybe qualified, or quoted)."""
        last = _last_name(self.expression)
        return last is not None and last == column


def order_keys(sql: str) -> tuple[OrderKey, ...]:
    """The items of ``sql``'s own ORDER BY (none: empty), in order."""
    tokens = _top_level_tokens(sql)
    start = None
    for i in range(len(tokens) - 1):
        if tokens[i][0] == "order" and tokens[i + 1][0] == "by":
            start = i + 2  # the last one at the top level is the statement's
    if start is None:
        return ()
    end = next(
        (tokens[i][1] for i in range(start, len(tokens)) if tokens[i][0] in _ENDS_ORDER_BY),
        len(sql),
    )
    body = sql[tokens[start - 1][2] : end]  # from the end of BY
    return tuple(_key(item) for item in _split_commas(body) if item.strip())


def limits(sql: str) -> bool:
    """Whether ``sql``'s own LIMIT, OFFSET or FETCH picks which rows it returns (run twice,
    it may pick others, unless an ORDER BY of unique keys decides)."""
    return any(word in ("limit", "offset", "fetch") for word, _, _ in _top_level_tokens(sql))


def _key(item: str) -> OrderKey:
    words = [w.lower() for w in _WORD.findall(_without_literals(item))]
    descending = "desc" in words[-3:]
    # PostgreSQL's default: NULLs sort as the largest values
    nulls_first = words[-1] == "first" if "nulls" in words[-2:] else descending
    expression = re.sub(
        r"\s+(asc|desc)?\s*(nulls\s+(first|last))?\s*$", "", item.strip(), flags=re.IGNORECASE
    )
    return OrderKey(expression.strip(), descending, nulls_first)


def _last_name(expression: str) -> str | None:
    """``t.col`` -> ``col``; ``"Col"`` -> ``Col``; anything else (an expression) -> None."""
    part = r'(?:"(?:[^"]|"")+"|[^\W\d][\w$]*)'
    match = re.fullmatch(rf"(?:{part}\s*\.\s*)*({part})", expression.strip(), re.UNICODE)
    if match is None:
        return None
    name = match.group(1)
    return name[1:-1].replace('""', '"') if name.startswith('"') else name.lower()


def _top_level_tokens(sql: str) -> list[tuple[str, int, int]]:
    """(lowercased word, start, end) of each word outside parentheses and literals."""
    tokens: list[tuple[str, int, int]] = []
    depth, i, n = 0, 0, len(sql)
    while i < n:
        c = sql[i]
        skip = skipped_end(sql, i) if c in OPENERS else None
        if skip is not None:
            i = skip[0]
        elif c == "(":
            depth, i = depth + 1, i + 1
        elif c == ")":
            depth, i = max(depth - 1, 0), i + 1
        elif c.isalnum() or c == "_":
            word = _WORD.match(sql, i)
            end = word.end() if word is not None else i + 1
            if depth == 0:
                tokens.append((sql[i:end].lower(), i, end))
            i = end
        else:
            i += 1
    return tokens


def _split_commas(body: str) -> list[str]:
    """``body`` split at the commas outside parentheses and literals."""
    items, depth, start, i = [], 0, 0, 0
    while i < len(body):
        c = body[i]
        skip = skipped_end(body, i) if c in OPENERS else None
        if skip is not None:
            i = skip[0]
            continue
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "," and depth == 0:
            items.append(body[start:i])
            start = i + 1
        i += 1
    items.append(body[start:])
    return items


def _without_literals(item: str) -> str:
    return re.sub(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"", " ", item)
