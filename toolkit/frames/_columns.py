"""Arrow columns from what PostgreSQL sent: the values asyncpg decoded (the row path),
COPY's text (numeric, uuid, json...), and timestamps sent in binary; one function per
source, each giving the dtype ``_types`` maps the column's type to."""

from __future__ import annotations

import binascii
import json
import uuid
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from toolkit.frames._types import MASKED, NUMPY, Column, DtypeBackend, masked

__all__ = ["DecimalText", "column_from_text", "column_from_values", "timestamps_from_sent"]

_MAX_DIGITS = 38
"""Digits a decimal128 holds: a numeric column beyond it becomes ``Decimal`` objects."""


def column_from_values(
    column: Column, values: Sequence[Any], backend: DtypeBackend = "pyarrow"
) -> pa.Array | list[Any] | pd.api.extensions.ExtensionArray:
    """A column from the Python values asyncpg decoded (the row path)."""
    if column.pg_type in _AS_TEXT:
        values = [None if v is None else _AS_TEXT[column.pg_type](v) for v in values]
    if column.arrow_type is not None:
        if backend == "numpy_nullable" and column.arrow_type in MASKED:
            return _masked_from_values(column.arrow_type, values)
        return pa.array(values, type=column.parsed_as(backend))
    if column.pg_type == "numeric":
        return _decimals_from_values(values)
    if column.pg_type == "uuid":
        return [None if v is None else uuid.UUID(bytes=v.bytes) for v in values]
    # json/jsonb arrive parsed: SQLAlchemy's asyncpg dialect gives every connection a
    # JSON codec. Parsing again would turn the JSON string '"42"' into the number 42.
    return list(values)


def _char_text(value: bytes) -> str:
    """A ``"char"`` (asyncpg: its one byte) as PostgreSQL writes it, so the row path reads
    what COPY's text holds: '' for the zero byte, ``\\ooo`` (octal) for one above 127."""
    byte = value[0] if value else 0
    if not byte:
        return ""
    return chr(byte) if byte < 128 else f"\\{byte:03o}"


def _lsn_text(value: int) -> str:
    """A ``pg_lsn`` as PostgreSQL writes it (asyncpg: the position as a signed int8)."""
    value &= 0xFFFF_FFFF_FFFF_FFFF
    return f"{value >> 32:X}/{value & 0xFFFF_FFFF:X}"


_AS_TEXT: dict[str, Callable[[Any], str]] = {"char": _char_text, "pg_lsn": _lsn_text}
"""Types asyncpg decodes into something other than the text COPY carries for them."""


def _masked_from_values(arrow_type: pa.DataType, values: Sequence[Any]) -> Any:
    """Integers or booleans straight into pandas' masked array (no Arrow array in
    between: its set-up costs more than converting 100 values)."""
    dtype = NUMPY[arrow_type]
    if None in values:
        objects = np.array(values, dtype=object)
        mask = objects == None  # noqa: E711 - elementwise, on an object array
        objects[mask] = 0
        return masked(arrow_type, objects.astype(dtype), mask)
    return masked(arrow_type, np.array(values, dtype=dtype))


def column_from_text(
    column: Column, array: pa.ChunkedArray | list[Any], pool: pa.MemoryPool | None = None
) -> pa.ChunkedArray | list[Any]:
    """A column from the COPY text the reader parsed (the COPY path); ``pool`` for new buffers.

    A numeric column may arrive converted already (``DecimalText``, while parsing).
    """
    if isinstance(array, list) or pa.types.is_decimal(array.type):
        return array
    if column.pg_type == "numeric":
        return _decimals_from_text(array, pool)
    if column.pg_type == "uuid":
        return [None if v is None else uuid.UUID(v) for v in array.to_pylist()]
    if column.pg_type in ("json", "jsonb"):
        return [None if v is None else json.loads(v) for v in array.to_pylist()]
    return array


