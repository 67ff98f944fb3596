"""What the explore tests share: the odd database.

Most tests run on a scratch database of their own (``odd_db``) holding tables with names
that need quoting - including one named like an injection, ``Odd "Name"; DROP TABLE
victim; --`` - so that a single unquoted identifier anywhere would fail or drop ``victim``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL

from toolkit.database import Database

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


@pytest.fixture(scope="package")
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
