"""toolkit.explore: tables, describe, sample, profile, explain, count_queries.

Most tests run on a scratch database of their own (``odd_db``) holding tables with names
that need quoting - including one named like an injection, ``Odd "Name"; DROP TABLE
victim; --`` - so that a single unquoted identifier anywhere would fail or drop ``victim``.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date
from decimal import Decimal
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import event, select, text, update
from sqlalchemy.engine import URL, Engine
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import lazyload, selectinload

import toolkit as tk
from toolkit import errors, frames
from toolkit.database import Database
from toolkit.explore import (
    NoSuchSchema,
    NoSuchTable,
    Plan,
    _contents,
    _counting,
    count_queries,
    describe,
    explain,
    profile,
    sample,
    tables,
)
from toolkit.frames import df
from toolkit.models import Post, User

ODD_SCHEMA = "Odd Schema"
ODD_NAME = 'Odd "Name"; DROP TABLE victim; --'
ODD = f"{ODD_SCHEMA}.{ODD_NAME}"
ODD_SQL = '"Odd Schema"."Odd ""Name""; DROP TABLE victim; --"'

SETUP = [
    "CREATE TABLE victim (id integer PRIMARY KEY)",
    "INSERT INTO victim VALUES (1)",
    'CREATE SCHEMA "Odd Schema"',
    "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')",
    f"""CREATE TABLE {ODD_SQL} (
        "Select" integer PRIMARY KEY,
        "two words" text NOT NULL DEFAULT 'x',
        "quote""d" numeric(10, 2),
        flag boolean,
        born date,
        feeling mood,
        doc jsonb,
        raw json,
        tags text[],
        blob bytea,
        spot point
    )""",
    f"""INSERT INTO {ODD_SQL} VALUES
        (1, 'a', 1.50, true, '2024-01-01', 'ok', '{{"a": 1}}', '{{"a": 1}}', '{{x}}', 'x', '(1,2)'),
        (2, 'b', 2.50, true, '2024-06-30', 'happy', '{{"a": 1}}', '{{"a":1}}', '{{x}}', 'y',
         '(1,2)'),
        (3, 'b', NULL, false, NULL, 'sad', '{{"b": 2}}', NULL, NULL, NULL, NULL),
        (4, 'c', NULL, NULL, '2023-12-31', NULL, NULL, NULL, '{{y,z}}', 'x', '(3,4)'),
        (5, 'c', 6.00, true, '2024-01-01', 'ok', NULL, '{{"a": 1}}', '{{}}', 'z', '(0,0)')
    """,
    f'CREATE VIEW "Odd Schema"."Odd View" AS SELECT "Select", "two words" FROM {ODD_SQL}',
    f"""CREATE TABLE child (
        id serial PRIMARY KEY,
        parent integer NOT NULL REFERENCES {ODD_SQL} ("Select"),
        note text,
        created_at timestamptz NOT NULL DEFAULT now()
    )""",
    "CREATE UNIQUE INDEX child_note_key ON child (note)",
    "CREATE INDEX child_lower_note ON child (lower(note))",
    "INSERT INTO child (parent, note) SELECT i % 5 + 1, 'note ' || i FROM generate_series(1, 50) i",
    "CREATE MATERIALIZED VIEW child_counts AS SELECT parent, count(*) AS n FROM child GROUP BY 1",
    "CREATE TABLE events (id integer, at date) PARTITION BY RANGE (at)",
    "CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')",
    "CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')",
    "INSERT INTO events SELECT i, date '2024-01-01' + i FROM generate_series(0, 599) i",
    "CREATE TABLE big (id integer PRIMARY KEY, label text)",
    "INSERT INTO big SELECT i, 'row ' || i FROM generate_series(1, 5000) i",
    """CREATE TABLE empty (
        id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        score real,
        doubled real GENERATED ALWAYS AS (score * 2) STORED
    )""",
    "ANALYZE",
]


@pytest.fixture(scope="module")
async def odd_db(make_database: Callable[..., Awaitable[URL]]) -> AsyncIterator[Database]:
    """A scratch database (not migrated) with the odd tables, committed."""
    url = await make_database(migrated=False)
    async with Database(url) as database:
        async with database.engine.begin() as conn:
            for statement in SETUP:
                await conn.exec_driver_sql(statement)
        yield database


async def _victim_intact(database: Database) -> None:
    async with database.engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM victim"))).scalar() == 1


# tables() -------------------------------------------------------------------------------


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


# describe() -----------------------------------------------------------------------------


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


async def test_an_unknown_table_suggests_the_closest_name(odd_db: Database) -> None:
    with pytest.raises(NoSuchTable, match=r"^no table named 'chidl'; did you mean 'child'\?$"):
        await describe("chidl", database=odd_db)
    with pytest.raises(NoSuchTable, match=r"did you mean 'Odd Schema.Odd View'\?"):
        await sample("odd schema.odd view", database=odd_db)


@pytest.mark.parametrize(
    ("sql", "suggested"),
    [
        ("select * from chidl", "child"),
        ("select c.* from big b join CHILDD c on true", "child"),
        ('select * from "Odd Schema"."Odd Veiw"', "Odd Schema.Odd View"),
        ("select * from public.evnets limit :n", "public.events"),
    ],
)
async def test_a_query_on_a_misspelt_table_suggests_the_closest_name(
    odd_db: Database, sql: str, suggested: str
) -> None:
    """tk.df, tk.stream_df, tk.explain and tk.paginate say what sample and describe say;
    the missing name is read from the statement at the position the server's error
    report gives."""
    params = {"n": 1} if ":n" in sql else None
    for read in (
        lambda: tk.df(sql, params, database=odd_db),
        lambda: _first_chunk(sql, odd_db),
        lambda: tk.explain(sql, params, database=odd_db),
        lambda: tk.paginate(sql, params=params, database=odd_db),
    ):
        with pytest.raises(tk.UndefinedTable) as caught:
            await read()

        assert f"did you mean {suggested!r}? (tk.tables() lists them)" in str(caught.value)
        assert str(caught.value).startswith("relation ")


async def _first_chunk(sql: str, database: Database) -> object:
    params = {"n": 1} if ":n" in sql else None
    async for chunk in tk.stream_df(sql, params, database=database):
        return chunk
    return None


async def test_a_misspelt_column_carries_the_servers_own_suggestion(odd_db: Database) -> None:
    with pytest.raises(tk.UndefinedColumn, match=r"Perhaps you meant to reference the column"):
        await tk.df("select nmae from child", database=odd_db)


async def test_a_missing_table_with_nothing_close_keeps_the_migrate_advice(
    odd_db: Database,
) -> None:
    with pytest.raises(tk.UndefinedTable, match="run `toolkit migrate`"):
        await tk.df("select * from zzzzqqqq", database=odd_db)


async def test_an_unknown_table_with_nothing_close_lists_the_tables(odd_db: Database) -> None:
    with pytest.raises(NoSuchTable) as caught:
        await profile("zzzzqqqq", database=odd_db)
    assert str(caught.value) == (
        "no table named 'zzzzqqqq' (tables: big, child, child_counts, empty, events, "
        f"events_2024, events_2025, victim, {ODD}, Odd Schema.Odd View)"
    )  # bare names for tables on the search path, schema.name for the others
    assert isinstance(caught.value, errors.UndefinedTable)
    assert isinstance(caught.value, errors.ToolkitError)
    assert caught.value.sqlstate == "42P01"


# sample() -------------------------------------------------------------------------------


async def test_sample_gives_the_first_rows_by_primary_key_with_exact_dtypes(
    odd_db: Database,
) -> None:
    frame = await sample(ODD, 3, database=odd_db)
    assert frame["Select"].tolist() == [1, 2, 3]
    whole = await df(f"SELECT * FROM {ODD_SQL} ORDER BY 1", database=odd_db)
    pd.testing.assert_frame_equal(frame, whole.head(3))
    await _victim_intact(odd_db)


async def test_sample_of_zero_rows_keeps_the_columns(odd_db: Database) -> None:
    frame = await sample("big", 0, database=odd_db)
    assert frame.empty
    assert list(frame.columns) == ["id", "label"]


async def test_random_sample_shuffles_a_small_table(odd_db: Database) -> None:
    draws = [tuple((await sample("big", 5, random=True, database=odd_db))["id"]) for _ in range(3)]
    assert all(len(set(d)) == 5 and all(1 <= i <= 5000 for i in d) for d in draws)
    assert len(set(draws)) > 1  # three identical draws of 5 from 5000: practically never
    everything = await sample(ODD, 50, random=True, database=odd_db)
    assert sorted(everything["Select"]) == [1, 2, 3, 4, 5]


async def test_random_sample_of_a_large_table_reads_a_tablesample(
    odd_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_contents, "TABLESAMPLE_FROM", 1_000)  # "big" has 5000 rows
    sent: list[str] = []
    real_df = frames.df

    async def spy(query: Any, *args: Any, **kwargs: Any) -> pd.DataFrame:
        sent.append(str(query.compile(compile_kwargs={"literal_binds": True})))
        return await real_df(query, *args, **kwargs)

    monkeypatch.setattr(_contents, "df", spy)
    frame = await sample("big", 5, random=True, database=odd_db)
    assert len(frame) == 5
    assert frame["id"].is_unique
    assert "TABLESAMPLE system(20.0)" in sent[0]
    assert "ORDER BY random()" in sent[0]


async def test_sample_validates_n(odd_db: Database) -> None:
    with pytest.raises(ValueError, match="n must be 0 or more"):
        await sample("big", -1, database=odd_db)
    with pytest.raises(TypeError, match="n must be an int"):
        await sample("big", "5", database=odd_db)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="n must be an int"):
        await sample("big", True, database=odd_db)


# profile() ------------------------------------------------------------------------------


async def test_profile_computes_known_statistics(odd_db: Database) -> None:
    frame = await profile(ODD, database=odd_db)
    assert list(frame.columns) == [
        "column",
        "type",
        "rows",
        "nulls",
        "null_pct",
        "distinct",
        "min",
        "max",
        "mean",
    ]
    stats = frame.set_index("column")
    assert (stats["rows"] == 5).all()

    def row(name: str) -> dict[str, Any]:
        values = stats.loc[name].to_dict()
        return {k: None if v is pd.NA or v is None else v for k, v in values.items()}

    assert row("Select") == {
        "type": "integer",
        "rows": 5,
        "nulls": 0,
        "null_pct": 0.0,
        "distinct": 5,
        "min": 1,
        "max": 5,
        "mean": 3.0,
    }
    words = row("two words")
    assert (words["distinct"], words["min"], words["max"], words["mean"]) == (3, "a", "c", None)
    money = row('quote"d')
    assert (money["nulls"], money["null_pct"], money["distinct"]) == (2, 40.0, 3)
    assert (money["min"], money["max"]) == (Decimal("1.50"), Decimal("6.00"))
    assert money["mean"] == pytest.approx(10 / 3)
    flag = row("flag")
    assert (flag["nulls"], flag["distinct"], flag["min"], flag["max"]) == (1, 2, None, None)
    assert flag["mean"] == 0.75  # the share of true values
    born = row("born")
    assert (born["min"], born["max"], born["distinct"]) == (
        date(2023, 12, 31),
        date(2024, 6, 30),
        3,
    )
    feeling = row("feeling")  # enums sort in declaration order, not alphabetically
    assert (feeling["min"], feeling["max"], feeling["distinct"]) == ("sad", "happy", 3)
    assert row("doc")["distinct"] == 2  # jsonb: equal values
    assert row("raw")["distinct"] == 2  # json has no equality: compared by text
    for name in ("doc", "raw", "tags", "blob", "spot"):
        assert (row(name)["min"], row(name)["max"], row(name)["mean"]) == (None, None, None)
    assert row("tags")["distinct"] == 3
    assert row("spot")["distinct"] == 3  # point has no equality either
    assert frame["nulls"].dtype == "Int64"
    assert frame["mean"].dtype == "Float64"
    await _victim_intact(odd_db)


async def test_profile_is_one_statement(odd_db: Database) -> None:
    with count_queries() as queries:
        await profile("child", database=odd_db)
    profiling = [s for s in queries.statements if "count(DISTINCT" in s]
    assert len(profiling) == 1
    assert profiling[0].count("FROM") == 1  # one scan, no subqueries


async def test_profile_of_an_empty_table(odd_db: Database) -> None:
    frame = await profile("empty", database=odd_db)
    assert frame["rows"].tolist() == [0, 0, 0]
    assert frame["null_pct"].isna().all()
    assert frame["distinct"].tolist() == [0, 0, 0]
    assert frame["min"].isna().all()
    assert frame["mean"].isna().all()


async def test_profile_in_a_session_sees_its_rows(session: AsyncSession) -> None:
    session.add_all([User(email=f"profile{i}@example.com", name=f"P{i % 2}") for i in range(4)])
    await session.flush()
    frame = (await profile("users", session=session)).set_index("column")
    assert frame.loc["email", "rows"] >= 4
    assert frame.loc["email", "distinct"] == frame.loc["email", "rows"]


# explain() ------------------------------------------------------------------------------


async def _server_text(database: Database, sql: str) -> str:
    async with database.engine.connect() as conn:
        return "\n".join((await conn.execute(text(f"EXPLAIN {sql}"))).scalars())


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM big WHERE id = 7",
        "SELECT * FROM big ORDER BY id DESC LIMIT 3",
        f'SELECT c.note, o."two words" FROM child c JOIN {ODD_SQL} o ON o."Select" = c.parent',
        "SELECT parent, count(*) FROM child GROUP BY parent ORDER BY 2 DESC",
        'SELECT * FROM child WHERE parent IN (SELECT "Select" FROM ' + ODD_SQL + ")",
        "SELECT (SELECT max(id) FROM big), * FROM child WHERE note LIKE 'note 1%'",
        "SELECT * FROM events WHERE at > date '2025-03-01'",
        "SELECT * FROM generate_series(1, 3) g UNION SELECT id FROM empty",
    ],
)
async def test_explain_text_matches_postgres_own_text(odd_db: Database, sql: str) -> None:
    plan = await explain(sql, database=odd_db)
    assert plan.text == await _server_text(odd_db, sql)


async def test_a_parallel_plan_matches_too(odd_db: Database) -> None:
    async with odd_db.session() as s:
        for setting in (
            "parallel_setup_cost",
            "parallel_tuple_cost",
            "min_parallel_table_scan_size",
        ):
            await s.execute(text(f"SET LOCAL {setting} = 0"))
        sql = "SELECT label, count(*) FROM big GROUP BY label"
        plan = await explain(sql, session=s)
        server = "\n".join((await s.execute(text(f"EXPLAIN {sql}"))).scalars())
    assert "Workers Planned:" in plan.text
    assert plan.text == server


async def test_explain_a_select_with_bound_parameters(session: AsyncSession) -> None:
    name = "o'hara; DROP TABLE users"
    plan = await explain(select(User).where(User.name == name), session=session)
    assert "$1" in plan.sql
    assert name not in plan.sql
    assert plan.json["Plan"]["Relation Name"] == "users"
    text_plan = await explain("SELECT * FROM users WHERE name = :n", {"n": name}, session=session)
    assert "o''hara; DROP TABLE users" in text_plan.text  # the value, quoted by the server
    assert not text_plan.analyzed
    assert text_plan.execution_ms is None


async def test_a_plan_as_a_dataframe_and_its_numbers(odd_db: Database) -> None:
    sql = f'SELECT * FROM child c JOIN {ODD_SQL} o ON o."Select" = c.parent'
    plan = await explain(sql, database=odd_db)
    nodes = plan.to_df()
    assert list(nodes.columns) == [
        "depth",
        "node_type",
        "relation",
        "index",
        "startup_cost",
        "total_cost",
        "plan_rows",
    ]
    assert nodes["depth"].iloc[0] == 0
    assert set(nodes["relation"].dropna()) == {"child", ODD_NAME}
    assert nodes["total_cost"].iloc[0] == plan.total_cost == plan.json["Plan"]["Total Cost"]
    assert len(nodes) == plan.text.count("->  ") + 1
    assert isinstance(plan, Plan)
    assert repr(plan) == plan.text
    assert plan._repr_html_().startswith("<pre>")
    assert "&quot;" in plan._repr_html_()


async def test_explain_analyze_reports_actual_rows_and_times(odd_db: Database) -> None:
    plan = await explain("SELECT * FROM big WHERE id <= 10", analyze=True, database=odd_db)
    assert plan.analyzed
    assert plan.execution_ms is not None
    assert plan.execution_ms >= 0
    assert plan.planning_ms is not None
    nodes = plan.to_df()
    assert nodes["actual_rows"].iloc[0] == 10
    assert nodes["actual_loops"].iloc[0] == 1
    assert {"actual_startup_ms", "actual_total_ms"} <= set(nodes.columns)
    assert "(actual time=" in plan.text
    assert "Execution Time:" in plan.text
    server = await _server_text(odd_db, "(ANALYZE) SELECT * FROM big WHERE id <= 10")

    def titles(plan_text: str) -> list[str]:
        return [
            re.sub(r"\d+(\.\d+)?", "N", line) for line in plan_text.splitlines() if "cost=" in line
        ]

    assert titles(plan.text) == titles(server)


async def test_explain_analyze_of_an_update_changes_nothing(session: AsyncSession) -> None:
    user = User(email="explain@example.com", name="before")
    session.add(user)
    await session.flush()
    statement = update(User).where(User.id == user.id).values(name="after")
    plan = await explain(statement, analyze=True, session=session)
    assert plan.json["Plan"]["Node Type"] == "ModifyTable"
    assert plan.text.startswith("Update on users")
    name = await session.scalar(select(User.name).where(User.id == user.id))
    assert name == "before"
    await session.refresh(user)
    assert user.name == "before"


async def test_explain_analyze_on_its_own_connection_rolls_back(odd_db: Database) -> None:
    plan = await explain("DELETE FROM child WHERE parent = 1", analyze=True, database=odd_db)
    assert plan.to_df()["actual_rows"].iloc[-1] == 10  # the scan found the rows it deleted
    async with odd_db.engine.connect() as conn:
        left = (await conn.execute(text("SELECT count(*) FROM child WHERE parent = 1"))).scalar()
    assert left == 10


async def test_a_failing_analyze_leaves_the_session_usable(session: AsyncSession) -> None:
    with pytest.raises(errors.DatabaseError, match="division by zero"):
        await explain("SELECT 1 / 0", analyze=True, session=session)
    assert await session.scalar(select(User.id).limit(0)) is None
    assert (await session.execute(text("SELECT 2"))).scalar() == 2


# count_queries() ------------------------------------------------------------------------


async def _users_with_posts(session: AsyncSession, count: int = 5) -> None:
    for i in range(count):
        user = User(email=f"nplus1-{i}@example.com", name=f"N{i}")
        user.posts = [Post(title=f"t{i}{j}", content="c") for j in range(2)]
        session.add(user)
    await session.flush()
    session.expunge_all()  # the loops below start from an empty identity map


def _ours() -> Any:
    return select(User).where(User.email.like("nplus1-%")).order_by(User.id)


async def test_a_lazy_loading_loop_is_one_plus_n_statements(session: AsyncSession) -> None:
    await _users_with_posts(session)
    with count_queries() as q:
        users = (await session.scalars(_ours().options(lazyload(User.posts)))).all()
        titles = [len(await user.awaitable_attrs.posts) for user in users]
    assert titles == [2] * 5
    assert q.count == 1 + 5
    assert all("FROM posts" in statement for statement in q.statements[1:])
    assert "6 statements" in repr(q)


async def test_selectinload_is_two_statements(session: AsyncSession) -> None:
    await _users_with_posts(session)
    with count_queries() as q:
        users = (await session.scalars(_ours().options(selectinload(User.posts)))).all()
        titles = [len(await user.awaitable_attrs.posts) for user in users]
    assert titles == [2] * 5
    assert q.count == 2


async def test_only_the_current_task_is_counted(db: Database) -> None:
    async def work(statements: int) -> int:
        with count_queries() as q:
            async with db.engine.connect() as conn:
                for _ in range(statements):
                    await conn.execute(text("SELECT 1"))
                    await asyncio.sleep(0)  # let the other task run in between
        return q.count

    async def uncounted() -> None:
        async with db.engine.connect() as conn:
            for _ in range(10):
                await conn.execute(text("SELECT 2"))
                await asyncio.sleep(0)

    assert await asyncio.gather(work(3), work(5), uncounted()) == [3, 5, None]


async def test_nested_blocks_and_the_listener_is_removed(db: Database) -> None:
    with count_queries() as outer:
        async with db.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            with count_queries() as inner:
                await conn.execute(text("SELECT 2"))
            assert event.contains(Engine, "before_cursor_execute", _counting._record)
            await conn.execute(text("SELECT 3"))
    assert inner.statements == ["SELECT 2"]
    assert outer.statements == ["SELECT 1", "SELECT 2", "SELECT 3"]
    assert not event.contains(Engine, "before_cursor_execute", _counting._record)
    async with db.engine.connect() as conn:
        await conn.execute(text("SELECT 4"))
    assert outer.count == 3
