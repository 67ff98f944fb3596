"""Queries to pandas DataFrames, and DataFrames to tables, at full speed.

How ``tk.df`` chooses its path (the rule is the same for every query):

* It asks PostgreSQL's planner for the row estimate (``EXPLAIN``, cached per statement
  text). Below ``COPY_THRESHOLD`` estimated rows - or when a column has a type COPY's
  text cannot carry exactly, or the statement writes - rows come over the binary
  protocol (one prepared statement; a 1-row query costs about a plain execute).
* From ``COPY_THRESHOLD`` rows up, ``COPY (query) TO STDOUT`` in PostgreSQL's text
  format streams through the asyncpg connection the session already holds, and Arrow's
  C++ CSV reader (tab-separated, unquoted) parses it in a worker thread *while* it
  arrives.

Both paths build the same Arrow columns (``toolkit.pgtypes``), so a query gives the same
dtypes however many rows it returns. Parameters are always bound: the row path sends them
to the server as bind values; COPY cannot take bind values, so asyncpg has the server
quote them (``quote_literal`` of the encoded value) - user values are never formatted into
SQL by Python.

The package: ``statements`` (SQL and bind values), ``copy_out`` (the COPY path, with its
byte pipe in ``feed``), ``copy_in`` (COPY FROM STDIN of a DataFrame, for ``to_table`` and
the bulk helpers, with each value's text from ``values_in``) and ``api`` (the public
functions and the row path). ``_via_copy`` and ``_ESTIMATE_TTL`` are looked up on
this package at call time, so patching them here (as the tests do) takes effect.
"""

from __future__ import annotations

# The public names, and (as ``X as X`` re-exports) the private ones that other toolkit
# modules and the tests use.
from toolkit.frames._html import HTML_ROWS as HTML_ROWS
from toolkit.frames._html import html_table as html_table
from toolkit.frames.api import df, stream_df, to_dataframe, to_table
from toolkit.frames.api import exact_frame as exact_frame
from toolkit.frames.copy_in import copy_arrow as copy_arrow
from toolkit.frames.copy_out import _ESTIMATE_TTL as _ESTIMATE_TTL
from toolkit.frames.copy_out import COPY_THRESHOLD
from toolkit.frames.copy_out import _via_copy as _via_copy
from toolkit.frames.values_in import arrow_for_copy as arrow_for_copy

__all__ = ["COPY_THRESHOLD", "df", "stream_df", "to_dataframe", "to_table"]
