"""Benchmark: bulk insert, bulk update and offset vs keyset pages, tk against the usual ways.

Run by hand (not part of the test suite)::

    .venv/bin/python benchmarks/bulk.py [--rows 100000,1000000] [--update-rows 100000]
                                        [--depths 1,10,100,1000,10000] [--url URL]

Every measurement runs in a fresh worker process (``--worker``) so that its peak RSS is
its own, on a freshly created and, before every run, truncated (or refilled) table. The
parent stays small on purpose: it imports only the standard library and leaves the
database set-up and clean-up to subprocesses too.

See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from _harness import (
    URL_ENV,
    build_table,
    default_url,
    libpq_dsn,
    machine_lines,
    markdown_table,
    maxrss_kib,
    mb,
    median_time,
    parse_sizes,
    postgres_line,
    resolve_url,
    rss_kib,
    run_child,
    server_info,
    sqlalchemy_url,
    table_filled,
    target,
    url_arg,
    worker_url,
)

INSERT_TABLE = "bench_ins"
UPDATE_TABLE = "bench_upd"
PAGE_TABLE = "bench_pages"
TABLES = (INSERT_TABLE, UPDATE_TABLE, PAGE_TABLE)
PAGE_TABLE_ROWS = 1_000_000
PAGE_SIZE = 100
DEFAULT_ROWS = "100000,1000000"
DEFAULT_DEPTHS = "1,10,100,1000,10000"
ALL_UP_TO = 100_000  # insert sizes above this run only the fast approaches
SLOW_SECONDS = 8.0  # a warm-up slower than this gets --slow-repeats timed runs
SECTIONS = ("insert", "update", "pages")

COLUMNS = ("n", "color", "amount", "created_at", "note", "flag")  # id comes from bigserial
COLORS = ("red", "orange", "yellow", "green", "blue", "indigo", "violet")
TABLE_COLUMNS = (
    "n integer, color text, amount numeric(12,2), created_at timestamptz, note text, flag boolean"
)
FIVE_YEARS_US = 5 * 365 * 86_400 * 1_000_000
ADBC = ("adbc_driver_postgresql", "adbc_driver_manager")

# approach id -> (label, modules it needs, input it starts from, also run above ALL_UP_TO)
INSERTS: dict[str, tuple[str, tuple[str, ...], str, bool]] = {
    "orm": ("ORM add_all + commit", (), "dicts", False),
    "core": ("Core insert(table), list of dicts", (), "dicts", False),
    "asyncpg-executemany": ("asyncpg executemany", (), "tuples", False),
    "asyncpg-copy": ("asyncpg copy_records_to_table", (), "tuples", True),
    "to_sql": ("pandas to_sql (psycopg, method=None)", ("psycopg",), "frame", False),
    "to_sql-copy": ("pandas to_sql (psycopg, COPY callable)", ("psycopg",), "frame", True),
    "adbc": ("ADBC adbc_ingest (hand casts)", ADBC, "frame", True),
    "tk-dicts": ("tk.bulk_insert(dicts)", (), "dicts", True),
    "tk-tuples": ("tk.bulk_insert(tuples, columns=)", (), "tuples", True),
    "tk-frame": ("tk.bulk_insert(DataFrame)", (), "frame", True),
}
UPDATES: dict[str, str] = {
    "orm": "ORM update(Model) by PK, list of dicts",
    "core": "Core update().where(id == bindparam) executemany",
    "asyncpg-executemany": "asyncpg executemany UPDATE ... WHERE id = $1",
    "asyncpg-unnest": "asyncpg UPDATE ... FROM unnest($1::bigint[], ...)",
    "tk": "tk.bulk_update(Model, dicts)",
}
HAND_WRITTEN = ("core", "asyncpg-executemany", "asyncpg-unnest")
PAGERS: dict[str, str] = {
    "paginate": "tk.paginate (page + count)",
    "offset": "bare OFFSET query",
    "keyset": "tk.keyset_page",
}

PAGES_BUILD = f"""
CREATE TABLE {PAGE_TABLE} (id bigint NOT NULL, {TABLE_COLUMNS});
INSERT INTO {PAGE_TABLE}
SELECT g,
       (random() * 2e6)::int - 1000000,
       (ARRAY{list(COLORS)})[1 + floor(random() * 7)::int],
       round((random() * 2e6 - 1e6)::numeric, 2),
       timestamptz '2020-01-01 00:00:00+00' + random() * interval '5 years',
       md5(g::text),
       random() < 0.5
FROM generate_series(1, {PAGE_TABLE_ROWS}) AS g;
ALTER TABLE {PAGE_TABLE} ADD PRIMARY KEY (id);
"""
UPDATE_FILL = f"""
INSERT INTO {UPDATE_TABLE} (id, {", ".join(COLUMNS)})
SELECT g, g % 1000, (ARRAY{list(COLORS)})[1 + g % 7], (g % 100000) / 100.0,
       timestamptz '2020-01-01 00:00:00+00' + g * interval '1 minute', md5(g::text), g % 2 = 0
