"""On a Citus coordinator: what the catalog helpers say of distributed and reference
tables, how plans read, that every public helper works on them, and that a query Citus
refuses says what Citus advises.

The cluster and its TPC-H-like tables come from ``citus_conftest`` (``orders`` and
``lineitem`` distributed by order key and co-located, ``nation`` a reference table);
everything here is skipped, with the reason, where no coordinator answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import asyncpg
import pandas as pd
import pytest
from sqlalchemy import BigInteger, Column, MetaData, Table, Text, func, select, text

import toolkit as tk
from tests.conftest import spy_on_copy
from tests.engines import citus_conftest
from tests.engines.citus_conftest import (
    LINES_PER_ORDER,
    NATIONS,
    ORDERS,
    CitusSchema,
    _dsn,
    tables_of,
)
from toolkit.explore import _contents
from toolkit.frames import _estimate

pytestmark = [pytest.mark.slow, pytest.mark.engine]
citus_admin = citus_conftest.citus_admin  # the fixtures, used here
citus = citus_conftest.citus


# tables() -------------------------------------------------------------------------------


async def test_tables_give_distributed_tables_the_rows_and_size_of_their_shards(
    citus: CitusSchema,
) -> None:
    frame = await tk.tables(citus.schema, database=citus.db)
    rows = {r.name: r for r in frame.itertuples(index=False)}
    assert rows["orders"].estimated_rows == ORDERS  # the coordinator's shell says 0
    assert rows["lineitem"].estimated_rows == ORDERS * LINES_PER_ORDER
    assert rows["nation"].estimated_rows == NATIONS  # one copy, not one per node
    # 32 shards of at least one 8 kB page each, where the shell alone is 8 kB
    assert rows["orders"].total_bytes >= 32 * 8192
    assert rows["lineitem"].total_bytes > rows["orders"].total_bytes
    assert frame["estimated_rows"].dtype == "Int64"


async def test_tables_mark_distributed_and_reference_tables(citus: CitusSchema) -> None:
    frame = await tk.tables(citus.schema, database=citus.db)
    assert list(frame.columns[-4:]) == [
        "citus_table_type",
        "distribution_column",
        "colocation_id",
        "shard_count",
    ]
    rows = {r.name: r for r in frame.itertuples(index=False)}
    assert rows["orders"].citus_table_type == "distributed"
    assert rows["orders"].distribution_column == "o_orderkey"
    assert rows["lineitem"].distribution_column == "l_orderkey"
    assert rows["orders"].colocation_id == rows["lineitem"].colocation_id
    assert rows["orders"].shard_count == 32  # citus.shard_count's default
    assert rows["nation"].citus_table_type == "reference"
    assert pd.isna(rows["nation"].distribution_column)
    assert rows["nation"].shard_count == 1


async def test_tables_and_describe_in_a_session_see_the_distribution_too(
    citus: CitusSchema,
) -> None:
    async with citus.db.session() as s:
        frame = await tk.tables(citus.schema, session=s)
        described = await tk.describe("lineitem", session=s)
    rows = frame.set_index("name")
    assert rows.loc["lineitem", "estimated_rows"] == ORDERS * LINES_PER_ORDER
    assert rows.loc["lineitem", "distribution_column"] == "l_orderkey"
    assert described.distribution is not None
    assert described.distribution.distribution_column == "l_orderkey"


async def test_tables_leave_out_citus_own_objects(citus: CitusSchema) -> None:
    frame = await tk.tables(database=citus.db)
    names = set(frame["name"])
    assert {"orders", "lineitem", "nation"} <= names
    assert not names & {"citus_tables", "citus_schemas", "citus_shards", "citus_lock_waits"}
    assert not frame["name"].str.startswith("pg_dist").any()
    assert not frame["schema"].isin(["citus", "citus_internal", "columnar"]).any()


async def test_a_plain_table_on_the_coordinator_keeps_its_own_numbers(
    citus: CitusSchema,
) -> None:
    async with citus.db.engine.begin() as conn:
        await conn.execute(text("CREATE TABLE IF NOT EXISTS local_notes (id int PRIMARY KEY)"))
        await conn.execute(text("INSERT INTO local_notes SELECT generate_series(1, 300)"))
        await conn.execute(text("ANALYZE local_notes"))
    try:
        frame = await tk.tables(citus.schema, database=citus.db)
        notes = frame.set_index("name").loc["local_notes"]
        assert notes["estimated_rows"] == 300
        assert pd.isna(notes["citus_table_type"])
    finally:
        async with citus.db.engine.begin() as conn:
            await conn.execute(text("DROP TABLE local_notes"))


# describe() -----------------------------------------------------------------------------


async def test_describe_shows_the_distribution(citus: CitusSchema) -> None:
    orders = await tk.describe("orders", database=citus.db)
    lineitem = await tk.describe("lineitem", database=citus.db)
    assert orders.distribution is not None
    assert lineitem.distribution is not None
    assert orders.distribution.citus_table_type == "distributed"
    assert orders.distribution.distribution_column == "o_orderkey"
    assert orders.distribution.shard_count == 32
    assert orders.distribution.nodes == 2
    assert orders.distribution.colocation_id == lineitem.distribution.colocation_id
    shown = repr(orders)
    group = orders.distribution.colocation_id
    assert f"distributed by o_orderkey, colocation group {group}, " in shown
    assert "32 shards on 2 nodes" in shown
    assert "32 shards" in orders._repr_html_()


async def test_describe_a_reference_table(citus: CitusSchema) -> None:
    nation = await tk.describe("nation", database=citus.db)
    assert nation.distribution is not None
    assert nation.distribution.citus_table_type == "reference"
    assert nation.distribution.distribution_column is None
    assert "reference table: a copy on each of" in repr(nation)


async def test_a_plain_table_has_no_distribution(citus: CitusSchema) -> None:
    async with citus.db.session() as s:
        await s.execute(text("CREATE TEMPORARY TABLE scratch (id int PRIMARY KEY) ON COMMIT DROP"))
        described = await tk.describe("scratch", session=s)
    assert described.distribution is None
    assert "distributed" not in repr(described)


# explain() ------------------------------------------------------------------------------


async def _citus_text(citus: CitusSchema, sql: str) -> str:
    async with citus.db.engine.connect() as conn:
        return "\n".join((await conn.execute(text(f"EXPLAIN {sql}"))).scalars())


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT count(*) FROM lineitem WHERE l_quantity > 3",  # every shard
        "SELECT * FROM orders WHERE o_orderkey = 42",  # one shard: a router query
        "SELECT o_orderdate, sum(l_quantity) FROM orders JOIN lineitem ON l_orderkey ="
        " o_orderkey GROUP BY 1 ORDER BY 2 DESC LIMIT 5",  # co-located join
        "SELECT n_name, count(*) FROM orders JOIN nation ON n_nationkey = o_nationkey"
        " GROUP BY 1",  # with the reference table
        "INSERT INTO orders SELECT o_orderkey + 1000000, o_custkey, o_nationkey,"
        " o_orderdate, o_totalprice, o_comment FROM orders",  # INSERT ... SELECT
    ],
)
async def test_explain_text_matches_citus_own_text(citus: CitusSchema, sql: str) -> None:
    plan = await tk.explain(sql, database=citus.db)
    assert plan.text == await _citus_text(citus, sql)
    assert "Custom Scan (Citus" in plan.text


async def test_a_subplan_reads_as_citus_prints_it(citus: CitusSchema) -> None:
    sql = (
        "WITH top AS (SELECT o_orderkey FROM orders ORDER BY o_totalprice DESC LIMIT 5)"
        " SELECT count(*) FROM lineitem WHERE l_orderkey IN (SELECT o_orderkey FROM top)"
    )
    plan = await tk.explain(sql, database=citus.db)
    # Citus numbers a subplan by an id the JSON does not carry; the rest is the same
    ours = plan.text.replace("Distributed Subplan 1", "Distributed Subplan N")
    theirs = [
        line.split("Distributed Subplan")[0] + "Distributed Subplan N"
        if "Distributed Subplan" in line
        else line
        for line in (await _citus_text(citus, sql)).splitlines()
    ]
    assert ours == "\n".join(theirs)


async def test_task_count_tells_a_router_query_from_a_fan_out(citus: CitusSchema) -> None:
    router = await tk.explain("SELECT * FROM orders WHERE o_orderkey = 42", database=citus.db)
    fan_out = await tk.explain("SELECT * FROM orders WHERE o_custkey = 42", database=citus.db)
    assert router.task_count == 1
    assert fan_out.task_count == 32
    assert "Task Count: 32" in fan_out.text
    assert "Tasks Shown: One of 32" in fan_out.text


async def test_the_nodes_include_the_plan_a_worker_ran(citus: CitusSchema) -> None:
    plan = await tk.explain(
        "SELECT count(*) FROM lineitem WHERE l_quantity > 3", analyze=True, database=citus.db
    )
    frame = plan.to_df()
    assert "Custom Scan" in set(frame["node_type"])
    shard_scans = frame[frame["relation"].str.startswith("lineitem_", na=False)]
    assert len(shard_scans) == 1  # one task shown, scanning one shard
    assert (
        shard_scans["depth"].iloc[0] > frame[frame["node_type"] == "Custom Scan"]["depth"].iloc[0]
    )
    assert "Tuple data received from nodes" in plan.text
    assert plan.execution_ms is not None


async def test_explain_analyze_of_a_multi_shard_update_changes_nothing(
    citus: CitusSchema,
) -> None:
    plan = await tk.explain(
        "UPDATE orders SET o_comment = 'explained' WHERE o_custkey = 7",
        analyze=True,
        database=citus.db,
    )
    assert plan.task_count == 32
    changed = await tk.df(
        "SELECT count(*) AS n FROM orders WHERE o_comment = 'explained'", database=citus.db
    )
    assert changed["n"].iloc[0] == 0  # rolled back on every worker


async def test_a_plain_plan_has_no_task_count(citus: CitusSchema) -> None:
    plan = await tk.explain("SELECT 1", database=citus.db)
    assert plan.task_count is None


# every read helper on distributed and reference tables ---------------------------------


async def test_df_reads_a_distributed_table_by_copy_and_by_rows(
    citus: CitusSchema, monkeypatch: pytest.MonkeyPatch
) -> None:
    used = spy_on_copy(monkeypatch)
    sql = "SELECT * FROM lineitem ORDER BY l_orderkey, l_linenumber"
    monkeypatch.setattr(_estimate, "COPY_THRESHOLD", 1)
    by_copy = await tk.df(sql, database=citus.db)
    monkeypatch.setattr(_estimate, "COPY_THRESHOLD", 10**12)
    by_rows = await tk.df(sql, database=citus.db)
    assert used == [True]  # the second read took the row path
    assert len(by_copy) == ORDERS * LINES_PER_ORDER
    pd.testing.assert_frame_equal(by_copy, by_rows)
    assert by_copy["l_quantity"].iloc[0] == Decimal("2.00")
    assert by_copy["l_shipdate"].iloc[0] == dt.date(2024, 1, 6)


async def test_df_of_a_router_query_and_a_join_with_the_reference_table(
    citus: CitusSchema,
) -> None:
    one = await tk.df(
        "SELECT * FROM orders WHERE o_orderkey = :key", {"key": 42}, database=citus.db
    )
    assert one["o_comment"].tolist() == ["order 42"]
    joined = await tk.df(
        "SELECT n_name, count(*) AS n FROM orders JOIN nation ON n_nationkey = o_nationkey"
        " GROUP BY n_name ORDER BY n_name",
        database=citus.db,
    )
    assert len(joined) == NATIONS
    assert joined["n"].sum() == ORDERS


async def test_stream_df_walks_a_distributed_table_in_chunks(citus: CitusSchema) -> None:
    sizes = []
    keys: list[int] = []
    async for chunk in tk.stream_df(
        "SELECT o_orderkey FROM orders ORDER BY o_orderkey", chunk_size=400, database=citus.db
    ):
        sizes.append(len(chunk))
        keys += chunk["o_orderkey"].tolist()
    assert sizes == [400, 400, 400, 300]
    assert keys == list(range(1, ORDERS + 1))


async def test_a_parallel_read_of_a_distributed_table_is_one_stream_saying_why(
    citus: CitusSchema, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The coordinator's snapshot does not reach the workers: no split could be one moment."""
    from toolkit.frames import _parallel

    monkeypatch.setattr(_parallel, "_said", set())
    sql = "SELECT * FROM orders ORDER BY o_orderkey"
    with pytest.warns(tk.ToolkitWarning, match="Citus coordinator"):
        frame = await tk.df(sql, database=citus.db, parallel=2, partition_on="o_orderkey")
    pd.testing.assert_frame_equal(frame, await tk.df(sql, database=citus.db))


