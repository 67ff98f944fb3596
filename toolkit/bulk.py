"""Bulk operations: COPY-speed inserts, update/delete/upsert by key in array statements.

The seed's ``deactivate_users`` teaches the pattern (one UPDATE, a rowcount); these are
the versions that scale:

* ``bulk_insert`` streams rows with COPY (binary, from Python rows), applying the
  columns' Python-side defaults.
* ``bulk_update`` and ``bulk_delete`` send each column as one array parameter
  (``UPDATE ... FROM unnest($1::int[], $2::text[])``): a 40,000-row batch is one
  statement of a few parameters, far from asyncpg's 32,767-parameter limit, and the
  server's work dominates.
* ``upsert``, and ``bulk_insert`` of a DataFrame, go as ``to_table`` does: each column's
  text, checked against the catalog's column types (``frames.values_in``), in one CSV
  COPY - an upsert's into a temporary table, then one ``INSERT ... SELECT ... ON
  CONFLICT``. So do ``bulk_insert``'s rows holding a value asyncpg's binary encoders
  would change (1.5 into an integer column, a float into numeric, 9999-12-31 sent as
  infinity) or cannot encode (a dict for a jsonb column it knows nothing of).

Every operation is atomic: it runs in one transaction (a savepoint inside the caller's
session), so a failing row leaves nothing changed. Duplicate keys in an update or upsert
batch are refused before anything is sent.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import operator
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pandas as pd
from asyncpg import PostgresError
from sqlalchemy import Column, Table, delete
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import ColumnElement, sqltypes

from toolkit import errors
from toolkit.database import Database, driver_connection
from toolkit.frames import Target as ColumnType
from toolkit.frames import arrow_for_copy, copy_arrow, copy_frame, located, target_types
from toolkit.runtime import in_notebook, interruptible, progress_bar
from toolkit.sql import (
    checked,
    command_count,
    compile_statement,
    dialect,
    qualified,
    quote,
    table_name,
)

__all__ = ["bulk_delete", "bulk_insert", "bulk_update", "upsert"]

Target = type[Any] | Table
Rows = Sequence[Mapping[str, Any]] | pd.DataFrame

CHUNK = 50_000
"""Rows per statement (or COPY) inside the one transaction: bounds memory, feeds the bar."""

# Public API ------------------------------------------------------------------------


@interruptible
async def bulk_insert(
    target: Target | str,
    rows: Rows | Sequence[Sequence[Any]],
    *,
    columns: Sequence[str] | None = None,
    returning: bool = False,
    session: AsyncSession | None = None,
    database: Database | None = None,
    progress: bool | None = None,
) -> int | list[Any]:
    """Insert ``rows`` with COPY; returns the row count, or the new primary keys.

    ``rows``: mappings, tuples (with ``columns``), or a DataFrame. Columns missing from
    the rows get their Python-side defaults (``default=``) here and their server defaults
    from PostgreSQL. ``returning=True`` reserves ids from the table's sequence first, so
    the keys come back in the order of the rows. A DataFrame value its column cannot hold
    exactly is refused, naming column, row and type (the README's "Bulk operations").
    """
    table = _table(target) if not isinstance(target, str) else None
    name, schema = (table.name, table.schema) if table is not None else _split_name(str(target))
    checked(name, "table name")
    if schema is not None:
        checked(schema, "schema name")
    target_sql = table_name(table) if table is not None else qualified(name, schema)
    rows = _as_text_if_infinite(table, rows, columns)
    with errors.translated():
        async with driver_connection(
            session, database, write=True, refuse_on_standby="bulk_insert"
        ) as raw:
            if not isinstance(rows, pd.DataFrame):
                try:
                    async with raw.transaction():
                        records = _records(table, rows, columns)
                        where = (name, schema, target_sql)
                        return await _copy_records(raw, table, where, records, returning, progress)
                except _TextInstead:  # rolled back; nothing was written
                    rows = _object_frame(rows, columns)
            async with raw.transaction():  # CSV text checked against the column types
                frame = _with_frame_defaults(table, rows)
                ids = await _reserve_ids(raw, table, list(frame.columns), len(frame), returning)
                if ids is not None:
                    frame[_pk(table).name] = ids
                written = await copy_frame(raw, frame, target_sql, name, schema)
                return ids if ids is not None else written


class _TextInstead(Exception):
    """Raised where asyncpg's binary encoders would change a value or cannot encode it:
    the rows go as text instead, where the value is written exactly or refused by name."""


async def _copy_records(
    raw: Any,
    table: Table | None,
    where: tuple[str, str | None, str],
    records: tuple[list[str], list[tuple[Any, ...]]],
    returning: bool,
    progress: bool | None,
) -> int | list[Any]:
    """Binary COPY of Python rows: no text per value, the fast path for rows whose values
    asyncpg encodes exactly."""
    name, schema, target_sql = where
    names, rows = records
    for column in names:  # asyncpg quotes them; too long or NUL is refused here
        checked(column, "column name")
    targets = await target_types(raw, target_sql)
    if _binary_would_change(targets, names, rows):
        raise _TextInstead
    ids = await _reserve_ids(raw, table, names, len(rows), returning)
    if ids is not None:
        names = [*names, _pk(table).name]
        rows = [(*r, i) for r, i in zip(rows, ids, strict=True)]
    bar = _bar(len(rows), progress, "bulk_insert")
    for number, chunk in enumerate(_chunks(rows)):
        try:
            await raw.copy_records_to_table(name, records=chunk, columns=names, schema_name=schema)
        except _ENCODER_ERRORS as exc:  # a value asyncpg cannot encode for its column
            raise _TextInstead from exc
        except PostgresError as exc:  # refused by the server: name its column and row
            raise located(exc, None, targets, number * CHUNK) from None
        bar.update(len(chunk))
    bar.close()
    return ids if ids is not None else len(rows)


_ENCODER_ERRORS = (TypeError, ValueError, OverflowError, AttributeError)
"""What asyncpg's binary encoders raise for a value its column's codec does not take."""


def _binary_would_change(
    targets: Mapping[str, ColumnType], names: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> bool:
    """Whether a value would be changed on its way in: asyncpg's encoders truncate a
    float or Decimal into an integer column (1.5 -> 1) and write a float's binary
    expansion into numeric (0.1 -> 0.1000000000000000055...)."""
    for i, name in enumerate(names):
        target = targets.get(name)
        if target is None or target.array:
            continue
        if target.base in ("int2", "int4", "int8"):
            exact: set[type] = {int, type(None)}
        elif target.base == "numeric":
            exact = {int, decimal.Decimal, type(None)}
        else:
            continue
        if not {type(row[i]) for row in rows} <= exact:
            return True
    return False


@interruptible
async def bulk_update(
    model: Target,
    rows: Rows,
    *,
    session: AsyncSession | None = None,
    database: Database | None = None,
    progress: bool | None = None,
) -> int:
    """Update rows by primary key; returns how many rows were updated.

    Each row holds the primary key and the columns to set (all rows the same columns).
    Rows whose key does not exist are skipped (not counted).
    """
    table = _table(model)
    names, arrays = _column_arrays(table, rows, defaults=False)
    keys = [c.name for c in table.primary_key.columns]
    missing = [k for k in keys if k not in names]
    if missing:
        raise errors.ToolkitError(f"bulk_update needs the primary key in every row: {missing}")
    setting = [n for n in names if n not in keys]
    if not setting:
        raise errors.ToolkitError("bulk_update rows hold only the key - name a column to set")
    _refuse_duplicates(arrays, [names.index(k) for k in keys], "bulk_update")
    target = table_name(table)
    source = _unnest(table, names)
    sql = (
        f"UPDATE {target} AS t SET "
        + ", ".join(f"{_q(n)} = v.{_q(n)}" for n in setting)
        + f" FROM {source} WHERE "
        + " AND ".join(f"t.{_q(k)} = v.{_q(k)}" for k in keys)
    )
    return await _run_batches(sql, arrays, session, database, progress, "bulk_update")


@interruptible
async def upsert(
    model: Target,
    rows: Rows,
    *,
    on: Sequence[str | Column[Any]] | None = None,
    update: Sequence[str | Column[Any]] | None = None,
    session: AsyncSession | None = None,
    database: Database | None = None,
    progress: bool | None = None,
) -> int:
    """INSERT ... ON CONFLICT (``on``) DO UPDATE; returns rows inserted or updated.

    ``on`` defaults to the primary key (it needs a unique index); ``update`` defaults to
    every given column outside ``on`` (``update=[]``: DO NOTHING, keep existing rows).
    Two rows with the same ``on`` key are refused: PostgreSQL would reject the batch. A
    value its column cannot hold exactly is refused, naming column, row and type.
    """
    table = _table(model)
    if not isinstance(rows, pd.DataFrame):
        if not rows:
            raise errors.ToolkitError("no rows given")
        rows = _object_frame(rows, None)  # each value as the Python object it is
    return await _upsert_frame(table, rows, on, update, session, database)


async def _upsert_frame(
    table: Table,
    rows: pd.DataFrame,
    on: Sequence[str | Column[Any]] | None,
    update: Sequence[str | Column[Any]] | None,
    session: AsyncSession | None,
    database: Database | None,
) -> int:
    """COPY into a temporary table of the target's column types (the same CSV text,
    checks and errors as ``to_table``), then one INSERT ... SELECT ... ON CONFLICT from
    it. Array parameters (``unnest``) could not carry array columns (arrays of arrays) and
    asyncpg's encoders would change some values (1.5 into an integer column)."""
    frame = _with_frame_defaults(table, rows)
    names = list(frame.columns)
    conflict = [_name(c) for c in on] if on else [c.name for c in table.primary_key.columns]
    given = [str(c) for c in rows.columns]
    changing = (
        [_name(c) for c in update]
        if update is not None
        else [n for n in given if n not in conflict]
    )
    unknown = [n for n in [*conflict, *changing] if n not in names]
    if unknown:
        raise errors.ToolkitError(f"upsert: columns {unknown} are not in the rows")
    repeated = frame[frame.duplicated(subset=conflict, keep=False)][conflict]
    if len(repeated):
        keys = list(repeated.drop_duplicates().itertuples(index=False, name=None))
        raise errors.ToolkitError(
            f"upsert: {len(keys)} key(s) appear more than once in the batch, e.g. "
            f"{keys[:5]} - de-duplicate the rows first (nothing was changed)"
        )
    target = table_name(table)
    columns = ", ".join(_q(n) for n in names)
    action = (
        "DO UPDATE SET " + ", ".join(f"{_q(n)} = EXCLUDED.{_q(n)}" for n in changing)
        if changing
        else "DO NOTHING"
    )
    with errors.translated():
        async with (
            driver_connection(session, database, write=True, refuse_on_standby="upsert") as raw,
            raw.transaction(),
        ):
            # The staging table has the target's column types (domains and lengths
            # included, from the catalog: no SELECT privilege needed). Dropped below, and
            # with the savepoint on error: two upserts in one transaction never meet.
            targets = await target_types(raw, target)
            missing = [n for n in names if n not in targets]
            if missing:
                raise errors.ToolkitError(
                    f"upsert: {table.name} has no column {missing} in the database; "
                    f"its columns: {list(targets)}"
                )
            staged = ", ".join(f"{_q(n)} {targets[n].declared}" for n in names)
            await raw.execute(f"CREATE TEMPORARY TABLE {_STAGING} ({staged}) ON COMMIT DROP")
            arrow = arrow_for_copy(frame, targets)
            await copy_arrow(raw, arrow, _STAGING, "pg_temp", index=rows.index, targets=targets)
            count = command_count(
                await raw.execute(
                    f"INSERT INTO {target} ({columns}) SELECT {columns} FROM pg_temp.{_STAGING} "
                    f"ON CONFLICT ({', '.join(_q(n) for n in conflict)}) {action}"
                )
            )
            await raw.execute(f"DROP TABLE pg_temp.{_STAGING}")
    return count


