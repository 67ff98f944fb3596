"""Opaque cursors: a page's last key values as URL-safe base64 JSON, with the types JSON
lacks (dates, decimals, UUIDs, bytes, ...) tagged so they decode to the same Python type.
No pickle: a cursor from a URL is data, never code.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from toolkit.errors import PaginationError

_TAGGED: tuple[tuple[type, str, Callable[[Any], Any], Callable[[Any], Any]], ...] = (
    (datetime, "datetime", datetime.isoformat, datetime.fromisoformat),
    (date, "date", date.isoformat, date.fromisoformat),
    (time, "time", time.isoformat, time.fromisoformat),
    (
        timedelta,
        "timedelta",
        lambda v: [v.days, v.seconds, v.microseconds],
        lambda v: timedelta(*v),
    ),
    (Decimal, "decimal", str, Decimal),
    (UUID, "uuid", str, UUID),
    (bytes, "bytes", lambda v: base64.b64encode(v).decode(), base64.b64decode),
)
"""Key value types JSON lacks, tagged so a cursor decodes to the same Python type
(datetime before date: a datetime is a date)."""


def encode_cursor(values: Sequence[Any]) -> str:
    encoded: list[Any] = []
    for value in values:
        if value is None or isinstance(value, bool | int | float | str):
            encoded.append(value)
            continue
        for kind, tag, dump, _ in _TAGGED:
            if isinstance(value, kind):
                encoded.append({"$": tag, "v": dump(value)})
                break
        else:
            raise PaginationError(
                f"a key value of type {type(value).__name__} cannot go in a cursor - key on "
                "columns of plain types (numbers, text, dates, times, decimals, UUIDs)"
            )
    data = json.dumps(encoded, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str, expected: int) -> list[Any]:
    decoders = {tag: load for _, tag, _, load in _TAGGED}
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
        if not isinstance(values, list) or len(values) != expected:
            raise ValueError("not a list of the key's values")
        return [_decode_value(v, decoders) for v in values]
    except (ValueError, TypeError, KeyError, ArithmeticError):  # Decimal's InvalidOperation
        raise PaginationError(
            f"malformed cursor {str(cursor)[:40]!r} - pass the next_cursor of a page of the same "
            "query and key, or after=None to start from the first page"
        ) from None


def _decode_value(value: Any, decoders: Mapping[str, Callable[[Any], Any]]) -> Any:
    if isinstance(value, dict):
        return decoders[value["$"]](value["v"])
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise ValueError("not a key value")