FROM generate_series(1, $1::int) AS g
"""
# Per column an order-independent summary (to say which column differs), and one
# ordered digest of whole rows (values and row order).
INSERT_CHECK = f"""
SELECT count(*)::text AS rows,
       count(n) || '/' || coalesce(sum(n), 0) AS n,
       count(color) || '/' || coalesce(sum(hashtext(color)::bigint), 0) AS color,
       count(amount) || '/' || coalesce(sum(amount), 0) AS amount,
       count(created_at) || '/' || coalesce(sum(extract(epoch FROM created_at)), 0) AS created_at,
       count(note) || '/' || coalesce(sum(hashtext(note)::bigint), 0) AS note,
       count(flag) || '/' || count(*) FILTER (WHERE flag) AS flag,
       md5(string_agg(ROW({", ".join(COLUMNS)})::text, E'\\n' ORDER BY id)) AS "row order"
FROM {INSERT_TABLE}
"""
UPDATE_CHECK = f"""
SELECT count(*) FILTER (WHERE note LIKE 'upd %') AS updated,
       md5(string_agg(ROW(id, {", ".join(COLUMNS)})::text, E'\\n' ORDER BY id)) AS digest
FROM {UPDATE_TABLE}
"""


# Set-up and clean-up (subprocesses: they import toolkit) ---------------------------


def setup(url: str | None, sections: Sequence[str]) -> dict[str, Any]:
    """Resolve the URL (starting the embedded server if needed), build bench_pages."""
    import asyncio

    import asyncpg

    url_text, shown_url = resolve_url(url)

    async def main() -> dict[str, Any]:
        conn = await asyncpg.connect(libpq_dsn(url_text))
        try:
            built: float | None = None
            if "pages" in sections and not await _pages_ok(conn):
                built = await build_table(conn, PAGE_TABLE, PAGES_BUILD, _pages_ok)
            settings = {
                name: await conn.fetchval("SELECT current_setting($1)", name)
                for name in ("shared_buffers", "max_wal_size", "synchronous_commit", "fsync")
            }
            return {
                "url": url_text,
                "shown_url": shown_url,
                **await server_info(conn),
                "settings": settings,
                "built_seconds": built,
            }
        finally:
            await conn.close()

    return asyncio.run(main())


async def _pages_ok(conn: Any) -> bool:
    exists = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", PAGE_TABLE)
    if not exists:
        return False
    return await table_filled(conn, PAGE_TABLE, PAGE_TABLE_ROWS)


def cleanup(url: str) -> dict[str, Any]:
    import asyncio

    import asyncpg

    async def main() -> dict[str, Any]:
        conn = await asyncpg.connect(libpq_dsn(url))
        try:
            await conn.execute(f"DROP TABLE IF EXISTS {', '.join(TABLES)}")
            return {"dropped": list(TABLES)}
        finally:
            await conn.close()

    return asyncio.run(main())


# The schema -----------------------------------------------------------------------------


def _models() -> dict[str, Any]:
    """Mapped classes of the three tables (declared, not reflected)."""
    from sqlalchemy import BigInteger, Boolean, DateTime, Integer, Numeric, Text
    from sqlalchemy.orm import DeclarativeBase, mapped_column

    class Base(DeclarativeBase):
        pass

    class Columns:  # no annotations: this module has postponed (string) annotations
        n = mapped_column(Integer)
        color = mapped_column(Text)
        amount = mapped_column(Numeric(12, 2))
        created_at = mapped_column(DateTime(timezone=True))
        note = mapped_column(Text)
        flag = mapped_column(Boolean)

    class BenchIns(Columns, Base):
        __tablename__ = INSERT_TABLE
        id = mapped_column(BigInteger, primary_key=True)  # bigserial

    class BenchUpd(Columns, Base):
        __tablename__ = UPDATE_TABLE
        id = mapped_column(BigInteger, primary_key=True, autoincrement=False)

    class BenchPage(Columns, Base):
        __tablename__ = PAGE_TABLE
        id = mapped_column(BigInteger, primary_key=True, autoincrement=False)

    return {"insert": BenchIns, "update": BenchUpd, "pages": BenchPage}


# Data ------------------------------------------------------------------------------


def _insert_data(rows: int, kind: str) -> Any:
    """The same rows for every approach, as dicts, tuples or a DataFrame of plain dtypes.

    About 5% NULLs in ``amount`` and ``note`` (NaN in the float64 column and in the str
    column of the DataFrame); ``n`` and ``flag`` have none, so the frame keeps int64 and
    bool. Amounts are whole cents (Decimal in Python rows, float64 in the frame).
    """
    from datetime import UTC, datetime, timedelta
    from decimal import Decimal

    import numpy as np

    rng = np.random.default_rng(20_240_601)
    n = rng.integers(-1_000_000, 1_000_000, rows)
    colors = np.array(COLORS, dtype=object)[rng.integers(0, len(COLORS), rows)].tolist()
    cents = rng.integers(-1_000_000_000, 1_000_000_000, rows)
    amount_null = rng.random(rows) < 0.05
    micros = rng.integers(0, FIVE_YEARS_US, rows)
    hexes = rng.bytes(16 * rows).hex()
    note_null = (rng.random(rows) < 0.05).tolist()
    flag = rng.random(rows) < 0.5
    notes = [None if null else hexes[32 * i : 32 * i + 32] for i, null in enumerate(note_null)]

    if kind == "frame":
        import pandas as pd

        created = np.datetime64("2020-01-01T00:00:00", "us") + micros.astype("timedelta64[us]")
        return pd.DataFrame(
            {
                "n": n.astype("int64"),
                "color": pd.Series(colors),
                "amount": np.where(amount_null, np.nan, cents / 100),
                "created_at": pd.Series(created).dt.tz_localize("UTC"),
                "note": pd.Series(notes),
                "flag": flag,
            }
        )
    epoch = datetime(2020, 1, 1, tzinfo=UTC)
    created_py = [epoch + timedelta(microseconds=m) for m in micros.tolist()]
    amounts = [
        None if null else Decimal(c).scaleb(-2)
        for c, null in zip(cents.tolist(), amount_null.tolist(), strict=True)
    ]
    tuples = list(zip(n.tolist(), colors, amounts, created_py, notes, flag.tolist(), strict=True))
    if kind == "tuples":
        return tuples
    return [dict(zip(COLUMNS, t, strict=True)) for t in tuples]


def _update_rows(rows: int) -> list[dict[str, Any]]:
    """Every id of the table once, in shuffled order, with a new ``n`` and ``note``."""
    import numpy as np

    rng = np.random.default_rng(7)
    ids = (rng.permutation(rows) + 1).tolist()
    values = rng.integers(-1_000_000, 1_000_000, rows).tolist()
    hexes = rng.bytes(8 * rows).hex()
    return [
        {"id": i, "n": v, "note": "upd " + hexes[16 * k : 16 * k + 16]}
        for k, (i, v) in enumerate(zip(ids, values, strict=True))
    ]


def _psql_insert_copy(table: Any, conn: Any, keys: list[str], data_iter: Any) -> None:
    """The pandas docs' ``psql_insert_copy`` recipe (``to_sql(method=...)``), written for
    psycopg 3: ``cursor.copy`` instead of psycopg2's ``copy_expert``."""
    import csv
    import io

    dbapi_conn = conn.connection
    with dbapi_conn.cursor() as cur:
        s_buf = io.StringIO()
        writer = csv.writer(s_buf)
        writer.writerows(data_iter)
        s_buf.seek(0)
        columns = ", ".join(f'"{k}"' for k in keys)
        table_name = f"{table.schema}.{table.name}" if table.schema else table.name
        sql = f"COPY {table_name} ({columns}) FROM STDIN WITH CSV"
        with cur.copy(sql) as copy:
            copy.write(s_buf.getvalue())


