"""Benchmark: bulk insert, tk.bulk_insert against the usual ways (ORM, Core, asyncpg,
pandas to_sql, ADBC).

Run by hand (not part of the test suite)::

    .venv/bin/python benchmarks/insert.py [--rows 100000,1000000] [--url URL]

Each approach runs in its own process on a freshly truncated table (``_bench_tables``);
the table's content is checked against the others'. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Sequence
from typing import Any

import _bench_tables
from _bench_tables import (
    FIVE_YEARS_US,
    INSERT_TABLE,
    bench_models,
    check_cell,
    measured_on_table,
    result_row,
)
from _harness import (
    ADBC,
    COLORS,
    COLUMNS,
    Close,
    Run,
    Worker,
    closing,
    installed_approaches,
    libpq_dsn,
    markdown_table,
    median_time,
    ratio,
    repeat_options,
    sizes_arg,
    sqlalchemy_url,
    target,
)

DEFAULT_ROWS = "100000,1000000"


ALL_UP_TO = 100_000  # insert sizes above this run only the fast approaches


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


async def _insert_approach(name: str, url: str, data: Any) -> tuple[Run, Close]:
    model = bench_models()["insert"]
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

        return run_to_sql, closing(sync_engine.dispose)

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

        return run_adbc, closing(adbc.close)

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


def insert_worker(args: argparse.Namespace, name: str, size: str, url: str) -> Any:
    data = _insert_data(int(size), INSERTS[name][2])

    async def reset(admin: Any) -> None:
        await admin.execute(f"TRUNCATE {INSERT_TABLE} RESTART IDENTITY")

    def approach() -> Awaitable[tuple[Run, Close]]:
        return _insert_approach(name, url, data)

    key = "id bigserial PRIMARY KEY"
    return measured_on_table(url, INSERT_TABLE, key, reset, approach, INSERT_CHECK, args)


def print_inserts(rows: int, available: Sequence[str], results: dict[Any, Any]) -> None:
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
        count = result.get("count")
        content = check_cell(result.get("check"), reference)
        content += "" if count == rows else f" (returned {count:,})"
        speed = ratio(base, median_time(result))
        lines.append(result_row((INSERTS[key][0], INSERTS[key][2]), result, rows, speed, content))
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


def print_targets(sizes: Sequence[int], inserts: dict[Any, Any]) -> None:
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rows",
        type=sizes_arg(1),
        default=DEFAULT_ROWS,
        help=f"insert sizes (default {DEFAULT_ROWS}; above {ALL_UP_TO:,} only the fast approaches)",
    )

    def measure_all(args: argparse.Namespace, run_worker: Worker) -> None:
        inserts: dict[tuple[str, int], dict[str, Any]] = {}
        available = installed_approaches(INSERTS)
        for rows in args.rows:
            for key in available:
                if rows <= ALL_UP_TO or INSERTS[key][3]:
                    label = f"insert {INSERTS[key][0]} @ {rows:,} rows"
                    inserts[(key, rows)] = run_worker(key, str(rows), label, repeat_options(args))
            print_inserts(rows, available, inserts)
        print_targets(args.rows, inserts)

    return _bench_tables.main(__file__, "insert", parser, argv, insert_worker, measure_all)


if __name__ == "__main__":
    sys.exit(main())