_STAGING = "toolkit_upsert_staging"


@interruptible
async def bulk_delete(
    model: Target,
    where: ColumnElement[bool] | Sequence[Any],
    *,
    session: AsyncSession | None = None,
    database: Database | None = None,
) -> int:
    """Delete by primary keys (a list; tuples for a composite key) or by a WHERE clause.

    Returns how many rows were deleted.
    """
    table = _table(model)
    target = table_name(table)  # checks the names before anything is sent
    with errors.translated():
        async with (
            driver_connection(
                session, database, write=True, refuse_on_standby="bulk_delete"
            ) as raw,
            raw.transaction(),
        ):
            if isinstance(where, ColumnElement):
                sql, args = compile_statement(delete(table).where(where), None)
                return command_count(await raw.execute(sql, *args))
            keys = [c.name for c in table.primary_key.columns]
            records = [tuple(k) if len(keys) > 1 else (k,) for k in where]
            matched = " AND ".join(f"t.{_q(k)} = v.{_q(k)}" for k in keys)
            sql = f"DELETE FROM {target} AS t USING {_unnest(table, keys)} WHERE {matched}"
            total = 0
            for chunk in _chunks(records):
                total += command_count(await raw.execute(sql, *_arrays(chunk, len(keys))))
            return total


# Rows ------------------------------------------------------------------------------


