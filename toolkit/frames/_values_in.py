"""Each DataFrame value as the text its target column's input function reads back
exactly, or a refusal naming the column, the row and the type.

Native columns (numbers, strings, booleans, dates) stay Arrow arrays that Arrow's C++ CSV
writer renders; datetimes and timedeltas are checked and converted with numpy; object
columns (Decimal, dicts, lists, bytes, UUIDs...) take one Python pass, as they hold
Python objects anyway. Values PostgreSQL would silently change are refused here, before
anything is sent: nanoseconds (it keeps microseconds), an aware datetime into
``timestamp`` or ``date``, a time of day into ``date``, bytes outside ``bytea``, a dict
outside json, values JSON cannot hold, NUL in text.

Why one module: every rule of what a value may become is here, next to the others, so
the three write helpers refuse the same values for the same reasons.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from toolkit import errors

_US = {
    "D": 86_400_000_000,
    "h": 3_600_000_000,
    "m": 60_000_000,
    "s": 1_000_000,
    "ms": 1_000,
    "us": 1,
    "ns": 1,
}
"""Microseconds per unit (ns values are divided by 1,000 once checked whole)."""


@dataclass(frozen=True)
class Target:
    """A column's type as the catalog states it (domains resolved to their base type)."""

    declared: str
    """``format_type``'s spelling, quoted in errors: ``character varying(5)``, ``integer[]``."""
    base: str
    """The base type's ``typname``: ``varchar``, ``_int4``, ``jsonb``, ``timestamptz``."""
    array: bool

    @property
    def json(self) -> bool:
        return self.base in ("json", "jsonb")


# Refusals ---------------------------------------------------------------------------


_RowText = Callable[[int], str]
"""A row's position in the frame -> its text in a refusal (``row_text`` of the frame)."""


def _refused(
    column: str, position: int, row: _RowText, target: Target | None, why: str, fix: str
) -> errors.ToolkitError:
    """The error for a value that cannot be written: column, row and type, then the fix."""
    into = f" into {target.declared}" if target is not None else ""
    return errors.ToolkitError(
        f"column {column!r}, {row(position)}{into}: {why} - {fix}; nothing was written"
    )


def row_text(position: int, index: pd.Index, first: int = 0) -> str:
    """``row 7``, or ``row 7 (index 'x')`` where the row's label differs: ``position`` is
    the row's place in ``index``, ``first`` the place of ``index``'s first row in the whole
    input (a streamed batch's), so the number is the row's position in the whole input."""
    at = first + position
    label = index[position] if 0 <= position < len(index) else at
    label = label.item() if isinstance(label, np.generic) else label
    return f"row {at}" if label == at else f"row {at} (index {label!r})"


def _first(mask: np.ndarray) -> int | None:
    hits = np.flatnonzero(mask)
    return int(hits[0]) if len(hits) else None


# DataFrame -> CSV-ready Arrow -------------------------------------------------------


def arrow_for_copy(
    frame: pd.DataFrame, targets: Mapping[str, Target], *, first: int = 0
) -> pa.Table:
    """The frame as Arrow columns whose CSV text the ``targets`` columns read back exactly.

    Refuses (ToolkitError naming column, row and type) a value that would be changed:
    a datetime or timedelta finer than a microsecond, an aware datetime into ``timestamp``
    or ``date``, a time of day into ``date``, bytes outside ``bytea``, a dict or list
    outside json/jsonb and arrays. A ``str`` into json/jsonb is a JSON string. ``first``:
    the frame's first row's position in the whole input (a batch of a stream), which a
    refusal counts from.
    """
    names = [str(c) for c in frame.columns]
    arrays = []

    def row(position: int) -> str:
        return row_text(position, frame.index, first)

    for i, name in enumerate(names):
        array = _column(frame.iloc[:, i], name, targets.get(name), row)
        _refuse_nul(array, name, targets.get(name), row)
        arrays.append(array)
    return pa.table(arrays, names=names)