async def test_keyset_walks_a_distributed_table_on_its_composite_key(
    citus: CitusSchema,
) -> None:
    line = citus.lineitem
    query = select(line.c.l_orderkey, line.c.l_linenumber)
    seen: list[tuple[int, int]] = []
    async with contextlib.aclosing(
        tk.keyset(query, key=[line.c.l_orderkey, line.c.l_linenumber], size=1000, database=citus.db)
    ) as pages:
        async for page in pages:
            seen += [(r.l_orderkey, r.l_linenumber) for r in page.items]
    assert len(seen) == ORDERS * LINES_PER_ORDER
    assert seen == sorted(seen)
    assert len(set(seen)) == len(seen)


async def test_paginate_a_reference_table_and_a_distributed_one(citus: CitusSchema) -> None:
    nation = citus.nation
    page = await tk.paginate(
        select(nation).order_by(nation.c.n_nationkey), page=3, size=10, database=citus.db
    )
    assert page.total == NATIONS
    assert [r.n_nationkey for r in page.items] == [20, 21, 22, 23, 24]
    orders = citus.orders
    page = await tk.paginate(
        select(orders.c.o_orderkey).order_by(orders.c.o_orderkey.desc()),
        page=2,
        size=100,
        database=citus.db,
    )
    assert page.total == ORDERS
    assert page.items[0].o_orderkey == ORDERS - 100


