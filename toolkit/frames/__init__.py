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

Both paths build the same Arrow columns, so a query gives the same dtypes however many
rows it returns. Parameters are always bound: the row path sends them to the server as
bind values; COPY cannot take bind values, so asyncpg has the server quote them
(``quote_literal`` of the encoded value) - user values are never formatted into SQL by
Python.

The modules, one job each:

* ``_types`` - PostgreSQL type -> Arrow type -> pandas dtype (``Column``);
* ``_columns`` - Arrow columns from driver values, COPY text and sent timestamps;
* ``_assemble`` - Arrow columns -> a DataFrame without needless copies;
* ``_estimate`` - which path: the planner's estimate against ``COPY_THRESHOLD``;
* ``_copy_out`` - the COPY path, fed by the byte pipe in ``_feed``;
* ``_read`` - ``df`` and ``stream_df``, and the row path;
* ``_split`` / ``_parallel`` - a query cut into parts (block ranges, or ranges of a
  column), read over connections sharing one snapshot (``parallel=``);
* ``_values_in`` / ``_copy_in`` - each value's text for COPY FROM, checked against the
  target column, and ``copy_frame``, the one DataFrame writer (``to_table`` and
  ``bulk_insert(DataFrame)``), which also takes Arrow input;
* ``_arrow_in`` - a Parquet file or directory, a ``RecordBatchReader`` or a ``Table``,
  opened as a stream of batches for the writer (memory bounded by ``BATCH_ROWS``);
* ``_write`` - ``to_table``; ``_convert`` - ``to_dataframe``, ``exact_frame``;
* ``_parquet`` - ``to_parquet``, a result larger than memory streamed into a file;
* ``_html`` - the one HTML table of pages and model lists.
"""

from toolkit.frames._arrow_in import BATCH_ROWS, ArrowSource
from toolkit.frames._convert import exact_frame, to_dataframe
from toolkit.frames._copy_in import copy_arrow, copy_frame, located, target_types
from toolkit.frames._estimate import COPY_THRESHOLD
from toolkit.frames._html import HTML_ROWS, html_table
from toolkit.frames._parquet import to_parquet
from toolkit.frames._read import df, stream_df
from toolkit.frames._types import DtypeBackend
from toolkit.frames._values_in import Target, arrow_for_copy
from toolkit.frames._write import to_table

__all__ = [
    "BATCH_ROWS",
    "COPY_THRESHOLD",
    "HTML_ROWS",
    "ArrowSource",
    "DtypeBackend",
    "Target",
    "arrow_for_copy",
    "copy_arrow",
    "copy_frame",
    "df",
    "exact_frame",
    "html_table",
    "located",
    "stream_df",
    "target_types",
    "to_dataframe",
    "to_parquet",
    "to_table",
]
