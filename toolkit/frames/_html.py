"""The one HTML table of the toolkit: pages (``Page``, ``KeysetPage``) and model lists
(``%load_ext toolkit``) render through ``html_table``, with one row limit, ``HTML_ROWS``."""

from __future__ import annotations

from html import escape
from typing import Any

import pandas as pd

__all__ = ["HTML_ROWS", "html_table"]

HTML_ROWS = 20
"""Rows an HTML table shows; the note under it says how many more there are."""


def html_table(frame: pd.DataFrame, note: str) -> str:
    """``frame`` as an escaped HTML table (NULLs as empty cells), ``note`` under it."""
    head = "".join(f"<th>{escape(str(name))}</th>" for name in frame.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_cell(value)}</td>" for value in row) + "</tr>"
        for row in frame.itertuples(index=False, name=None)
    )
    return (
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        f"<p><small>{escape(note)}</small></p>"
    )


def _cell(value: Any) -> str:
    """An escaped table cell; NULL (None, NaN, NA, NaT in the frame) shows as empty."""
    missing = value is None or value is pd.NA or value is pd.NaT
    if missing or (isinstance(value, float) and value != value):
        return ""
    return escape(str(value))
