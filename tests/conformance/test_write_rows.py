"""The write direction for rows given as mappings or tuples: ``bulk_insert`` (binary COPY
while asyncpg's encoders write every value exactly, else the DataFrame path's text) and
``upsert`` (the DataFrame path). The same contract as for DataFrames: the value read back
by psycopg is the value written, or the write is refused naming column, row and type and
nothing is written.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from sqlalchemy import Column, Integer, MetaData, Table

import toolkit as tk
from toolkit.database import Database

COLUMNS = "id int PRIMARY KEY, n int4, x numeric, j jsonb, v varchar(3)"


def _names_only(name: str) -> Table:
    """A table described as an analyst does one nobody here designed: names, no types."""
    return Table(
        name,
        MetaData(),
        Column("id", Integer, primary_key=True),
        *(Column(c) for c in ("n", "x", "j", "v")),
    )


async def _fresh(reference: psycopg.AsyncConnection[Any], name: str) -> None:
    await reference.execute(f'DROP TABLE IF EXISTS "{name}"')  # type: ignore[arg-type]
    await reference.execute(f'CREATE TABLE "{name}" ({COLUMNS})')  # type: ignore[arg-type]
    await reference.execute(f"INSERT INTO \"{name}\" VALUES (0, 0, 0, '0', '0')")  # type: ignore[arg-type]


async def _rows(reference: psycopg.AsyncConnection[Any], name: str) -> list[tuple[Any, ...]]:
    cursor = await reference.execute(f'SELECT id, n, x, j, v FROM "{name}" ORDER BY id')  # type: ignore[arg-type]
    return list(await cursor.fetchall())


FORMS = ("bulk_insert-dicts", "bulk_insert-tuples", "bulk_insert-str-target", "upsert-dicts")


async def _write(form: str, name: str, rows: list[dict[str, Any]], db: Database) -> Any:
    if form == "bulk_insert-dicts":
        return await tk.bulk_insert(_names_only(name), rows, database=db)
    if form == "bulk_insert-tuples":
        tuples = [tuple(r.values()) for r in rows]
        return await tk.bulk_insert(_names_only(name), tuples, columns=list(rows[0]), database=db)
    if form == "bulk_insert-str-target":
        return await tk.bulk_insert(name, rows, database=db)
    return await tk.upsert(_names_only(name), rows, database=db)


@pytest.mark.parametrize("form", FORMS)
async def test_values_asyncpg_would_change_or_cannot_encode_arrive_exactly(
    form: str, conformance_db: Database, reference: psycopg.AsyncConnection[Any]
) -> None:
    """A float into numeric is its shortest text (asyncpg's binary encoder wrote its
    binary expansion, 0.1000000000000000055...); a dict into a jsonb column the Table
    does not type is JSON (asyncpg raised AttributeError); whole floats into int4 fit."""
    name = f"rows_{form.replace('-', '_')}"
    await _fresh(reference, name)
    rows = [
        {"id": 1, "n": 2.0, "x": 0.1, "j": {"a": [1, None]}, "v": "abc"},
        {"id": 2, "n": 7, "x": Decimal("2.50"), "j": "42", "v": None},
    ]
    assert await _write(form, name, rows, conformance_db) == 2
    assert (await _rows(reference, name))[1:] == [
        (1, 2, Decimal("0.1"), {"a": [1, None]}, "abc"),
        (2, 7, Decimal("2.50"), "42", None),
    ]


REFUSED = [
    ("fraction-into-int4", {"n": 1.5}, "n", "integer", tk.DatabaseError),
    ("overflow-of-int4", {"n": 2**40}, "n", "integer", tk.DatabaseError),
    ("text-into-int4", {"n": "x"}, "n", "integer", tk.DatabaseError),
    ("too-long-for-varchar(3)", {"v": "abcd"}, "v", "character varying(3)", tk.DatabaseError),
    ("set-into-jsonb", {"j": {1, 2}}, "j", "jsonb", tk.ToolkitError),
]


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize(
    ("case", "bad", "column", "declared", "error"), REFUSED, ids=[r[0] for r in REFUSED]
)
async def test_a_row_value_its_column_cannot_hold_is_refused_by_name_and_nothing_is_written(
    case: str,
    bad: dict[str, Any],
    column: str,
    declared: str,
    error: type[Exception],
    form: str,
    conformance_db: Database,
    reference: psycopg.AsyncConnection[Any],
) -> None:
    """asyncpg truncated 1.5 to 1 (binary COPY and array parameters alike), raised a bare
    TypeError or OverflowError for the others, or the server's error named no row."""
    name = f"rows_refused_{form.replace('-', '_')}"
    await _fresh(reference, name)
    good = {"id": 1, "n": 1, "x": Decimal(1), "j": None, "v": "ok"}
    rows = [good, good | {"id": 2}, good | {"id": 3} | bad]
    located = rf"column '{column}', row 2 into {re.escape(declared)}: "
    with pytest.raises(error, match=located):
        await _write(form, name, rows, conformance_db)
    assert await _rows(reference, name) == [(0, 0, Decimal(0), 0, "0")], "nothing was written"


async def test_bulk_update_of_a_table_without_column_types_says_what_it_needs(
    conformance_db: Database, reference: psycopg.AsyncConnection[Any]
) -> None:
    """Its array parameters need each column's type (SQLAlchemy's CompileError before)."""
    await _fresh(reference, "rows_update")
    with pytest.raises(tk.ToolkitError, match=r"column 'n' of rows_update has no type"):
        await tk.bulk_update(
            _names_only("rows_update"), [{"id": 0, "n": 5}], database=conformance_db
        )
