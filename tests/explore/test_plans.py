"""explain(): the plan as psql's text (compared with the server's own), JSON and a DataFrame."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from tests.explore.conftest import ODD_NAME, ODD_SQL
from toolkit import errors
from toolkit.database import Database
from toolkit.explore import Plan, explain
from toolkit.models import User


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