# Approaches (async set-up -> (run, close); every import and connection happens here) ---

Run = Callable[[], Awaitable[int]]
Close = Callable[[], Awaitable[None]]


async def _insert_approach(name: str, url: str, data: Any) -> tuple[Run, Close]:
    model = _models()["insert"]
    table = model.__table__
    columns = list(COLUMNS)

    if name in ("orm", "core"):
        from sqlalchemy import insert
        from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

        engine = create_async_engine(sqlalchemy_url(url, "asyncpg"))
        sessions = async_sessionmaker(engine, expire_on_commit=False)  # the seed's factory

        async def run_orm() -> int:
            async with sessions() as session:
                session.add_all([model(**row) for row in data])
                await session.commit()
            return len(data)

        async def run_core() -> int:
            async with engine.begin() as conn:
                await conn.execute(insert(table), data)
            return len(data)

        return (run_orm if name == "orm" else run_core), engine.dispose

    if name in ("asyncpg-executemany", "asyncpg-copy"):
        import asyncpg

        conn = await asyncpg.connect(libpq_dsn(url))
        placeholders = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
        sql = f"INSERT INTO {INSERT_TABLE} ({', '.join(columns)}) VALUES ({placeholders})"

        async def run_executemany() -> int:
            await conn.executemany(sql, data)  # atomic: one implicit transaction
            return len(data)

        async def run_copy() -> int:
            await conn.copy_records_to_table(INSERT_TABLE, records=data, columns=columns)
            return len(data)

        return (run_copy if name == "asyncpg-copy" else run_executemany), conn.close

    if name in ("to_sql", "to_sql-copy"):
        from sqlalchemy import create_engine

        sync_engine = create_engine(sqlalchemy_url(url, "psycopg"))
        method = _psql_insert_copy if name == "to_sql-copy" else None

        async def run_to_sql() -> int:
            data.to_sql(INSERT_TABLE, sync_engine, if_exists="append", index=False, method=method)
            return len(data)

        async def close_engine() -> None:
            sync_engine.dispose()

        return run_to_sql, close_engine

    if name == "adbc":
        import adbc_driver_postgresql.dbapi
        import pyarrow as pa

        adbc = adbc_driver_postgresql.dbapi.connect(libpq_dsn(url))
        # adbc_ingest COPYs binary values typed by the Arrow schema, not by the table:
        # float64 cannot go to numeric ("not implemented") nor int64 to integer
        # ("incorrect binary data format"), so a user casts those columns by hand.
        casts = {"n": pa.int32(), "amount": pa.decimal128(12, 2)}

        async def run_adbc() -> int:
            arrow = pa.Table.from_pandas(data, preserve_index=False)
            for column, target in casts.items():
                index = arrow.schema.get_field_index(column)
                arrow = arrow.set_column(index, column, arrow.column(index).cast(target))
            with adbc.cursor() as cur:
                cur.adbc_ingest(INSERT_TABLE, arrow, mode="append")
            adbc.commit()
            return int(arrow.num_rows)

        async def close_adbc() -> None:
            adbc.close()

        return run_adbc, close_adbc

    if name in ("tk-dicts", "tk-tuples", "tk-frame"):
        import toolkit as tk

        db = tk.Database(url)
        names = columns if name == "tk-tuples" else None

        async def run_tk() -> int:
            result = await tk.bulk_insert(model, data, columns=names, database=db, progress=False)
            assert isinstance(result, int)
            return result

        return run_tk, db.dispose

    raise SystemExit(f"unknown insert approach {name!r}")


