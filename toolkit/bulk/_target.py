"""What a bulk helper writes to: a model, a ``Table`` or a ``schema.name`` string,
resolved to a ``Table`` (or a checked name), its primary key and its known columns."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from sqlalchemy import Column, Table

from toolkit import errors

__all__ = [
    "Rows",
    "Target",
    "column_name",
    "key_column",
    "known_columns",
    "split_name",
    "target_table",
]


Target = type[Any] | Table


Rows = Sequence[Mapping[str, Any]] | pd.DataFrame


def target_table(target: Target) -> Table:
    table = getattr(target, "__table__", target)
    if not isinstance(table, Table):
        raise TypeError(f"expected a mapped class or a Table, got {target!r}")
    return table


def split_name(name: str) -> tuple[str, str | None]:
    schema, dot, table = name.rpartition(".")
    return (table, schema) if dot else (name, None)


def key_column(table: Table | None) -> Column[Any]:
    if table is None or len(table.primary_key.columns) != 1:
        raise errors.ToolkitError("returning=True needs a mapped class with a one-column key")
    return next(iter(table.primary_key.columns))


def column_name(column: str | Column[Any]) -> str:
    return column if isinstance(column, str) else column.name


def known_columns(table: Table, names: Sequence[str]) -> None:
    unknown = [n for n in names if n not in table.columns]
    if unknown:
        raise errors.ToolkitError(
            f"{table.name} has no column {unknown}; columns: {list(table.columns.keys())}"
        )
