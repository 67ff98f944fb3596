"""tables() and describe(): what the catalog says, on tables with names that need quoting."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from tests.explore.conftest import ODD, ODD_NAME, ODD_SCHEMA, ODD_SQL, _victim_intact
from toolkit.database import Database
from toolkit.explore import NoSuchSchema, describe, tables
from toolkit.models import Post, User


async def test_tables_lists_user_relations_with_kind_rows_and_size(odd_db: Database) -> None:
    frame = await tables(database=odd_db)
    assert list(frame.columns) == [
        "schema",
        "name",
        "kind",
        "estimated_rows",
        "total_bytes",
        "total_size",
    ]
    assert not frame["schema"].isin(["pg_catalog", "information_schema"]).any()
    rows = {(r.schema, r.name): r for r in frame.itertuples(index=False)}
    kinds = {key: row.kind for key, row in rows.items()}
    assert kinds[(ODD_SCHEMA, ODD_NAME)] == "table"
    assert kinds[(ODD_SCHEMA, "Odd View")] == "view"
    assert kinds[("public", "child_counts")] == "materialized view"
    assert kinds[("public", "events")] == "partitioned table"
    assert kinds[("public", "events_2024")] == "table"
    assert rows[("public", "big")].estimated_rows == 5000
    assert rows[("public", "events")].estimated_rows == 600  # its partitions, summed
    assert rows[("public", "big")].total_bytes > 0
    assert rows[("public", "events")].total_bytes > 0
    assert rows[("public", "big")].total_size.endswith(("kB", "MB"))
    assert pd.isna(rows[(ODD_SCHEMA, "Odd View")].estimated_rows)
    assert pd.isna(rows[(ODD_SCHEMA, "Odd View")].total_bytes)
    assert frame["estimated_rows"].dtype == "Int64"


async def test_tables_of_one_schema(odd_db: Database) -> None:
    frame = await tables(ODD_SCHEMA, database=odd_db)
    assert frame["name"].tolist() == [ODD_NAME, "Odd View"]
    assert set(frame["schema"]) == {ODD_SCHEMA}


async def test_an_unknown_schema_suggests_the_closest(odd_db: Database) -> None:
    with pytest.raises(
        NoSuchSchema, match=r"no schema named 'Odd Shema'; did you mean 'Odd Schema'\?"
    ):
        await tables("Odd Shema", database=odd_db)


async def test_tables_in_a_session_see_its_uncommitted_tables(session: AsyncSession) -> None:
    await session.execute(text('CREATE TABLE "Fresh One" (id integer)'))
    frame = await tables("public", session=session)
    assert {"users", "posts", "Fresh One"} <= set(frame["name"])


async def test_describe_columns_with_postgres_types(odd_db: Database) -> None:
    info = await describe(ODD, database=odd_db)
    assert info.name == ODD
    assert info.kind == "table"
    columns = info.columns
    assert list(columns.columns) == ["name", "type", "nullable", "default", "primary_key"]
    assert columns["name"].tolist()[:4] == ["Select", "two words", 'quote"d', "flag"]
    types = dict(zip(columns["name"], columns["type"], strict=True))
    assert types['quote"d'] == "numeric(10,2)"
    assert types["tags"] == "text[]"
    assert types["spot"] == "point"  # unknown to SQLAlchemy, named by PostgreSQL
    assert types["feeling"] == "mood"
    first = columns.iloc[0]
    assert (first["primary_key"], first["nullable"]) == (True, False)
    second = columns.iloc[1]
    assert (second["primary_key"], second["nullable"], second["default"]) == (
        False,
        False,
        "'x'::text",
    )
    await _victim_intact(odd_db)


async def test_describe_indexes_and_foreign_keys(odd_db: Database) -> None:
    info = await describe("child", database=odd_db)
    indexes = info.indexes
    assert indexes["name"].tolist() == ["child_pkey", "child_lower_note", "child_note_key"]
    assert indexes["columns"].tolist() == [["id"], ["lower(note)"], ["note"]]
    assert indexes["unique"].tolist() == [True, False, True]
    fks = info.foreign_keys
    assert fks["columns"].tolist() == [["parent"]]
    assert fks["references"].tolist() == [f'{ODD_SQL}("Select")']
    defaults = dict(zip(info.columns["name"], info.columns["default"], strict=True))
    assert defaults["id"] == "nextval('child_id_seq'::regclass)"
    assert defaults["note"] is None


async def test_describe_shows_identity_and_generated_columns(odd_db: Database) -> None:
    info = await describe("empty", database=odd_db)
    assert info.columns["default"].tolist() == [
        "GENERATED ALWAYS AS IDENTITY",
        None,
        "GENERATED ALWAYS AS ((score * (2)::double precision)) STORED",
    ]


async def test_describe_repr_and_html(odd_db: Database) -> None:
    info = await describe(ODD, database=odd_db)
    shown = repr(info)
    assert shown.startswith(f"{ODD} (table)\n\ncolumns:\n")
    assert "indexes:" in shown
    assert "foreign keys:\n  (none)" in shown
    html = info._repr_html_()
    assert html.startswith("<h4>Odd Schema.Odd &quot;Name&quot;; DROP TABLE victim; --")
    assert "<td>two words</td>" in html


async def test_describe_a_temporary_table_of_the_session(session: AsyncSession) -> None:
    await session.execute(text("CREATE TEMP TABLE scratch (k text PRIMARY KEY, v int)"))
    info = await describe("scratch", session=session)
    assert info.columns["name"].tolist() == ["k", "v"]
    assert info.name.startswith("pg_temp")


async def test_describe_a_view(odd_db: Database) -> None:
    info = await describe("Odd Schema.Odd View", database=odd_db)
    assert info.kind == "view"
    assert info.columns["name"].tolist() == ["Select", "two words"]
    assert info.indexes.empty
    assert info.foreign_keys.empty


async def test_describe_takes_a_model_or_table(session: AsyncSession) -> None:
    by_model = await describe(User, session=session)
    assert by_model.name == "public.users"
    assert "email" in set(by_model.columns["name"])
    assert "ix_users_email" in set(by_model.indexes["name"])
    posts = await describe(Post.__table__, session=session)
    assert posts.foreign_keys["references"].tolist() == ["users(id)"]
