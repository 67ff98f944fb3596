"""Rows as the statements need them: records or per-column arrays, with the columns'
Python-side defaults filled in, JSON encoded for json columns, duplicate keys refused,
and the ``unnest`` SQL that turns the arrays back into rows on the server."""

from __future__ import annotations

import datetime as dt
import json
import operator
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from sqlalchemy import Column, Table
from sqlalchemy.sql import sqltypes

from toolkit import errors
from toolkit.bulk._target import Rows, known_columns
from toolkit.sql import (
    dialect,
    quote,
)

__all__ = [
    "arrays_of",
    "as_text_if_infinite",
    "column_arrays",
    "object_frame",
    "quote_column",
    "records_of",
    "refuse_duplicates",
    "unnest_sql",
    "with_frame_defaults",
]


def with_frame_defaults(table: Table | None, frame: pd.DataFrame) -> pd.DataFrame:
    """A shallow copy of ``frame`` with str column names, checked against ``table``, and
    the omitted columns' Python-side defaults added."""
    copy = frame.copy(deep=False)
    copy.columns = [str(c) for c in frame.columns]
    if table is not None:
        known_columns(table, list(copy.columns))
        for column in _python_defaults(table, list(copy.columns)):
            values = _default_values(column, len(copy))
            copy[column.name] = pd.Series(values, index=copy.index, dtype=object)
    return copy


def as_text_if_infinite(table: Table | None, rows: Any, columns: Sequence[str] | None) -> Any:
    """``rows`` (mappings or tuples) as a DataFrame of object columns - written as text, on
    the DataFrame path - when a date among them is one asyncpg's binary encoders send as
    -infinity or infinity (0001-01-01, 9999-12-31, ``datetime.min``/``max``: a common
    "open-ended" sentinel would come back infinite); else ``rows`` unchanged."""
    if isinstance(rows, pd.DataFrame) or not rows:
        return rows
    mapped = isinstance(rows[0], Mapping)
    if not mapped and columns is None:
        return rows  # records_of says the columns are needed
    names = list(rows[0]) if mapped else list(columns or [])
    first = [rows[0][n] for n in names] if mapped else list(rows[0])
    if len(first) != len(names):
        return rows  # records_of reports the mismatch

    def values(i: int) -> list[Any]:
        return [row.get(names[i]) for row in rows] if mapped else [row[i] for row in rows]

    kinds: Sequence[Column[Any]] = list(table.columns) if table is not None else []
    typed = {c.name for c in kinds if isinstance(c.type, sqltypes.Date | sqltypes.DateTime)}
    for i, name in enumerate(names):
        dated = isinstance(first[i], dt.date) or name in typed
        if dated and _sends_infinity(values(i)):
            return object_frame(rows, columns)
    return rows


def object_frame(rows: Any, columns: Sequence[str] | None) -> pd.DataFrame:
    """Mappings or tuples as a DataFrame of object columns: each value stays the Python
    object it is, for the text path's encoders (``frames.values_in``)."""
    if isinstance(rows[0], Mapping):
        names = _same_columns(rows)
        data = {n: [row[n] for row in rows] for n in names}
    else:
        if columns is None:
            raise errors.ToolkitError("rows given as tuples need columns=[...] to name them")
        names = list(columns)
        data = {n: [row[i] for row in rows] for i, n in enumerate(names)}
    return pd.DataFrame({n: pd.Series(v, dtype=object) for n, v in data.items()})


def _sends_infinity(values: Sequence[Any]) -> bool:
    present = [v for v in values if v is not None]
    if not present:
        return False
    try:  # the sentinels are their type's extremes: min and max find them in C
        return _infinite(min(present)) or _infinite(max(present))
    except TypeError:  # several kinds (dates and datetimes, aware and naive)
        return any(_infinite(v) for v in present)


def _infinite(value: Any) -> bool:
    if isinstance(value, dt.datetime):
        offset = value.utcoffset()
        if offset is not None:  # asyncpg compares the UTC instant
            try:
                value = value.replace(tzinfo=None) - offset
            except OverflowError:
                return True  # past datetime's range in UTC: only text can carry it
        return value in (dt.datetime.min, dt.datetime.max)
    return isinstance(value, dt.date) and value in (dt.date.min, dt.date.max)


