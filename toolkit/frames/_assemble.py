"""Arrow columns -> a pandas DataFrame, without copying what need not be copied: each
column becomes the array its dtype's ``__from_arrow__`` would make, and the frame is
assembled from finished arrays."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Sequence
from typing import Any, cast

import numpy as np
import pandas as pd
import pyarrow as pa

from toolkit.frames._types import MASKED, NULLABLE, Column, DtypeBackend, masked

__all__ = ["build_frame", "to_pandas"]


def to_pandas(data: pa.Array | pa.ChunkedArray, backend: DtypeBackend) -> Any:
    """One Arrow column -> one pandas array, as the dtype's own ``__from_arrow__`` makes it.

    (Faster than ``Table.to_pandas`` for small results, and the same for large ones.) The
    common cases are built directly, skipping the no-op casts ``__from_arrow__`` makes
    through Arrow's compute layer: in a small frame those cost more than the data.
    """
    arrow_type = data.type
    if backend == "pyarrow" or (
        arrow_type not in NULLABLE and not pa.types.is_timestamp(arrow_type)
    ):  # decimal, date, time: exact Arrow types
        return pd.arrays.ArrowExtensionArray(data)
    if arrow_type in MASKED and data.null_count == 0:
        values = _numpy(data)
        if not values.flags.writeable:  # a view of Arrow's buffer (one chunk): pandas copies too
            values = values.copy()
        return masked(arrow_type, values)
    if arrow_type in NULLABLE:
        return NULLABLE[arrow_type].__from_arrow__(data)
    values = _numpy(data)
    if arrow_type.tz is None:
        return values  # datetime64[us], NULL -> NaT
    return _with_time_zone(values, arrow_type.tz)


def _numpy(data: pa.Array | pa.ChunkedArray) -> Any:
    """The values as numpy (NULL -> NaT for timestamps); a view of Arrow's buffer when
    one chunk without NULLs allows it."""
    if isinstance(data, pa.Array):
        return data.to_numpy(False)
    if data.num_chunks == 1:
        return data.chunk(0).to_numpy(False)
    if not data.num_chunks:
        return data.to_numpy()
    # joined by numpy: Arrow's join would allocate in its default pool (_copy_out.default_pool)
    return np.concatenate([chunk.to_numpy(False) for chunk in data.chunks])


def _with_time_zone(values: Any, tz: str) -> Any:
    """UTC ``datetime64[us]`` values -> a time-zone-aware array (pandas' own last step of
    ``DatetimeTZDtype.__from_arrow__``, without its cast)."""
    dtype = _tz_dtype(tz)
    simple_new = getattr(pd.arrays.DatetimeArray, "_simple_new", None)
    if simple_new is not None:
        with contextlib.suppress(TypeError, ValueError, AssertionError):
            return simple_new(values, dtype=dtype)
    return dtype.__from_arrow__(pa.array(values).cast(pa.timestamp("us", tz)))


@functools.lru_cache(maxsize=16)
def _tz_dtype(tz: str) -> pd.DatetimeTZDtype:
    return pd.DatetimeTZDtype("us", tz)


def build_frame(
    columns: Sequence[Column],
    data: list[pa.Array | pa.ChunkedArray | list[Any] | pd.api.extensions.ExtensionArray],
    backend: DtypeBackend,
) -> pd.DataFrame:
    """Assemble the DataFrame, consuming ``data`` (each column is released once converted,
    so the Arrow and pandas copies of a large result do not all coexist).

    Columns are placed by position, so duplicate names (legal in SQL) are kept; columns of
    Python objects (uuid, json, exotic types) become ``object`` columns.
    """
    arrays: list[Any] = []
    for i in range(len(data)):
        d, data[i] = data[i], []
        if isinstance(d, list):
            arrays.append(_objects(d))
        elif isinstance(d, pa.Array | pa.ChunkedArray):
            arrays.append(to_pandas(d, backend))
        else:
            arrays.append(d)  # a pandas array already (``_masked_from_values``)
        del d
    names = pd.Index(_labels(tuple(c.name for c in columns)))
    index = pd.RangeIndex(len(arrays[0]) if arrays else 0)
    return _assemble(arrays, names, index)


@functools.lru_cache(maxsize=256)
def _labels(names: tuple[str, ...]) -> Any:
    """The column labels as pandas' string array, kept per list of names: an Index over
    an existing array costs a quarter of one inferred from a list (a small frame's
    most expensive part after its columns)."""
    return pd.Index(list(names)).array  # pandas' own label dtype (str in pandas 3)


def _objects(values: list[Any]) -> Any:
    """A 1-d object array (``np.array`` would make lists of equal length a 2-d array)."""
    return pd.Series(values, dtype=object).to_numpy()


def _assemble(arrays: list[Any], names: pd.Index, index: pd.RangeIndex) -> pd.DataFrame:
    """The frame from finished column arrays, without copying them.

    pandas' own ``DataFrame._from_arrays`` (what ``from_records`` uses) skips the checks
    and copies that ``DataFrame(dict)`` makes: half the cost of a small result. The
    public constructor is the fallback should a pandas release drop it.
    """
    from_arrays = getattr(pd.DataFrame, "_from_arrays", None)
    if from_arrays is not None:
        with contextlib.suppress(TypeError, ValueError, AssertionError):
            return cast(
                pd.DataFrame,
                from_arrays(arrays, columns=names, index=index, verify_integrity=False),
            )
    result = pd.DataFrame(dict(enumerate(arrays)), index=index)
    result.columns = names
    return result
