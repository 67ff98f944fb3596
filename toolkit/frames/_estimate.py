"""Which path ``tk.df`` takes: the planner's row estimate against ``COPY_THRESHOLD``.

The estimate is one ``EXPLAIN`` per statement text, kept for ``ESTIMATE_TTL`` seconds, so
repeated small queries skip the round trip and a table that grows is re-estimated soon.
A statement whose plan writes (a data-modifying CTE) never takes COPY.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from toolkit.frames._types import Column
from toolkit.sql import plannable

__all__ = ["COPY_THRESHOLD", "ESTIMATE_TTL", "estimate", "use_copy"]

COPY_THRESHOLD = 2_000
"""Estimated rows from which ``tk.df`` reads through COPY instead of row by row."""
ESTIMATE_TTL = 10.0
"""Seconds a row estimate is reused."""
_ESTIMATES: OrderedDict[str, tuple[float, float, bool]] = OrderedDict()
_ESTIMATES_KEPT = 512


async def use_copy(raw: Any, sql: str, args: Sequence[Any], columns: Sequence[Column]) -> bool:
    if not all(c.copy_safe for c in columns) or not plannable(sql):
        return False
    rows, writes = await estimate(raw, sql, args)
    return rows >= COPY_THRESHOLD and not writes


async def estimate(raw: Any, sql: str, args: Sequence[Any]) -> tuple[float, bool]:
    """The planner's row estimate, and whether the plan modifies data (never re-run)."""
    now = time.monotonic()
    cached = _ESTIMATES.get(sql)
    if cached is not None and now - cached[0] < ESTIMATE_TTL:
        with contextlib.suppress(KeyError):  # another thread's call may have evicted it
            _ESTIMATES.move_to_end(sql)
        return cached[1], cached[2]
    plan = await raw.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *args)
    top = (json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]
    rows, writes = float(top.get("Plan Rows", 0)), '"ModifyTable"' in json.dumps(top)
    _ESTIMATES[sql] = (now, rows, writes)
    _ESTIMATES.move_to_end(sql)
    if len(_ESTIMATES) > _ESTIMATES_KEPT:
        _ESTIMATES.popitem(last=False)
    return rows, writes