def _table(target: Target) -> Table:
    table = getattr(target, "__table__", target)
    if not isinstance(table, Table):
        raise TypeError(f"expected a mapped class or a Table, got {target!r}")
    return table


def _split_name(name: str) -> tuple[str, str | None]:
    schema, dot, table = name.rpartition(".")
    return (table, schema) if dot else (name, None)


def _pk(table: Table | None) -> Column[Any]:
    if table is None or len(table.primary_key.columns) != 1:
        raise errors.ToolkitError("returning=True needs a mapped class with a one-column key")
    return next(iter(table.primary_key.columns))


def _name(column: str | Column[Any]) -> str:
    return column if isinstance(column, str) else column.name


def _with_frame_defaults(table: Table | None, frame: pd.DataFrame) -> pd.DataFrame:
    """A shallow copy of ``frame`` with str column names, checked against ``table``, and
    the omitted columns' Python-side defaults added."""
    copy = frame.copy(deep=False)
    copy.columns = [str(c) for c in frame.columns]
    if table is not None:
        _known_columns(table, list(copy.columns))
        for column in _python_defaults(table, list(copy.columns)):
            values = _default_values(column, len(copy))
            copy[column.name] = pd.Series(values, index=copy.index, dtype=object)
    return copy


def _as_text_if_infinite(table: Table | None, rows: Any, columns: Sequence[str] | None) -> Any:
    """``rows`` (mappings or tuples) as a DataFrame of object columns - written as text, on
    the DataFrame path - when a date among them is one asyncpg's binary encoders send as
    -infinity or infinity (0001-01-01, 9999-12-31, ``datetime.min``/``max``: a common
    "open-ended" sentinel would come back infinite); else ``rows`` unchanged."""
    if isinstance(rows, pd.DataFrame) or not rows:
        return rows
    mapped = isinstance(rows[0], Mapping)
    if not mapped and columns is None:
        return rows  # _records says the columns are needed
    names = list(rows[0]) if mapped else list(columns or [])
    first = [rows[0][n] for n in names] if mapped else list(rows[0])
    if len(first) != len(names):
        return rows  # _records reports the mismatch

    def values(i: int) -> list[Any]:
        return [row.get(names[i]) for row in rows] if mapped else [row[i] for row in rows]

    kinds: Sequence[Column[Any]] = list(table.columns) if table is not None else []
    typed = {c.name for c in kinds if isinstance(c.type, sqltypes.Date | sqltypes.DateTime)}
    for i, name in enumerate(names):
        dated = isinstance(first[i], dt.date) or name in typed
        if dated and _sends_infinity(values(i)):
            return _object_frame(rows, columns)
    return rows