async def test_sample_and_profile_a_distributed_table(citus: CitusSchema) -> None:
    first = await tk.sample("orders", 3, database=citus.db)
    assert first["o_orderkey"].tolist() == [1, 2, 3]
    shuffled = await tk.sample("lineitem", 5, random=True, database=citus.db)
    assert len(shuffled) == 5
    profile = (await tk.profile("orders", database=citus.db)).set_index("column")
    assert profile.loc["o_orderkey", "rows"] == ORDERS
    assert profile.loc["o_orderkey", "distinct"] == ORDERS
    assert profile.loc["o_custkey", "distinct"] == 100
    assert profile.loc["o_comment", "nulls"] == 0


async def test_a_random_sample_of_a_large_distributed_table_reads_a_tablesample(
    citus: CitusSchema, monkeypatch: pytest.MonkeyPatch
) -> None:
    # lineitem's 6000 rows are in its shards; the coordinator's shell estimates 0
    monkeypatch.setattr(_contents, "TABLESAMPLE_FROM", 1_000)
    sent: list[str] = []
    real_df = tk.frames.df

    async def spy(query: Any, *args: Any, **kwargs: Any) -> pd.DataFrame:
        sent.append(str(query.compile(compile_kwargs={"literal_binds": True})))
        return await real_df(query, *args, **kwargs)

    monkeypatch.setattr(_contents, "df", spy)
    frame = await tk.sample("lineitem", 5, random=True, database=citus.db)
    assert len(frame) == 5
    assert "TABLESAMPLE system" in sent[0]