def _decimals_from_values(values: Sequence[Decimal | None]) -> pa.Array | list[Any]:
    """Exact decimals at the column's largest scale (``Decimal('2.10')`` has scale 2).

    The scale is read from each value's text, which is several times faster than
    ``as_tuple()``; that is kept for values in exponent form (``1E-7``).
    """
    scale = 0
    for value in values:
        if value is None:
            continue
        text = str(value)
        if "E" in text or not text[-1].isdigit():
            if not value.is_finite():
                return list(values)  # NaN, Infinity: Arrow decimals cannot hold them
            digits = _scale(value)
        else:
            dot = text.find(".")
            digits = len(text) - dot - 1 if dot >= 0 else 0
        if digits > scale:
            scale = digits
    try:
        return pa.array(values, type=_decimal_type(scale))
    except (pa.ArrowInvalid, ValueError):
        return list(values)  # more than 38 digits: keep Decimal objects


def _scale(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)  # finite values only
    return max(0, -exponent)


def _decimal_type(scale: int) -> pa.DataType:
    return pa.decimal128(_MAX_DIGITS, min(scale, _MAX_DIGITS))


def _decimals_from_text(
    array: pa.ChunkedArray, pool: pa.MemoryPool | None = None
) -> pa.ChunkedArray | list[Any]:
    decimals = DecimalText(pool)
    # One measure over the column, not one per parsed block: a stream's blocks are small,
    # and each of the measure's kernels costs a call however few values it sees.
    chunks = array.chunks if array.num_chunks < 2 else [pa.concat_arrays(array.chunks, pool)]
    for chunk in chunks:
        decimals.add(chunk)
    return decimals.finish()


class DecimalText:
    """Numeric text -> exact decimals at the column's largest scale, a batch at a time
    (so the COPY path converts while the rest of the result still arrives).

    Every value's fraction is measured: Arrow's cast refuses to drop a digit but drops
    trailing zeros ('2.10' fits a scale of 1), so a sampled scale could come out smaller
    than the row path's. Each batch is cast at its own largest scale, and the chunks are
    widened to the column's at the end (exact). A batch whose values differ in decimal
    places also keeps its text: should the column fall back to ``Decimal`` objects (NaN,
    Infinity, more than 38 digits), each object is then the text PostgreSQL sent, as on
    the row path.
    """

    def __init__(self, pool: pa.MemoryPool | None = None) -> None:
        self._pool = pool
        self._chunks: list[tuple[pa.Array | None, pa.Array | None]] = []  # (decimal, text)
        self._scale = 0
        self._whole = 0  # the most digits before the decimal point
        self._objects = False

    def add(self, text: pa.Array) -> None:
        low, high, whole = _measure(text)
        if whole + high > _MAX_DIGITS and not self._objects:
            whole = _whole_digits(text)  # the measure's bound was loose by a '-' or a '0'
        self._scale = max(self._scale, high)
        self._whole = max(self._whole, whole)
        if not self._objects and whole + high <= _MAX_DIGITS:
            # (Arrow's cast from text does not check the 38-digit limit: checked above)
            try:
                decimal = pc.cast(text, _decimal_type(high), memory_pool=self._pool)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                pass  # NaN or Infinity
            else:
                self._chunks.append((decimal, text if low != high else None))
                return
        self._objects = True
        self._chunks.append((None, text))

    def extend(self, later: DecimalText) -> None:
        """Take ``later``'s values after these (the same column, read in parts)."""
        self._chunks.extend(later._chunks)
        self._scale = max(self._scale, later._scale)
        self._whole = max(self._whole, later._whole)
        self._objects = self._objects or later._objects

    def finish(self) -> pa.ChunkedArray | list[Any]:
        if not self._objects and self._whole + self._scale > _MAX_DIGITS:
            # Whole digits so far are bounds; the exact ones, from the decimals themselves
            self._whole = max((_whole_of(d) for d, _ in self._chunks if d is not None), default=0)
        if not self._objects and self._whole + self._scale <= _MAX_DIGITS:
            target = _decimal_type(self._scale)
            return pa.chunked_array(
                [pc.cast(d, target, memory_pool=self._pool) for d, _ in self._chunks],
                type=target,
            )
        values: list[Any] = []
        for decimal, text in self._chunks:  # the text where kept, else the exact decimals
            if text is not None:
                values.extend(_as_decimals(text))
            elif decimal is not None:
                values.extend(decimal.to_pylist())
        return values


