"""A Citus cluster to test against, and a TPC-H-like schema on it.

The cluster is the one ``TOOLKIT_CITUS_URL`` names (default: the coordinator that
``../shared/citus/cluster.sh start`` runs on 127.0.0.1:9700). Where no coordinator
answers, every test that needs it is skipped, with the reason and how to start one.

The tests run as a role of their own (created for the session, with its own schema on
its ``search_path``), not as a superuser: that is how an analyst meets Citus, and what
Citus must let such a role see is part of what is tested. Everything is dropped at the
end. The data is small (1,500 orders, 6,000 line items, 25 nations) and generated with
``generate_series``, so the tests need nothing but the cluster.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import pytest
from sqlalchemy import BigInteger, Column, Date, Integer, MetaData, Numeric, Table, Text
from sqlalchemy.engine import URL, make_url

from toolkit.database import Database

_runs = itertools.count()

DEFAULT_CITUS_URL = "postgresql://postgres@127.0.0.1:9700/postgres"
HOW_TO_START = (
    "start one with `../shared/citus/cluster.sh start` (as root; README, 'Where it runs') "
    "or point TOOLKIT_CITUS_URL at a coordinator"
)

ORDERS = 1_500
LINES_PER_ORDER = 4
NATIONS = 25

SCHEMA_SQL = [
    """CREATE TABLE nation (
        n_nationkey integer PRIMARY KEY,
        n_name text NOT NULL
    )""",
    """CREATE TABLE orders (
        o_orderkey bigint PRIMARY KEY,
        o_custkey integer NOT NULL,
        o_nationkey integer NOT NULL,
        o_orderdate date NOT NULL,
        o_totalprice numeric(12, 2) NOT NULL,
        o_comment text
    )""",
    """CREATE TABLE lineitem (
        l_orderkey bigint NOT NULL,
        l_linenumber integer NOT NULL,
        l_quantity numeric(12, 2) NOT NULL,
        l_extendedprice numeric(12, 2) NOT NULL,
        l_shipdate date NOT NULL,
        PRIMARY KEY (l_orderkey, l_linenumber)
    )""",
    "SELECT create_reference_table('nation')",
    "SELECT create_distributed_table('orders', 'o_orderkey')",
    "SELECT create_distributed_table('lineitem', 'l_orderkey', colocate_with => 'orders')",
    f"INSERT INTO nation SELECT i, 'nation ' || i FROM generate_series(0, {NATIONS - 1}) i",
    f"""INSERT INTO orders
        SELECT i, i % 100, i % {NATIONS}, date '2024-01-01' + i % 366, (i % 1000) * 1.25,
               'order ' || i
        FROM generate_series(1, {ORDERS}) i""",
    f"""INSERT INTO lineitem
        SELECT o, l, l * 2, o % 1000 * 0.5 + l, date '2024-01-05' + o % 366
        FROM generate_series(1, {ORDERS}) o, generate_series(1, {LINES_PER_ORDER}) l""",
    "ANALYZE nation",
    "ANALYZE orders",
    "ANALYZE lineitem",
]


def citus_url() -> URL:
    """The coordinator's URL (an administrator's: it creates the test role)."""
    return make_url(os.environ.get("TOOLKIT_CITUS_URL", "").strip() or DEFAULT_CITUS_URL)


def _dsn(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


async def why_no_citus(url: URL) -> str | None:
    """Why ``url`` is not a usable Citus coordinator, or None when it is."""
    shown = url.render_as_string(hide_password=True)
    try:
        conn = await asyncpg.connect(_dsn(url), timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return f"no Citus coordinator answers at {shown} ({type(exc).__name__}: {exc})"
    try:
        has_citus = await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')"
        )
        if not has_citus:
            return f"{shown} answers but has no citus extension"
        workers = await conn.fetchval(
            "SELECT count(*) FROM pg_dist_node WHERE groupid <> 0 AND isactive"
        )
        if not workers:
            return f"{shown} is a Citus node without active workers"
    finally:
        await conn.close()
    return None


@dataclass(frozen=True)
class CitusSchema:
    """The test role's view of the cluster: its URL, its schema, a ``Database`` on it,
    and ``Table`` objects for the bulk helpers."""

    url: URL
    schema: str
    db: Database
    orders: Table
    lineitem: Table
    nation: Table


def tables_of(schema: str) -> tuple[Table, Table, Table]:
    metadata = MetaData(schema=schema)
    orders = Table(
        "orders",
        metadata,
        Column("o_orderkey", BigInteger, primary_key=True),
        Column("o_custkey", Integer, nullable=False),
        Column("o_nationkey", Integer, nullable=False),
        Column("o_orderdate", Date, nullable=False),
        Column("o_totalprice", Numeric(12, 2), nullable=False),
        Column("o_comment", Text),
    )
    lineitem = Table(
        "lineitem",
        metadata,
        Column("l_orderkey", BigInteger, primary_key=True),
        Column("l_linenumber", Integer, primary_key=True),
        Column("l_quantity", Numeric(12, 2), nullable=False),
        Column("l_extendedprice", Numeric(12, 2), nullable=False),
        Column("l_shipdate", Date, nullable=False),
    )
    nation = Table(
        "nation",
        metadata,
        Column("n_nationkey", Integer, primary_key=True),
        Column("n_name", Text, nullable=False),
    )
    return orders, lineitem, nation


@pytest.fixture(scope="session")
async def citus_admin() -> URL:
    """The coordinator's administrator URL; the test is skipped where there is none."""
    url = citus_url()
    reason = await why_no_citus(url)
    if reason is not None:
        pytest.skip(f"{reason}; {HOW_TO_START}")
    return url


@pytest.fixture(scope="session")
async def citus(citus_admin: URL) -> AsyncIterator[CitusSchema]:
    """A role and schema of the session's own, holding ``orders`` and ``lineitem``
    (distributed by order key, co-located) and the reference table ``nation``."""
    name = f"tk_citus_{os.getpid()}_{next(_runs)}"  # each test module has its own
    database = citus_admin.database or "postgres"
    admin = await asyncpg.connect(_dsn(citus_admin), timeout=10)
    try:
        await _drop(admin, name, database)  # a killed run's
        await admin.execute(f"CREATE ROLE {name} LOGIN")
        await admin.execute(f"CREATE SCHEMA {name} AUTHORIZATION {name}")
        await admin.execute(f"ALTER ROLE {name} SET search_path = {name}, public")
        await admin.execute(f'GRANT CREATE ON DATABASE "{database}" TO {name}')
        url = citus_admin.set(username=name, password=None)
        conn = await asyncpg.connect(_dsn(url), timeout=10)
        try:
            for statement in SCHEMA_SQL:
                await conn.execute(statement)
        finally:
            await conn.close()
        orders, lineitem, nation = tables_of(name)
        async with Database(url) as db:
            yield CitusSchema(url, name, db, orders, lineitem, nation)
    finally:
        try:
            await _drop(admin, name, database)
        finally:
            await admin.close()


async def _drop(admin: asyncpg.Connection, name: str, database: str) -> None:
    """The role's schemas (its own and any a test made) and the role itself."""
    await admin.execute(f"DROP SCHEMA IF EXISTS {name}, {name}_w CASCADE")
    if await admin.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", name):
        await admin.execute(f'REVOKE CREATE ON DATABASE "{database}" FROM {name}')
        await admin.execute(f"DROP ROLE {name}")