def _refuse_nul(array: pa.Array, name: str, target: Target | None, row: _RowText) -> None:
    """Text holding NUL, which PostgreSQL cannot store: the server's own error names
    only the line, so the column is found here."""
    if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
        return
    hits = pc.fill_null(pc.match_substring(array, "\x00"), False)
    at = _first(hits.to_numpy(zero_copy_only=False))
    if at is not None:
        into = f" into {target.declared}" if target is not None else ""
        raise errors.InvalidCharacter(
            f"column {name!r}, {row(at)}{into}: the text holds a NUL character "
            "(\\x00), which PostgreSQL cannot store - remove it (e.g. "
            "s.str.replace('\\x00', '')) or store such values as bytea; nothing was written",
            sqlstate="22021",
        )


def _column(series: pd.Series, name: str, target: Target | None, row: _RowText) -> pa.Array:
    dtype = series.dtype
    if isinstance(dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(dtype):
        return _datetimes(series, name, target, row)
    if pd.api.types.is_timedelta64_dtype(dtype):
        return _timedeltas(series, name, target, row)
    native = _native(series)
    if native is None or (target is not None and (target.json or target.array)):
        if native is not None and target is not None and target.json and _json_as_is(native):
            return native  # numbers and booleans: their CSV text is their JSON text
        return _objects(series, name, target, row)
    return native


def _native(series: pd.Series) -> pa.Array | None:
    """The column as an Arrow array Arrow's CSV writer renders exactly, or None."""
    dtype = series.dtype
    if pd.api.types.is_object_dtype(dtype) or (
        isinstance(dtype, pd.ArrowDtype) and not csv_writable(dtype.pyarrow_dtype)
    ):
        return None
    try:
        array = pa.array(series, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return None
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    return array if csv_writable(array.type) else None


def csv_writable(kind: pa.DataType) -> bool:
    """Whether Arrow's CSV writer renders ``kind``'s values as their columns read them."""
    if pa.types.is_dictionary(kind):
        return csv_writable(kind.value_type)
    return bool(
        pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_decimal(kind)
        or pa.types.is_date(kind)
        or pa.types.is_time(kind)
        or pa.types.is_null(kind)
    )


def _json_as_is(array: pa.Array) -> bool:
    return bool(pa.types.is_integer(array.type) or pa.types.is_boolean(array.type))


def _datetimes(series: pd.Series, name: str, target: Target | None, row: _RowText) -> pa.Array:
    aware = isinstance(series.dtype, pd.DatetimeTZDtype)
    base = target.base if target is not None else None
    if aware and base in ("timestamp", "date"):
        at = _first(series.notna().to_numpy())
        if at is not None:
            raise _refused(
                name,
                at,
                row,
                target,
                f"{series.iloc[at]} carries a time zone, which {base} does not hold",
                "use a timestamptz column, or choose the wall clock yourself: "
                ".dt.tz_convert('UTC').dt.tz_localize(None)",
            )
    naive = series.dt.tz_convert(None) if aware else series
    micros, missing = _microseconds(series, naive.to_numpy(), name, target, row, "PostgreSQL")
    if base == "date":
        at = _first((micros % _DAY != 0) & ~missing)
        if at is not None:
            raise _refused(
                name,
                at,
                row,
                target,
                f"{series.iloc[at]} has a time of day, which date does not hold",
                "take the date yourself (.dt.normalize() or .dt.date)",
            )
    early = _first((micros < _YEAR_ONE) & ~missing)
    if early is not None:
        raise _refused(
            name,
            early,
            row,
            target,
            f"{series.iloc[early]} is before year 1, which this toolkit does not write",
            "write it as text in PostgreSQL's BC notation",
        )
    # Naive text for timestamp(tz) columns (TimeZone is UTC during the COPY); into any
    # other column (text...) an aware value keeps its offset: '... 11:00:00.000000Z'.
    keep = aware and base not in ("timestamptz", None)
    return pa.array(micros, pa.timestamp("us", tz="UTC" if keep else None), mask=missing)


def _microseconds(
    series: pd.Series, values: Any, name: str, target: Target | None, row: _RowText, keeper: str
) -> tuple[Any, Any]:
    """datetime64/timedelta64 ``values`` as whole microseconds, and their NULL mask; a value
    with nanoseconds is refused (``keeper`` keeps microseconds only)."""
    unit = np.datetime_data(values.dtype)[0]
    missing = np.isnat(values)
    ticks = values.view("i8")
    if unit == "ns":
        at = _first((ticks % 1_000 != 0) & ~missing)
        if at is not None:
            raise _refused(
                name,
                at,
                row,
                target,
                f"{series.iloc[at]} has nanoseconds; {keeper} keeps microseconds",
                "round them first (.dt.round('us') or .dt.floor('us'))",
            )
    return np.where(missing, 0, ticks // 1_000 if unit == "ns" else ticks * _US[unit]), missing


_YEAR_ONE = -62_135_596_800_000_000
"""0001-01-01 00:00:00 in microseconds since 1970."""


def _timedeltas(series: pd.Series, name: str, target: Target | None, row: _RowText) -> pa.Array:
    micros, missing = _microseconds(series, series.to_numpy(), name, target, row, "an interval")
    days, rest = np.divmod(micros, _DAY)
    # Days in the interval's day field, the rest in its time field, as asyncpg's binary
    # encoder sends a timedelta; a bare number would be read as seconds: name the units.
    return pc.binary_join_element_wise(
        pa.array(days, pa.int64(), mask=missing).cast(pa.string()),
        pa.scalar(" days "),
        pa.array(rest, pa.int64()).cast(pa.string()),
        pa.scalar(" microseconds"),
        "",
    )


_DAY = 86_400_000_000
"""Microseconds in a day."""


# Python objects -------------------------------------------------------------------


def _objects(series: pd.Series, name: str, target: Target | None, row: _RowText) -> pa.Array:
    """One Python pass over a column of Python objects: each value's text for ``target``,
    by an encoder chosen once per Python type (a column mostly holds one)."""
    values = series.astype(object).tolist()
    encoders: dict[type, Callable[[Any], str | None]] = {}
    texts: list[str | None] = []
    append = texts.append
    for position, value in enumerate(values):
        kind = type(value)
        encode = encoders.get(kind)
        if encode is None:
            encode = encoders[kind] = _encoder(kind, target)
        try:
            append(encode(value))
        except _Unwritable as exc:
            raise _refused(name, position, row, target, str(exc), exc.fix) from None
    return pa.array(texts, pa.string())


class _Unwritable(Exception):
    def __init__(self, why: str, fix: str) -> None:
        super().__init__(why)
        self.fix = fix


def is_missing(value: Any) -> bool:
    """pandas' missing values; a Decimal NaN is a value (numeric holds it)."""
    return (
        value is None
        or value is pd.NA
        or value is pd.NaT
        or (isinstance(value, float) and math.isnan(value))
        or (isinstance(value, np.datetime64 | np.timedelta64) and np.isnat(value))
    )


def _encoder(kind: type, target: Target | None) -> Callable[[Any], str | None]:
    """The text of a value of type ``kind`` (None: NULL) for ``target``."""
    if kind is type(None) or kind is type(pd.NA) or kind is type(pd.NaT):
        return lambda value: None
    if target is not None and target.json:
        encode: Callable[[Any], str] = _json
    elif target is not None and target.array:
        encode = (lambda value: value) if kind is str else (lambda value: _array(value, target))
    elif kind is str:
        return lambda value: value  # the common case: no check to make
    elif kind is uuid.UUID and target is not None and target.base == "uuid":
        return lambda value: value.int.to_bytes(16).hex()  # uuid_in's hyphen-free form
    elif kind in (int, uuid.UUID) or (
        kind is decimal.Decimal and (target is None or target.base not in _INTEGERS)
    ):
        return str
    else:
        encode = lambda value: _scalar(value, target)  # noqa: E731 - one line, closed over
    return lambda value: None if is_missing(value) else encode(value)


def _json(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False, default=_json_default)
    except (TypeError, ValueError) as exc:
        raise _Unwritable(
            f"{value!r} is not JSON ({exc})",
            "convert it to JSON types (dict, list, str, int, float, bool, None)",
        ) from None


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _array(value: Any, target: Target) -> str:
    """PostgreSQL's array literal: every element quoted, NULL unquoted, nested braces."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if not isinstance(value, list | tuple):
        raise _Unwritable(
            f"{type(value).__name__} {value!r} is not a list",
            "give a list (or a tuple or numpy array) per row",
        )
    parts = []
    for item in value:
        if item is None:
            parts.append("NULL")
        elif isinstance(item, list | tuple | np.ndarray):
            parts.append(_array(item, target))
        else:
            text = _json(item) if isinstance(item, dict) else _scalar(item, None)
            parts.append('"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return "{" + ",".join(parts) + "}"


def _scalar(value: Any, target: Target | None) -> str:
    base = target.base if target is not None else None
    if isinstance(value, str):
        return value
    whole = isinstance(value, float | np.floating | decimal.Decimal) and _whole(value)
    if base in _INTEGERS and whole:  # 2.0 is 2, as a float64 column writes it; 1.5 is refused
        return str(int(value))
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, bytes | bytearray | memoryview):
        if base not in (None, "bytea"):
            raise _Unwritable(
                "bytes go only into bytea", "decode them (.str.decode('utf-8')) or use bytea"
            )
        return "\\x" + bytes(value).hex()
    if isinstance(value, dict | list | tuple | set | np.ndarray):
        raise _Unwritable(
            f"a {type(value).__name__} goes only into json, jsonb or an array column",
            "use such a column, or convert the values (json.dumps) yourself",
        )
    if isinstance(value, np.datetime64 | np.timedelta64):
        value = pd.Timestamp(value) if isinstance(value, np.datetime64) else pd.Timedelta(value)
    if isinstance(value, dt.datetime):
        return _datetime(value, base)
    if isinstance(value, dt.timedelta):
        if isinstance(value, pd.Timedelta) and value.nanoseconds:
            raise _Unwritable(
                f"{value} has nanoseconds; an interval keeps microseconds",
                "round them first (.round('us'))",
            )
        return f"{value.days} days {value.seconds * 1_000_000 + value.microseconds} microseconds"
    if isinstance(value, dt.date):
        if value.year < 1:  # pragma: no cover - Python dates start at year 1
            raise _Unwritable(f"{value} is before year 1", "write it as text")
        return value.isoformat()
    return str(value)  # Decimal, UUID, numbers: their text is what PostgreSQL reads


_INTEGERS = ("int2", "int4", "int8")


def _whole(value: float | np.floating | decimal.Decimal) -> bool:
    if isinstance(value, decimal.Decimal):
        return value.is_finite() and value == value.to_integral_value()
    return math.isfinite(value) and float(value).is_integer()


def _datetime(value: dt.datetime, base: str | None) -> str:
    if isinstance(value, pd.Timestamp) and value.nanosecond:
        raise _Unwritable(
            f"{value} has nanoseconds; PostgreSQL keeps microseconds",
            "round them first (.round('us') or .floor('us'))",
        )
    if value.tzinfo is not None and value.utcoffset() is not None:
        if base in ("timestamp", "date"):
            raise _Unwritable(
                f"{value} carries a time zone, which {base} does not hold",
                "use a timestamptz column, or convert to a naive wall clock yourself",
            )
        value = value.astimezone(dt.UTC)
    if base == "date" and value.time() != dt.time(0):
        raise _Unwritable(
            f"{value} has a time of day, which date does not hold",
            "take the date yourself (.date())",
        )
    return value.isoformat(sep=" ")