def records_of(
    table: Table | None,
    rows: Rows | Sequence[Sequence[Any]],
    columns: Sequence[str] | None,
    *,
    defaults: bool = True,
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Column names and one tuple per row, with Python-side defaults filled in."""
    if isinstance(rows, pd.DataFrame):
        frame = rows.astype(object).where(rows.notna(), None)
        names = [str(c) for c in frame.columns]
        records = list(frame.itertuples(index=False, name=None))
    elif not rows:
        return list(columns or []), []
    elif isinstance(rows[0], Mapping):
        mapped: Sequence[Mapping[str, Any]] = rows  # type: ignore[assignment]
        names = _same_columns(mapped)
        getter = operator.itemgetter(*names)
        records = (
            [getter(row) for row in mapped]
            if len(names) > 1
            else [(getter(row),) for row in mapped]
        )
    else:
        if columns is None:
            raise errors.ToolkitError("rows given as tuples need columns=[...] to name them")
        names = list(columns)
        records = [tuple(r) for r in rows]
    if table is not None:
        records = _json_encoded(table, names, records)
        known_columns(table, names)
        if defaults:
            names, records = _with_defaults(table, names, records)
    return names, records


def _json_encoded(
    table: Table, names: list[str], records: list[tuple[Any, ...]]
) -> list[tuple[Any, ...]]:
    """Serialise values of JSON columns (asyncpg sends json/jsonb as text)."""
    positions = _json_positions(table, names)
    if not positions:
        return records
    encoded = []
    for record in records:
        values = list(record)
        for i in positions:
            values[i] = _json_text(values[i])
        encoded.append(tuple(values))
    return encoded


def _json_positions(table: Table, names: Sequence[str]) -> list[int]:
    return [
        i
        for i, n in enumerate(names)
        if n in table.columns and isinstance(table.columns[n].type, sqltypes.JSON)
    ]


def _json_text(value: Any) -> Any:
    """A value's JSON text; a ``str`` is a JSON string (as ``tk.df`` reads it back), not
    JSON text: ``"42"`` stays the string "42" (``json.loads`` text you already have)."""
    return None if value is None else json.dumps(value)


def _python_defaults(table: Table, names: Sequence[str]) -> list[Column[Any]]:
    """Columns left out of ``names`` that have a Python-side default (``default=``);
    server defaults need nothing - PostgreSQL applies them to omitted columns."""
    return [
        c
        for c in table.columns
        if c.name not in names
        and not c.primary_key
        and c.default is not None
        and (getattr(c.default, "is_scalar", False) or getattr(c.default, "is_callable", False))
    ]


def _with_defaults(
    table: Table, names: list[str], records: list[tuple[Any, ...]]
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Add the omitted columns that have a Python-side default, with their values."""
    extra = _python_defaults(table, names)
    if not extra or not records:
        return [*names, *(c.name for c in extra)], records
    added = zip(*(_default_values(c, len(records)) for c in extra), strict=True)
    filled = [(*r, *more) for r, more in zip(records, added, strict=True)]
    return [*names, *(c.name for c in extra)], filled


def _default_values(column: Column[Any], count: int) -> list[Any]:
    """``count`` values of a column's Python-side default (a callable is called per row)."""
    default: Any = column.default
    if default.is_callable:
        return [default.arg(None) for _ in range(count)]
    return [default.arg] * count


def refuse_duplicates(arrays: list[list[Any]], positions: list[int], what: str) -> None:
    keys: list[Any] = (
        arrays[positions[0]]
        if len(positions) == 1
        else list(zip(*(arrays[p] for p in positions), strict=True))
    )
    if len(set(keys)) == len(keys):
        return  # the common case: one pass, no counting
    repeated = [k for k, n in Counter(keys).items() if n > 1]
    raise errors.ToolkitError(
        f"{what}: {len(repeated)} key(s) appear more than once in the batch, e.g. "
        f"{repeated[:5]} - de-duplicate the rows first (nothing was changed)"
    )


def _same_columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The column names of mapping rows, which must all have the same keys."""
    names = list(rows[0])
    first = rows[0].keys()
    for row in rows:
        if row.keys() != first:
            raise errors.ToolkitError(
                f"every row needs the same columns: {sorted(row)} differs from {names}"
            )
    return names


def column_arrays(table: Table, rows: Rows, *, defaults: bool) -> tuple[list[str], list[list[Any]]]:
    """One list per column, straight from the dicts or the DataFrame's columns: what the
    array statements send, without building a tuple per row on the way."""
    if isinstance(rows, pd.DataFrame):
        names = [str(c) for c in rows.columns]
        arrays = [rows[c].astype(object).where(rows[c].notna(), None).tolist() for c in rows]
    elif not rows:
        raise errors.ToolkitError("no rows given")
    else:
        names = _same_columns(rows)
        arrays = [[row[n] for row in rows] for n in names]
    known_columns(table, names)
    for i in _json_positions(table, names):
        arrays[i] = [_json_text(v) for v in arrays[i]]
    if defaults:
        count = len(arrays[0]) if arrays else 0
        for column in _python_defaults(table, names):
            names.append(column.name)
            arrays.append(_default_values(column, count))
    return names, arrays


def quote_column(name: str) -> str:
    return quote(name, "column name")


def unnest_sql(table: Table | None, names: Sequence[str]) -> str:
    """``unnest($1::type[], ...) AS v(a, b)``: one array parameter per column."""
    if table is None:
        raise errors.ToolkitError("this operation needs a mapped class or a Table")
    arrays = ", ".join(f"${i}::{_unmodified(table, n)}[]" for i, n in enumerate(names, 1))
    return f"unnest({arrays}) AS v({', '.join(quote_column(n) for n in names)})"


def _unmodified(table: Table, name: str) -> str:
    """The column's type without its length: an explicit cast to ``varchar(5)[]`` would
    truncate a longer value silently, where the INSERT's own assignment refuses it."""
    kind = table.columns[name].type
    if isinstance(kind, sqltypes.NullType):
        raise errors.ToolkitError(
            f"column {name!r} of {table.name} has no type in the Table given, and its array "
            f"parameter needs one - declare it (Column({name!r}, Integer)) or reflect the table"
        )
    if isinstance(kind, sqltypes.CHAR | sqltypes.NCHAR):
        return "BPCHAR"  # CHAR alone is char(1)
    if isinstance(kind, sqltypes.String) and kind.length is not None:
        return "VARCHAR"
    return str(kind.compile(dialect=dialect()))


def arrays_of(records: Sequence[tuple[Any, ...]], width: int) -> list[list[Any]]:
    return (
        [list(column) for column in zip(*records, strict=True)]
        if records
        else [[] for _ in range(width)]
    )