async def test_count_queries_on_the_coordinator(citus: CitusSchema) -> None:
    with tk.count_queries() as counted:
        async with citus.db.session() as s:
            await s.execute(select(func.count()).select_from(citus.orders))
    assert counted.count == 1


# every write helper ---------------------------------------------------------------------


@pytest.fixture
async def scratch(citus: CitusSchema) -> AsyncIterator[CitusSchema]:
    """Empty copies of the three tables, distributed the same way, in a schema of their
    own (so a write test cannot disturb the read tests), dropped after the test."""
    schema = f"{citus.schema}_w"
    conn = await asyncpg.connect(_dsn(citus.url), timeout=10)
    try:
        await conn.execute(f"CREATE SCHEMA {schema}")
        for name in ("nation", "orders", "lineitem"):
            await conn.execute(
                f"CREATE TABLE {schema}.{name} (LIKE {citus.schema}.{name} INCLUDING ALL)"
            )
        await conn.execute(f"SELECT create_reference_table('{schema}.nation')")
        await conn.execute(f"SELECT create_distributed_table('{schema}.orders', 'o_orderkey')")
        await conn.execute(
            f"SELECT create_distributed_table('{schema}.lineitem', 'l_orderkey',"
            f" colocate_with => '{schema}.orders')"
        )
        orders, lineitem, nation = tables_of(schema)
        yield CitusSchema(citus.url, schema, citus.db, orders, lineitem, nation)
    finally:
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await conn.close()