def _measure(array: pa.Array) -> tuple[int, int, int]:
    """Of the numeric strings (NULLs ignored): the fewest and the most fractional digits,
    and a bound on the digits before the point: the most characters there, a '-' or the
    '0' of '0.5' included (exact: ``_whole_digits``). Five kernels, one pass each."""
    # numeric text is ASCII: byte lengths and positions are character counts
    fraction = pc.find_substring(pc.binary_reverse(array.cast(pa.binary())), ".")  # -1: none
    bounds = pc.min_max(fraction).as_py()
    before = pc.max(pc.subtract(pc.binary_length(array), fraction)).as_py()
    return (
        max(0, bounds["min"] or 0),
        max(0, bounds["max"] or 0),
        max(0, (before or 1) - 1),
    )


def _whole_digits(array: pa.Array) -> int:
    """The most digits before the point (a leading '0', as in '0.5', is not one)."""
    digits = pc.utf8_ltrim(array, characters="-0")
    point = pc.find_substring(digits, ".")
    whole = pc.if_else(pc.greater_equal(point, 0), point, pc.binary_length(digits))
    return int(pc.max(whole).as_py() or 0)


def _whole_of(decimals: pa.Array) -> int:
    """The most digits before the point among exact decimals."""
    bounds = pc.min_max(decimals).as_py()
    largest = max(abs(bounds["min"] or 0), abs(bounds["max"] or 0))
    return len(str(int(largest))) if largest >= 1 else 0


SENT = {"timestamp": "timestamp_send", "timestamptz": "timestamptz_send"}
"""Types the COPY path asks for in PostgreSQL's binary form (``*_send``, a bytea the text
format writes in hex): formatting a timestamp as text was a sixth of the server's work
on our 1M-row benchmark, and its hex is shorter to parse."""
_PG_EPOCH = 946_684_800_000_000
"""2000-01-01 in microseconds since 1970: PostgreSQL's timestamps count from it."""
_SENT_WIDTH = 19
"""A sent timestamp as the reader reads it: ``\\\\x`` (COPY escapes the backslash), 16 hex
digits."""
_INFINITY = np.iinfo(np.int64).max
"""PostgreSQL's timestamp infinity (-infinity: the smallest int64)."""
_FIRST_US = -62_135_596_800_000_000  # 0001-01-01
_LAST_US = 253_402_300_799_999_999  # 9999-12-31 23:59:59.999999


def timestamps_from_sent(
    array: pa.Array, arrow_type: pa.DataType, pool: pa.MemoryPool | None = None
) -> pa.Array:
    """Hex ``timestamp[tz]_send`` bytes -> Arrow timestamps (microseconds since 1970).

    +-infinity become the last and first microsecond of years 1-9999, as asyncpg reads
    them on the row path. Raises ``ArrowInvalid`` for a value outside those years (BC,
    year 10000+): the row path then answers (with an error naming the cast).
    """
    count = len(array) - array.null_count
    if not count:
        return pa.nulls(len(array), arrow_type, memory_pool=pool)
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int32)
    start, end = int(offsets[array.offset]), int(offsets[array.offset + len(array)])
    if end - start != count * _SENT_WIDTH:
        raise pa.ArrowInvalid("a timestamp did not arrive in its binary form")
    data = np.frombuffer(array.buffers()[2], dtype=np.uint8)[start:end]
    digits = data.reshape(count, _SENT_WIDTH)[:, 3:].tobytes()
    sent = np.frombuffer(binascii.unhexlify(digits), dtype=">i8").astype(np.int64)
    micros = sent + _PG_EPOCH  # (infinity's sentinels wrap around: replaced below)
    if micros.min() < _FIRST_US or micros.max() > _LAST_US:
        micros[sent == _INFINITY] = _LAST_US
        micros[sent == -_INFINITY - 1] = _FIRST_US
        if micros.min() < _FIRST_US or micros.max() > _LAST_US:
            raise pa.ArrowInvalid("a timestamp outside years 1-9999, such as a BC date")
    if not array.null_count:
        return pa.array(micros, type=pa.int64(), memory_pool=pool).view(arrow_type)
    values = np.zeros(len(array), dtype=np.int64)
    valid = array.is_valid().to_numpy(zero_copy_only=False)
    values[valid] = micros
    return pa.array(values, type=pa.int64(), mask=~valid, memory_pool=pool).view(arrow_type)


def _as_decimals(array: pa.Array | pa.ChunkedArray) -> list[Any]:
    return [None if v is None else Decimal(v) for v in array.to_pylist()]