async def _update_approach(name: str, url: str, rows: list[dict[str, Any]]) -> tuple[Run, Close]:
    """Every approach starts from the same list of dicts; reshaping them is timed."""
    model = _models()["update"]
    table = model.__table__

    if name in ("orm", "core"):
        from sqlalchemy import bindparam, update
        from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

        engine = create_async_engine(sqlalchemy_url(url, "asyncpg"))
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        by_key = update(table).where(table.c.id == bindparam("b_id"))

        async def run_orm() -> int:
            async with sessions() as session:
                await session.execute(update(model), rows)  # ORM bulk UPDATE by primary key
                await session.commit()
            return len(rows)

        async def run_core() -> int:
            params = [{"b_id": r["id"], "n": r["n"], "note": r["note"]} for r in rows]
            async with engine.begin() as conn:
                await conn.execute(by_key, params)
            return len(params)

        return (run_orm if name == "orm" else run_core), engine.dispose

    if name in ("asyncpg-executemany", "asyncpg-unnest"):
        import asyncpg

        conn = await asyncpg.connect(libpq_dsn(url))
        per_row = f"UPDATE {UPDATE_TABLE} SET n = $2, note = $3 WHERE id = $1"
        arrays = (
            f"UPDATE {UPDATE_TABLE} AS t SET n = v.n, note = v.note "
            "FROM unnest($1::bigint[], $2::int[], $3::text[]) AS v(id, n, note) WHERE t.id = v.id"
        )

        async def run_executemany() -> int:
            await conn.executemany(per_row, [(r["id"], r["n"], r["note"]) for r in rows])
            return len(rows)

        async def run_unnest() -> int:
            status = await conn.execute(
                arrays,
                [r["id"] for r in rows],
                [r["n"] for r in rows],
                [r["note"] for r in rows],
            )
            return int(status.rsplit(" ", 1)[-1])

        return (run_unnest if name == "asyncpg-unnest" else run_executemany), conn.close

    if name == "tk":
        import toolkit as tk

        db = tk.Database(url)

        async def run_tk() -> int:
            return await tk.bulk_update(model, rows, database=db, progress=False)

        return run_tk, db.dispose

    raise SystemExit(f"unknown update approach {name!r}")


# Workers ---------------------------------------------------------------------------


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) so the data set-up's peak does not count."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_kib(reset: bool) -> int:
    if reset:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    return maxrss_kib()


async def _measure(
    run: Run, prepare: Callable[[], Awaitable[None]], repeats: int, slow_repeats: int
) -> dict[str, Any]:
    """A warm-up run, then timed runs; ``prepare`` (untimed) resets the table before each."""
    import gc

    await prepare()
    gc.collect()
    baseline = rss_kib()
    reset = _reset_peak()
    started = time.perf_counter()
    count = await run()
    warmup = time.perf_counter() - started
    runs = min(repeats, slow_repeats) if warmup > SLOW_SECONDS else repeats
    times = []
    for _ in range(runs):
        await prepare()
        gc.collect()
        started = time.perf_counter()
        count = await run()
        times.append(time.perf_counter() - started)
    peak = _peak_kib(reset)
    return {
        "warmup": warmup,
        "times": times,
        "count": count,
        "baseline_kib": baseline,
        "peak_kib": peak,
        "delta_kib": max(0, peak - baseline),
        "peak_from": "VmHWM" if reset else "ru_maxrss",
    }


async def _checkpoint(admin: Any) -> None:
    """Flush dirty buffers before a timed run, so a checkpoint is less likely during it."""
    import asyncpg

    with contextlib.suppress(asyncpg.InsufficientPrivilegeError):
        await admin.execute("CHECKPOINT")


