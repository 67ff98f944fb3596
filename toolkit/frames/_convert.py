"""Frames from what is already in memory (no I/O): ``to_dataframe`` of models, rows or
mappings, and ``exact_frame``, whose dtypes come from the exact Python values."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import inspect
from sqlalchemy.engine import Row

__all__ = ["exact_frame", "to_dataframe"]


def to_dataframe(items: Iterable[Any]) -> pd.DataFrame:
    """Models, rows, mappings or tuples already in memory -> DataFrame (no I/O).

    For models only loaded column values are used; nothing is lazily loaded.
    """
    items = list(items)
    if not items:
        return pd.DataFrame()
    first = items[0]
    if isinstance(first, Row):
        return pd.DataFrame.from_records([tuple(r) for r in items], columns=list(first._fields))
    if isinstance(first, Mapping):
        return pd.DataFrame.from_records(items)
    mapper = inspect(type(first), raiseerr=False)
    if mapper is not None and hasattr(mapper, "column_attrs"):
        keys = list(mapper.column_attrs.keys())
        records = []
        for obj in items:
            loaded = inspect(obj).dict
            records.append({key: loaded.get(key) for key in keys})
        return pd.DataFrame.from_records(records, columns=keys)
    return pd.DataFrame.from_records(items)


def exact_frame(rows: Sequence[Any], columns: Sequence[str]) -> pd.DataFrame:
    """Rows of Python values (a page's ``Row``s, a statement's records) as a frame whose
    columns ``pd.array`` infers from the exact values (``Int64`` with ``<NA>``...):
    ``from_records`` made an int column holding NULL floats (an int8 lost digits) and
    NULL text NaN. Each column is 1-d even when its values are lists."""
    arrays = {}
    for i in range(len(columns)):
        values = np.empty(len(rows), dtype=object)
        values[:] = [row[i] for row in rows]
        arrays[i] = pd.array(values)
    frame = pd.DataFrame(arrays, index=pd.RangeIndex(len(rows)))
    frame.columns = pd.Index(list(columns))
    return frame