def _orders(keys: range) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "o_orderkey": list(keys),
            "o_custkey": [k % 7 for k in keys],
            "o_nationkey": [k % NATIONS for k in keys],
            "o_orderdate": [dt.date(2025, 1, 1)] * len(keys),
            "o_totalprice": [Decimal("9.99")] * len(keys),
            "o_comment": [f"new {k}" for k in keys],
        }
    )


async def _count(db: tk.Database, sql: str) -> int:
    async with db.engine.connect() as conn:
        return int((await conn.execute(text(sql))).scalar_one())


async def test_bulk_insert_copies_rows_into_a_distributed_table(scratch: CitusSchema) -> None:
    inserted = await tk.bulk_insert(scratch.orders, _orders(range(1, 2001)), database=scratch.db)
    assert inserted == 2000
    assert await _count(scratch.db, f"SELECT count(*) FROM {scratch.schema}.orders") == 2000
    # the rows went to the shards (the coordinator's shell stays empty)
    async with scratch.db.engine.begin() as conn:
        await conn.execute(text(f"ANALYZE {scratch.schema}.orders"))
        shell = await conn.execute(text(f"SELECT count(*) FROM ONLY {scratch.schema}.orders"), {})
    rows = (await tk.tables(scratch.schema, database=scratch.db)).set_index("name")
    assert rows.loc["orders", "estimated_rows"] == 2000
    assert shell.scalar_one() == 2000  # Citus routes even ONLY to the shards
    nations = await tk.bulk_insert(
        scratch.nation,
        [{"n_nationkey": 1, "n_name": "one"}, {"n_nationkey": 2, "n_name": "two"}],
        database=scratch.db,
    )
    assert nations == 2


async def test_bulk_insert_returning_keys_of_a_distributed_bigserial_table(
    scratch: CitusSchema,
) -> None:
    async with scratch.db.engine.begin() as conn:
        await conn.execute(
            text(f"CREATE TABLE {scratch.schema}.events (id bigserial PRIMARY KEY, what text)")
        )
        await conn.execute(
            text(f"SELECT create_distributed_table('{scratch.schema}.events', 'id')")
        )
    events = Table(
        "events",
        MetaData(schema=scratch.schema),
        Column("id", BigInteger, primary_key=True),
        Column("what", Text),
    )
    keys = await tk.bulk_insert(
        events, [{"what": f"event {i}"} for i in range(300)], returning=True, database=scratch.db
    )
    assert isinstance(keys, list)
    assert len(set(keys)) == len(keys) == 300
    stored = await tk.df(
        f"SELECT id, what FROM {scratch.schema}.events ORDER BY id", database=scratch.db
    )
    assert stored["id"].tolist() == sorted(keys)