def insert_worker(name: str, rows: int, repeats: int, slow_repeats: int, url: str) -> Any:
    import asyncio

    import asyncpg

    data = _insert_data(rows, INSERTS[name][2])

    async def main() -> dict[str, Any]:
        admin = await asyncpg.connect(libpq_dsn(url))
        try:
            await admin.execute(f"DROP TABLE IF EXISTS {INSERT_TABLE}")
            await admin.execute(
                f"CREATE TABLE {INSERT_TABLE} (id bigserial PRIMARY KEY, {TABLE_COLUMNS})"
            )

            async def prepare() -> None:
                await admin.execute(f"TRUNCATE {INSERT_TABLE} RESTART IDENTITY")
                await _checkpoint(admin)

            run, close = await _insert_approach(name, url, data)
            try:
                result = await _measure(run, prepare, repeats, slow_repeats)
            finally:
                await close()
            result["check"] = dict(await admin.fetchrow(INSERT_CHECK))
            return result
        finally:
            await admin.close()

    return asyncio.run(main())


def update_worker(name: str, rows: int, repeats: int, slow_repeats: int, url: str) -> Any:
    import asyncio

    import asyncpg

    updates = _update_rows(rows)

    async def main() -> dict[str, Any]:
        admin = await asyncpg.connect(libpq_dsn(url))
        try:
            await admin.execute(f"DROP TABLE IF EXISTS {UPDATE_TABLE}")
            await admin.execute(
                f"CREATE TABLE {UPDATE_TABLE} (id bigint PRIMARY KEY, {TABLE_COLUMNS})"
            )

            async def prepare() -> None:  # the same freshly filled, vacuumed table every run
                await admin.execute(f"TRUNCATE {UPDATE_TABLE}")
                await admin.execute(UPDATE_FILL, rows)
                await admin.execute(f"VACUUM (ANALYZE) {UPDATE_TABLE}")
                await _checkpoint(admin)

            run, close = await _update_approach(name, url, updates)
            try:
                result = await _measure(run, prepare, repeats, slow_repeats)
            finally:
                await close()
            result["check"] = dict(await admin.fetchrow(UPDATE_CHECK))
            return result
        finally:
            await admin.close()

    return asyncio.run(main())


def _pager(name: str, model: Any, db: Any, depth: int, cursor: str | None) -> Run:
    """One page fetch of ``name`` at ``depth``; returns the first id (checked untimed)."""
    from sqlalchemy import select

    import toolkit as tk

    if name == "paginate":

        async def paginate() -> int:
            page = await tk.paginate(
                select(model).order_by(model.id), page=depth, size=PAGE_SIZE, database=db
            )
            assert page.total == PAGE_TABLE_ROWS, page
            assert len(page.items) == PAGE_SIZE, page
            return int(page.items[0].id)

        return paginate
    if name == "offset":
        # The seed's get_users_paginated: select(Model).offset(skip).limit(limit).order_by(...)
        query = select(model).offset((depth - 1) * PAGE_SIZE).limit(PAGE_SIZE).order_by(model.id)

        async def offset() -> int:
            async with db.async_session() as session:
                items = (await session.execute(query)).scalars().all()
            assert len(items) == PAGE_SIZE
            return int(items[0].id)

        return offset

    async def keyset() -> int:
        page = await tk.keyset_page(
            select(model), key=model.id, size=PAGE_SIZE, after=cursor, database=db
        )
        assert len(page.items) == PAGE_SIZE, page
        assert page.has_next == (depth * PAGE_SIZE < PAGE_TABLE_ROWS), page
        return int(page.items[0].id)

    return keyset


async def _time_calls(
    call: Run, min_runs: int, min_time: float, max_runs: int
) -> tuple[float, list[float], int]:
    """A warm-up call, then at least ``min_runs`` timed calls, more up to ``min_time`` s."""
    started = time.perf_counter()
    value = await call()
    first = time.perf_counter() - started
    times: list[float] = []
    while len(times) < min_runs or (sum(times) < min_time and len(times) < max_runs):
        started = time.perf_counter()
        value = await call()
        times.append(time.perf_counter() - started)
    return first, times, value


def pages_worker(name: str, depths: list[int], min_runs: int, min_time: float, url: str) -> Any:
    import asyncio

    from sqlalchemy import func, select

    import toolkit as tk

    model = _models()["pages"]

    async def main() -> dict[str, Any]:
        db = tk.Database(url)
        try:
            out: dict[str, Any] = {"depths": {}}
            baseline = rss_kib()
            reset = _reset_peak()
            for depth in depths:
                cursor = None
                if name == "keyset" and depth > 1:  # the previous page's cursor, untimed
                    async with db.async_session() as session:
                        last = await session.scalar(
                            select(model.id)
                            .order_by(model.id)
                            .offset((depth - 1) * PAGE_SIZE - 1)
                            .limit(1)
                        )
                    before = await tk.keyset_page(
                        select(model).where(model.id >= last), key=model.id, size=1, database=db
                    )
                    assert before.items[0].id == last
                    cursor = before.next_cursor
                first, times, first_id = await _time_calls(
                    _pager(name, model, db, depth, cursor), min_runs, min_time, max_runs=50
                )
                out["depths"][str(depth)] = {"first": first, "times": times, "first_id": first_id}
            if name == "offset":  # what tk.paginate adds to a full page: the count
                count = select(func.count()).select_from(select(model).subquery())

                async def count_call() -> int:
                    async with db.async_session() as session:
                        return int(await session.scalar(count) or 0)

                first, times, total = await _time_calls(count_call, min_runs, min_time, 50)
                out["count"] = {"first": first, "times": times, "total": total}
            out["delta_kib"] = max(0, _peak_kib(reset) - baseline)
            return out
        finally:
            await db.dispose()

    return asyncio.run(main())