def _object_frame(rows: Any, columns: Sequence[str] | None) -> pd.DataFrame:
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


def _records(
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
        _known_columns(table, names)
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


def _refuse_duplicates(arrays: list[list[Any]], positions: list[int], what: str) -> None:
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


def _known_columns(table: Table, names: Sequence[str]) -> None:
    unknown = [n for n in names if n not in table.columns]
    if unknown:
        raise errors.ToolkitError(
            f"{table.name} has no column {unknown}; columns: {list(table.columns.keys())}"
        )


def _column_arrays(
    table: Table, rows: Rows, *, defaults: bool
) -> tuple[list[str], list[list[Any]]]:
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
    _known_columns(table, names)
    for i in _json_positions(table, names):
        arrays[i] = [_json_text(v) for v in arrays[i]]
    if defaults:
        count = len(arrays[0]) if arrays else 0
        for column in _python_defaults(table, names):
            names.append(column.name)
            arrays.append(_default_values(column, count))
    return names, arrays


# SQL -------------------------------------------------------------------------------


def _q(name: str) -> str:
    return quote(name, "column name")


def _unnest(table: Table | None, names: Sequence[str]) -> str:
    """``unnest($1::type[], ...) AS v(a, b)``: one array parameter per column."""
    if table is None:
        raise errors.ToolkitError("this operation needs a mapped class or a Table")
    arrays = ", ".join(f"${i}::{_unmodified(table, n)}[]" for i, n in enumerate(names, 1))
    return f"unnest({arrays}) AS v({', '.join(_q(n) for n in names)})"


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


def _arrays(records: Sequence[tuple[Any, ...]], width: int) -> list[list[Any]]:
    return (
        [list(column) for column in zip(*records, strict=True)]
        if records
        else [[] for _ in range(width)]
    )


async def _run_batches(
    sql: str,
    arrays: list[list[Any]],
    session: AsyncSession | None,
    database: Database | None,
    progress: bool | None,
    what: str,
) -> int:
    """Send ``sql`` with the column arrays, ``CHUNK`` rows a statement, in one transaction."""
    total = 0
    count = len(arrays[0]) if arrays else 0
    with errors.translated():
        async with (
            driver_connection(session, database, write=True, refuse_on_standby=what) as raw,
            raw.transaction(),
        ):
            bar = _bar(count, progress, what)
            for start in range(0, count, CHUNK):
                chunk = [a[start : start + CHUNK] for a in arrays]
                total += command_count(await raw.execute(sql, *chunk))
                bar.update(len(chunk[0]))
            bar.close()
    return total


async def _reserve_ids(
    raw: Any, table: Table | None, names: Sequence[str], count: int, returning: bool
) -> list[Any] | None:
    if not returning:
        return None
    key = _pk(table)
    if key.name in names:
        raise errors.ToolkitError("returning=True reserves the keys itself: leave them out")
    assert table is not None
    return list(
        await raw.fetchval(
            "SELECT array_agg(nextval(pg_get_serial_sequence($1, $2))) FROM generate_series(1, $3)",
            table_name(table),
            key.name,
            count,
        )
        or []
    )


def _chunks(records: Sequence[tuple[Any, ...]]) -> Iterator[Sequence[tuple[Any, ...]]]:
    for start in range(0, len(records), CHUNK):
        yield records[start : start + CHUNK]


def _bar(total: int, enabled: bool | None, what: str) -> Any:
    """A bar for large inputs in notebooks by default; ``enabled`` decides otherwise."""
    show = (in_notebook() and total > CHUNK) if enabled is None else enabled
    return progress_bar(total, show, what)
