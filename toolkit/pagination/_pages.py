"""The pages pagination returns: ``Page`` (offset, with a total) and ``KeysetPage`` (with
a cursor to the next one), on a shared base that holds the items, iterates over them,
turns them into a DataFrame and shows them as an HTML table in a notebook.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from sqlalchemy.engine import Row

from toolkit.frames import HTML_ROWS, exact_frame, html_table, to_dataframe


@dataclass(frozen=True, repr=False)
class _Items:
    """What both page kinds share: the items, iteration, ``to_df()`` and an HTML table."""

    items: list[Any]
    columns: tuple[str, ...] = field(default=(), kw_only=True, compare=False)
    """Column names of the items; they give an empty page's frame its columns."""

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.items)

    def to_df(self) -> pd.DataFrame:
        """The page's items as a DataFrame (an empty page keeps the column names).

        Rows keep their exact values: each column's dtype is inferred from them by
        ``pd.array`` (``Int64`` with ``<NA>``, ``string``...), where building the frame
        from records made an int column holding NULL floats (an int8 lost digits) and
        NULL text NaN.
        """
        if not self.items:
            return pd.DataFrame(columns=list(self.columns))
        if not isinstance(self.items[0], Row):
            return to_dataframe(self.items)
        return exact_frame(self.items, list(self.items[0]._fields))

    def _footer(self) -> str:
        raise NotImplementedError

    def _repr_html_(self) -> str:
        frame = to_dataframe(self.items[:HTML_ROWS]) if self.items else self.to_df()
        note = self._footer()
        if len(self.items) > HTML_ROWS:
            note = f"first {HTML_ROWS} of {len(self.items)} rows shown · {note}"
        return html_table(frame, note)


@dataclass(frozen=True, repr=False)
class Page(_Items):
    """One page of an offset pagination: ``items`` and the ``total`` across all pages."""

    total: int
    page: int
    size: int

    @property
    def pages(self) -> int:
        """The number of pages (0 when there are no rows)."""
        return -(-self.total // self.size)

    @property
    def has_next(self) -> bool:
        return self.page < self.pages

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    def __repr__(self) -> str:
        return (
            f"Page(page={self.page}/{self.pages}, size={self.size}, "
            f"total={self.total}, items={len(self.items)})"
        )

    def _footer(self) -> str:
        return f"page {self.page} of {self.pages} · {self.total} rows"


@dataclass(frozen=True, repr=False)
class KeysetPage(_Items):
    """One page of a keyset pagination; pass ``next_cursor`` as ``after=`` for the next."""

    size: int
    next_cursor: str | None
    """An opaque cursor after this page's last row; None on the last page."""

    @property
    def has_next(self) -> bool:
        return self.next_cursor is not None

    def __repr__(self) -> str:
        return f"KeysetPage(size={self.size}, items={len(self.items)}, has_next={self.has_next})"

    def _footer(self) -> str:
        more = "more after this page" if self.has_next else "last page"
        return f"{len(self.items)} rows · {more}"