# The parent ----------------------------------------------------------------------------


def _fmt_s(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds:.4f}"
    return f"{seconds:.3f}"


def _fmt_ms(seconds: float) -> str:
    ms = seconds * 1000
    return f"{ms:.2f}" if ms < 10 else f"{ms:.1f}" if ms < 100 else f"{ms:.0f}"


def _machine_info(info: dict[str, Any]) -> list[str]:
    packages = ("pandas", "pyarrow", "numpy", "sqlalchemy", "asyncpg", "psycopg")
    settings = ", ".join(f"{k} {v}" for k, v in sorted(info["settings"].items()))
    built = info["built_seconds"]
    return [
        *machine_lines((*packages, "adbc-driver-postgresql"), load=True),
        f"{postgres_line(info)}; {settings}",
        f"database: {info['shown_url']}"
        + (f"; {PAGE_TABLE} built now in {built:.1f} s" if built else ""),
    ]


def parent(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    sizes = parse_sizes(args.rows)
    depths = parse_sizes(args.depths)
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    if unknown := [s for s in sections if s not in SECTIONS]:
        raise SystemExit(f"--sections: unknown {unknown}; choose from {', '.join(SECTIONS)}")
    if any(s < 1 for s in sizes) or args.update_rows < 1:
        raise SystemExit("--rows and --update-rows must be positive")
    if any(not 0 < d * PAGE_SIZE <= PAGE_TABLE_ROWS for d in depths):
        raise SystemExit(
            f"--depths: each depth must be between 1 and {PAGE_TABLE_ROWS // PAGE_SIZE}"
        )
    url = default_url(args.url)

    print("setting up ...", file=sys.stderr, flush=True)
    info = run_child(__file__, ["--setup", ",".join(sections)], url, timeout=1800)
    if "error" in info:
        print(f"set-up failed: {info['error']}", file=sys.stderr)
        return 1
    print("\n".join(_machine_info(info)))
    print(
        f"each measurement: a fresh process, a warm-up run ('1st run'), then {args.repeats} "
        f"timed runs ({args.slow_repeats} when the warm-up takes over {SLOW_SECONDS:.0f} s); "
        "the table is truncated (inserts) or refilled and vacuumed (updates), then CHECKPOINTed, "
        "before every run, untimed. RSS delta = peak RSS during the runs minus RSS before them "
        "(the input data is built before)."
    )

    worker_url_arg, url_env = url_arg(info["url"])
    common = ["--repeats", str(args.repeats), "--slow-repeats", str(args.slow_repeats)]
    inserts: dict[tuple[str, int], dict[str, Any]] = {}
    updates: dict[str, dict[str, Any]] = {}
    pages: dict[str, dict[str, Any]] = {}

    def run_worker(kind: str, key: str, size: str, label: str) -> dict[str, Any]:
        print(f"  {label} ...", file=sys.stderr, flush=True)
        command = ["--worker", kind, key, size, worker_url_arg, *common]
        command += ["--page-runs", str(args.page_runs), "--page-time", str(args.page_time)]
        result = run_child(__file__, command, url_env, timeout=args.timeout)
        if "error" in result:
            print(f"note: {label} failed: {result['error']}")
        return result

    if "insert" in sections:
        available = _available(INSERTS)
        for rows in sizes:
            for key in available:
                if rows <= ALL_UP_TO or INSERTS[key][3]:
                    label = f"insert {INSERTS[key][0]} @ {rows:,} rows"
                    inserts[(key, rows)] = run_worker("insert", key, str(rows), label)
            _print_inserts(rows, available, inserts)
    if "update" in sections:
        for key, label in UPDATES.items():
            updates[key] = run_worker("update", key, str(args.update_rows), f"update {label}")
        _print_updates(args.update_rows, updates)
    if "pages" in sections:
        for key, label in PAGERS.items():
            pages[key] = run_worker("pages", key, ",".join(map(str, depths)), f"pages {label}")
        _print_pages(depths, pages)

    _print_targets(sizes, inserts, updates, pages)
    if not args.keep:
        done = run_child(__file__, ["--cleanup"], info["url"], timeout=300)
        print(
            f"\ndropped {', '.join(done['dropped'])}"
            if "dropped" in done
            else f"\nnote: clean-up failed: {done.get('error')}"
        )
    print(f"total wall time {time.perf_counter() - started:.0f} s")
    return 0


def _available(approaches: dict[str, tuple[str, tuple[str, ...], str, bool]]) -> list[str]:
    found = []
    for key, (label, modules, _, _) in approaches.items():
        missing = [m for m in modules if importlib.util.find_spec(m) is None]
        if missing:
            print(f"note: skipping {label}: {', '.join(missing)} not installed")
        else:
            found.append(key)
    return found


def _check_cell(check: dict[str, Any] | None, reference: dict[str, Any] | None) -> str:
    if not check:
        return "?"
    if reference is None or check == reference:
        return "ok"
    differing = [k for k, v in check.items() if reference.get(k) != v]
    return "DIFFERS: " + ", ".join(differing)


def _print_inserts(rows: int, available: Sequence[str], results: dict[Any, Any]) -> None:
    measured = [k for k in available if (k, rows) in results]
    base = median_time(results.get(("asyncpg-copy", rows)))
    reference = next(
        (
            results[(k, rows)].get("check")
            for k in ("asyncpg-copy", *measured)
            if (k, rows) in results and results[(k, rows)].get("check")
        ),
        None,
    )
    lines = []
    for key in measured:
        result = results[(key, rows)]
        median = median_time(result)
        if median is None:
            lines.append([INSERTS[key][0], INSERTS[key][2], "failed", *[""] * 7])
            continue
        count_ok = result["count"] == rows
        lines.append(
            [
                INSERTS[key][0],
                INSERTS[key][2],
                _fmt_s(median),
                _fmt_s(min(result["times"])),
                _fmt_s(result["warmup"]),
                f"{rows / median:,.0f}",
                f"{base / median:.2f}" if base else "-",
                mb(result["delta_kib"]),
                str(len(result["times"])),
                _check_cell(result.get("check"), reference)
                + ("" if count_ok else f" (returned {result['count']:,})"),
            ]
        )
    print(f"\nINSERT {rows:,} rows into {INSERT_TABLE}")
    headers = ["approach", "input", "median s", "min s", "1st run s", "rows/s"]
    headers += ["speed x copy_records", "RSS delta MB", "runs", "table content"]
    print(markdown_table(headers, lines))
    if "adbc" in measured:
        print(
            "ADBC: n cast to int32 and amount to decimal128(12, 2) by hand - adbc_ingest types "
            "its binary COPY by the Arrow schema (float64 -> numeric: not implemented; int64 -> "
            "integer: rejected by the server); the casts and DataFrame -> Arrow are timed"
        )


def _print_updates(rows: int, results: dict[str, Any]) -> None:
    base = median_time(results.get("tk"))
    reference = next((r["check"] for r in results.values() if r.get("check")), None)
    lines = []
    for key, label in UPDATES.items():
        result = results.get(key, {})
        median = median_time(result)
        if median is None:
            lines.append([label, "failed", *[""] * 7])
            continue
        check = result.get("check") or {}
        note = "" if check.get("updated") == rows else f" ({check.get('updated')} updated)"
        lines.append(
            [
                label,
                _fmt_s(median),
                _fmt_s(min(result["times"])),
                _fmt_s(result["warmup"]),
                f"{rows / median:,.0f}",
                f"{median / base:.2f}" if base else "-",
                mb(result["delta_kib"]),
                str(len(result["times"])),
                _check_cell(check, reference) + note,
            ]
        )
    print(f"\nUPDATE {rows:,} rows by primary key (new n and note; ids shuffled) in {UPDATE_TABLE}")
    headers = ["approach", "median s", "min s", "1st run s", "rows/s", "time x tk"]
    headers += ["RSS delta MB", "runs", "table content"]
    print(markdown_table(headers, lines))


def _print_pages(depths: Sequence[int], results: dict[str, Any]) -> None:
    def cell(key: str, depth: int) -> dict[str, Any] | None:
        return results.get(key, {}).get("depths", {}).get(str(depth))

    def median(key: str, depth: int) -> float | None:
        return median_time(cell(key, depth))

    keyset_first = median("keyset", depths[0]) if depths else None
    lines = []
    wrong = []
    for depth in depths:
        row = [f"{depth:,}", f"{(depth - 1) * PAGE_SIZE:,}"]
        for key in PAGERS:
            found = cell(key, depth)
            if found is None:
                row.append("failed")
                continue
            row.append(
                f"{_fmt_ms(statistics.median(found['times']))} / {_fmt_ms(min(found['times']))}"
            )
            if found["first_id"] != (depth - 1) * PAGE_SIZE + 1:
                wrong.append(f"{PAGERS[key]} at page {depth} starts at id {found['first_id']}")
        pag, off, key = median("paginate", depth), median("offset", depth), median("keyset", depth)
        row.append(f"{pag / key:.1f}" if pag and key else "-")
        row.append(f"{off / key:.1f}" if off and key else "-")
        row.append(f"{key / keyset_first:.2f}" if key and keyset_first else "-")
        lines.append(row)
    print(
        f"\nPAGES of {PAGE_SIZE} rows from {PAGE_TABLE} ({PAGE_TABLE_ROWS:,} rows, primary key "
        "id), select(Model) ordered by id; ms median / min; a fresh session per page"
    )
    headers = ["page", "OFFSET", *(f"{label} ms" for label in PAGERS.values())]
    headers += ["paginate x keyset", "offset x keyset", "keyset x page 1"]
    print(markdown_table(headers, lines))
    count = results.get("offset", {}).get("count")
    if count:
        print(
            f"count(*) alone (what tk.paginate adds to a full page): median "
            f"{_fmt_ms(statistics.median(count['times']))} ms, {len(count['times'])} runs"
        )
    runs = {
        k: sorted({len(v["times"]) for v in r.get("depths", {}).values()})
        for k, r in results.items()
    }
    print(
        "timed runs per page: "
        + "; ".join(f"{PAGERS[k]} {v[0]}-{v[-1]}" for k, v in runs.items() if v)
    )
    for line in wrong:
        print(f"WRONG PAGE: {line}")


def _print_targets(
    sizes: Sequence[int],
    inserts: dict[Any, Any],
    updates: dict[str, Any],
    pages: dict[str, Any],
) -> None:
    def speed(key: str, peer: str, rows: int) -> float | None:
        mine, theirs = median_time(inserts.get((key, rows))), median_time(inserts.get((peer, rows)))
        return theirs / mine if mine and theirs else None

    print("\ntargets")
    big = max(sizes) if sizes else 0
    label = f"{big:,} rows"
    for key in ("tk-tuples", "tk-dicts"):
        target(
            f"insert {label}: {INSERTS[key][0]} throughput >= 0.8 x copy_records_to_table",
            speed(key, "asyncpg-copy", big),
            0.8,
            at_least=True,
        )
    target(
        f"insert {label}: tk.bulk_insert(DataFrame) throughput >= 1.0 x ADBC adbc_ingest",
        speed("tk-frame", "adbc", big),
        1.0,
        at_least=True,
    )
    target(
        f"insert {label}: tk.bulk_insert(DataFrame) throughput >= 2 x to_sql + COPY callable",
        speed("tk-frame", "to_sql-copy", big),
        2.0,
        at_least=True,
    )
    tk_update = median_time(updates.get("tk"))
    hand = {k: median_time(updates.get(k)) for k in HAND_WRITTEN}
    fastest = min((k for k in hand if hand[k]), key=lambda k: hand[k] or 0.0, default=None)
    target(
        "update: tk.bulk_update time <= 1.1 x the fastest hand-written approach"
        + (f" ({UPDATES[fastest]})" if fastest else ""),
        tk_update / hand[fastest] if tk_update and fastest and hand[fastest] else None,
        1.1,
        at_least=False,
    )
    orm = median_time(updates.get("orm"))
    target(
        "update: tk.bulk_update >= 1.8 x faster than the ORM bulk update by PK",
        orm / tk_update if orm and tk_update else None,
        1.8,
        at_least=True,
    )
    keyset = pages.get("keyset", {}).get("depths", {})
    deep = max((int(d) for d in keyset), default=None)
    first = median_time(keyset.get("1"))
    last = median_time(keyset.get(str(deep))) if deep else None
    target(
        f"pages: keyset page at depth {deep or 10_000:,} <= 2 x page 1",
        last / first if first and last and deep and deep > 1 else None,
        2.0,
        at_least=False,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rows",
        default=DEFAULT_ROWS,
        help=f"insert sizes (default {DEFAULT_ROWS}; above {ALL_UP_TO:,} only the fast approaches)",
    )
    parser.add_argument("--update-rows", type=int, default=100_000, help="rows to update")
    parser.add_argument(
        "--depths", default=DEFAULT_DEPTHS, help=f"page numbers (default {DEFAULT_DEPTHS})"
    )
    parser.add_argument(
        "--sections", default=",".join(SECTIONS), help=f"any of {', '.join(SECTIONS)}"
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed runs after a warm-up")
    parser.add_argument(
        "--slow-repeats",
        type=int,
        default=2,
        help=f"timed runs when the warm-up took over {SLOW_SECONDS:.0f} s (default 2)",
    )
    parser.add_argument("--page-runs", type=int, default=5, help="least timed runs per page")
    parser.add_argument(
        "--page-time",
        type=float,
        default=0.5,
        help="repeat a page (at most 50 runs) to this many s",
    )
    parser.add_argument("--url", help="database URL (default TOOLKIT_DATABASE_URL, else embedded)")
    parser.add_argument("--keep", action="store_true", help="keep the bench_* tables at the end")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per worker")
    parser.add_argument("--setup", metavar="SECTIONS", help=argparse.SUPPRESS)
    parser.add_argument("--cleanup", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--worker",
        nargs=4,
        metavar=("KIND", "APPROACH", "SIZE", "URL"),
        help=f"internal: one measurement, printed as JSON (URL '-': from ${URL_ENV})",
    )
    args = parser.parse_args(argv)
    if args.setup is not None:
        print(json.dumps(setup(os.environ.get(URL_ENV), args.setup.split(","))))
        return 0
    if args.cleanup:
        print(json.dumps(cleanup(os.environ[URL_ENV])))
        return 0
    if args.worker:
        kind, name, size, url = args.worker
        url = worker_url(url)
        if kind == "insert":
            result = insert_worker(name, int(size), args.repeats, args.slow_repeats, url)
        elif kind == "update":
            result = update_worker(name, int(size), args.repeats, args.slow_repeats, url)
        else:
            depths = [int(d) for d in size.split(",")]
            result = pages_worker(name, depths, args.page_runs, args.page_time, url)
        print(json.dumps(result, default=str))
        return 0
    return parent(args)


if __name__ == "__main__":
    sys.exit(main())