async def test_bulk_update_upsert_and_bulk_delete_on_distributed_and_reference_tables(
    scratch: CitusSchema,
) -> None:
    db, schema = scratch.db, scratch.schema
    await tk.bulk_insert(scratch.orders, _orders(range(1, 101)), database=db)
    updated = await tk.bulk_update(
        scratch.orders,
        [{"o_orderkey": k, "o_comment": f"updated {k}"} for k in range(1, 51)],
        database=db,
    )
    assert updated == 50
    changed = await _count(db, f"SELECT count(*) FROM {schema}.orders WHERE o_comment LIKE 'up%'")
    assert changed == 50

    upserted = await tk.upsert(scratch.orders, _orders(range(91, 111)), database=db)
    assert upserted == 20  # 10 updated, 10 inserted
    assert await _count(db, f"SELECT count(*) FROM {schema}.orders") == 110

    await tk.upsert(scratch.nation, [{"n_nationkey": 1, "n_name": "one"}], database=db)
    await tk.upsert(scratch.nation, [{"n_nationkey": 1, "n_name": "uno"}], database=db)
    names = await tk.df(f"SELECT n_name FROM {schema}.nation", database=db)
    assert names["n_name"].tolist() == ["uno"]
    await tk.bulk_insert(scratch.nation, [{"n_nationkey": 2, "n_name": "two"}], database=db)
    renamed = await tk.bulk_update(
        scratch.nation, [{"n_nationkey": 2, "n_name": "dos"}], database=db
    )
    assert renamed == 1
    assert await tk.bulk_delete(scratch.nation, [1], database=db) == 1
    names = await tk.df(f"SELECT n_name FROM {schema}.nation", database=db)
    assert names["n_name"].tolist() == ["dos"]

    deleted = await tk.bulk_delete(scratch.orders, list(range(1, 11)), database=db)
    assert deleted == 10
    deleted = await tk.bulk_delete(scratch.orders, scratch.orders.c.o_custkey == 3, database=db)
    assert deleted == await _count(db, "SELECT 0") + len([k for k in range(11, 111) if k % 7 == 3])
    assert await _count(db, f"SELECT count(*) FROM {schema}.orders WHERE o_custkey = 3") == 0


async def test_bulk_update_of_a_composite_key_in_a_co_located_table(
    scratch: CitusSchema,
) -> None:
    rows = [
        {"l_orderkey": o, "l_linenumber": n, "l_quantity": Decimal(1), "l_extendedprice":
         Decimal(2), "l_shipdate": dt.date(2025, 2, 1)}
        for o in range(1, 201)
        for n in (1, 2)
    ]  # fmt: skip
    assert await tk.bulk_insert(scratch.lineitem, rows, database=scratch.db) == 400
    updated = await tk.bulk_update(
        scratch.lineitem,
        [{"l_orderkey": o, "l_linenumber": 2, "l_quantity": Decimal(5)} for o in range(1, 201)],
        database=scratch.db,
    )
    assert updated == 200
    total = await tk.df(
        f"SELECT sum(l_quantity) AS q FROM {scratch.schema}.lineitem", database=scratch.db
    )
    assert total["q"].iloc[0] == Decimal(200 * 1 + 200 * 5)


async def test_to_table_appends_to_a_distributed_table(scratch: CitusSchema) -> None:
    written = await tk.to_table(
        _orders(range(500, 800)),
        "orders",
        schema=scratch.schema,
        if_exists="append",
        database=scratch.db,
    )
    assert written == 300
    frame = await tk.tables(scratch.schema, database=scratch.db)
    assert frame.set_index("name").loc["orders", "citus_table_type"] == "distributed"
    assert await _count(scratch.db, f"SELECT count(*) FROM {scratch.schema}.orders") == 300


async def test_to_table_creates_a_table_on_the_coordinator_that_can_then_be_distributed(
    scratch: CitusSchema,
) -> None:
    await tk.to_table(
        _orders(range(1, 301)), "imported", schema=scratch.schema, database=scratch.db
    )
    async with scratch.db.engine.begin() as conn:
        await conn.execute(
            text(f"SELECT create_distributed_table('{scratch.schema}.imported', 'o_orderkey')")
        )
    async with scratch.db.engine.begin() as conn:
        await conn.execute(text(f"ANALYZE {scratch.schema}.imported"))
    rows = (await tk.tables(scratch.schema, database=scratch.db)).set_index("name")
    assert rows.loc["imported", "citus_table_type"] == "distributed"
    assert rows.loc["imported", "estimated_rows"] == 300


async def test_a_bulk_helper_in_a_session_commits_with_it(scratch: CitusSchema) -> None:
    async with scratch.db.session() as s:
        await tk.bulk_insert(scratch.orders, _orders(range(1, 51)), session=s)
        await tk.bulk_update(scratch.orders, [{"o_orderkey": 1, "o_comment": "first"}], session=s)
        await s.rollback()
    assert await _count(scratch.db, f"SELECT count(*) FROM {scratch.schema}.orders") == 0


# what Citus refuses ---------------------------------------------------------------------


async def test_a_join_that_needs_repartitioning_carries_citus_hint(citus: CitusSchema) -> None:
    sql = "SELECT count(*) FROM orders JOIN lineitem ON o_custkey = l_linenumber"
    with pytest.raises(tk.DatabaseError) as caught:
        await tk.df(sql, database=citus.db)
    message = str(caught.value)
    assert "requires repartitioning" in message
    assert "citus.enable_repartition_joins" in message  # Citus's HINT, carried over
    async with citus.db.session() as s:
        await s.execute(text("SET LOCAL citus.enable_repartition_joins = on"))
        frame = await tk.df(sql, session=s)
    assert frame["count"].iloc[0] > 0


async def test_changing_a_distribution_value_is_refused_with_the_server_message(
    scratch: CitusSchema,
) -> None:
    await tk.bulk_insert(scratch.orders, _orders(range(1, 3)), database=scratch.db)
    with pytest.raises(tk.DatabaseError, match="modifying the partition value"):
        await tk.df(
            f"UPDATE {scratch.schema}.orders SET o_orderkey = 99 WHERE o_orderkey = 1"
            " RETURNING o_orderkey",
            database=scratch.db,
        )


# time limits ---------------------------------------------------------------------------


async def _running_on_workers(citus: CitusSchema, marker: str) -> int:
    """Queries containing ``marker`` still running on the workers."""
    conn = await asyncpg.connect(_dsn(citus.url), timeout=10)
    try:
        counts = await conn.fetch(
            "SELECT result FROM run_command_on_workers($$SELECT count(*) FROM pg_stat_activity"
            f" WHERE state = 'active' AND query LIKE '%{marker}%'"
            " AND pid <> pg_backend_pid()$$)"
        )
    finally:
        await conn.close()
    return sum(int(row["result"]) for row in counts)


@pytest.mark.parametrize("limit", ["statement_timeout", "command_timeout"])
async def test_a_time_limit_stops_a_multi_shard_query_on_the_workers_too(
    citus: CitusSchema, limit: str
) -> None:
    marker = f"tk_limit_{limit}"
    sql = f"SELECT o_orderkey, pg_sleep(0.5) AS {marker} FROM orders"  # 32 shards, minutes
    async with tk.Database(citus.url, **{limit: 1.0}) as db:
        started = time.perf_counter()
        with pytest.raises(tk.QueryTimeout) as caught:
            await tk.df(sql, database=db)
        elapsed = time.perf_counter() - started
    assert caught.value.limit == limit
    assert elapsed < 5
    for _ in range(50):  # the cancel reaches the workers' backends within moments
        if await _running_on_workers(citus, marker) == 0:
            break
        await asyncio.sleep(0.1)
    assert await _running_on_workers(citus, marker) == 0
