"""Benchmark: PostgreSQL query -> pandas DataFrame, tk.df against the usual alternatives.

Run by hand (not part of the test suite)::

    .venv/bin/python benchmarks/frames.py [--rows 100,10000,100000,1000000] [--repeats 5]
                                          [--slow-repeats 1] [--url URL]

Every (approach, row count) runs in a fresh worker process (``--worker``) so that its peak
RSS is its own; the parent imports nothing heavy and leaves the database set-up to a
subprocess (``--setup``) too (``_harness``).

See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import sys
from collections.abc import Sequence
from typing import Any

from _harness import (
    ADBC,
    COLORS,
    TABLE_COLUMNS,
    Close,
    Run,
    Worker,
    adbc_approach,
    add_common_arguments,
    add_repeat_arguments,
    bench_model,
    build_table,
    closing,
    connectorx_approach,
    fmt_s,
    installed_approaches,
    libpq_dsn,
    machine_lines,
    markdown_table,
    mb,
    median_time,
    postgres_line,
    ratio,
    repeat_options,
    run_internal,
    run_parent,
    setup_database,
    sizes_arg,
    sqlalchemy_url,
    table_filled,
    target,
    time_cells,
    timed_runs,
)

TABLE = "bench_frames"
TABLE_ROWS = 1_000_000
SQL = f"SELECT * FROM {TABLE} WHERE id <= :rows"
DEFAULT_ROWS = "100,10000,100000,1000000"
SLOW_SECONDS = 5.0  # a warm-up slower than this gets --slow-repeats timed runs
STREAM_CHUNK = 50_000

# approach id -> (label, modules it needs)
APPROACHES: dict[str, tuple[str, tuple[str, ...]]] = {
    "toolkit": ("tk.df", ()),
    "toolkit-pyarrow": ("tk.df (pyarrow)", ()),
    "asyncpg": ("asyncpg fetch+from_records", ("asyncpg",)),
    "sqlalchemy-core": ("SQLAlchemy Core (async)", ()),
    "sqlalchemy-orm": ("SQLAlchemy ORM (async)", ()),
    "read_sql": ("pandas.read_sql (psycopg)", ("psycopg",)),
    "connectorx": ("connectorx", ("connectorx",)),
    "adbc": ("ADBC", ADBC),
}
STREAM = "toolkit-stream"
LABELS = {key: label for key, (label, _) in APPROACHES.items()}
LABELS[STREAM] = f"tk.stream_df ({STREAM_CHUNK:,}/chunk)"

COLUMNS = [
    ("id", "bigint"),
    ("n", "integer"),
    ("color", "text"),
    ("amount", "numeric(12,2)"),
    ("created_at", "timestamp with time zone"),
    ("note", "text"),
    ("flag", "boolean"),
]
BUILD = f"""
CREATE TABLE {TABLE} (id bigint NOT NULL, {TABLE_COLUMNS});
INSERT INTO {TABLE}
SELECT g,
       CASE WHEN random() < 0.05 THEN NULL ELSE (random() * 2e6)::int - 1000000 END,
       (ARRAY{list(COLORS)})[1 + floor(random() * 7)::int],
       CASE WHEN random() < 0.05 THEN NULL ELSE round((random() * 2e6 - 1e6)::numeric, 2) END,
       timestamptz '2020-01-01 00:00:00+00' + random() * interval '5 years',
       md5(g::text),
       CASE WHEN random() < 0.05 THEN NULL ELSE random() < 0.5 END
FROM generate_series(1, {TABLE_ROWS}) AS g;
ALTER TABLE {TABLE} ADD PRIMARY KEY (id);
"""


# Set-up (runs in a subprocess: it imports toolkit) ---------------------------------


def setup(url: str | None, _section: str) -> dict[str, Any]:
    """Resolve the URL (starting the embedded server if needed), build the table."""

    async def prepare(conn: Any) -> dict[str, Any]:
        built: float | bool = False
        if not await _table_ok(conn):
            built = await build_table(conn, TABLE, BUILD, _table_ok)
        else:
            await conn.execute(f"ANALYZE {TABLE}")
        return {
            "built_seconds": built,
            "table_size": await conn.fetchval(
                f"SELECT pg_size_pretty(pg_total_relation_size('{TABLE}'))"
            ),
        }

    return setup_database(url, prepare)


async def _table_ok(conn: Any) -> bool:
    columns = await conn.fetch(
        """SELECT column_name, data_type, numeric_precision, numeric_scale
           FROM information_schema.columns
           WHERE table_schema = current_schema() AND table_name = $1
           ORDER BY ordinal_position""",
        TABLE,
    )
    found = [
        (c["column_name"], f"numeric({c['numeric_precision']},{c['numeric_scale']})")
        if c["data_type"] == "numeric"
        else (c["column_name"], c["data_type"])
        for c in columns
    ]
    if found != COLUMNS:
        return False
    return await table_filled(conn, TABLE, TABLE_ROWS)


# URLs for each client (the rest: _harness) --------------------------------------------


# Approaches (each: async set-up -> async run() returning a DataFrame) ---------------


async def _approach(name: str, url: str, rows: int) -> tuple[Run, Close]:
    """(run, close) for ``name``; every import and connection happens here, untimed."""
    import gc

    import pandas as pd

    params = {"rows": rows}
    literal_sql = SQL.replace(":rows", str(int(rows)))

    if name in ("toolkit", "toolkit-pyarrow", STREAM):
        import toolkit as tk

        db = tk.Database(url)
        backend = "pyarrow" if name == "toolkit-pyarrow" else "numpy_nullable"

        async def run_tk() -> Any:
            return await tk.df(SQL, params, database=db, dtype_backend=backend)

        async def run_stream() -> Any:
            count = 0
            async for chunk in tk.stream_df(
                SQL, params, chunk_size=STREAM_CHUNK, database=db, progress=False
            ):
                count += len(chunk)
            return count

        return (run_stream if name == STREAM else run_tk), db.dispose

    if name == "asyncpg":
        import asyncpg

        conn = await asyncpg.connect(libpq_dsn(url))
        statement = await conn.prepare(SQL.replace(":rows", "$1"))
        names = [a.name for a in statement.get_attributes()]

        async def run_asyncpg() -> Any:
            gc.disable()
            try:
                records = await statement.fetch(rows)
            finally:
                gc.enable()
            return pd.DataFrame.from_records(records, columns=names)

        return run_asyncpg, conn.close

    if name in ("sqlalchemy-core", "sqlalchemy-orm"):
        from sqlalchemy import select
        from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

        engine = create_async_engine(sqlalchemy_url(url, "asyncpg"))
        model = bench_model(TABLE)
        table = model.__table__

        async def run_core() -> Any:
            async with engine.connect() as conn:
                result = await conn.execute(select(table).where(table.c.id <= rows))
                return pd.DataFrame([tuple(r) for r in result], columns=list(result.keys()))

        keys = [c for c, _ in COLUMNS]

        async def run_orm() -> Any:
            async with AsyncSession(engine) as session:
                objects = await session.scalars(select(model).where(model.id <= rows))
                return pd.DataFrame([{k: getattr(o, k) for k in keys} for o in objects])

        return (run_core if name == "sqlalchemy-core" else run_orm), engine.dispose

    if name == "read_sql":
        from sqlalchemy import create_engine

        engine = create_engine(sqlalchemy_url(url, "psycopg"))

        async def run_read_sql() -> Any:
            return pd.read_sql(literal_sql, engine)

        return run_read_sql, closing(engine.dispose)

    if name == "connectorx":
        return connectorx_approach(url, literal_sql)

    if name == "adbc":
        return adbc_approach(url, literal_sql)

    raise SystemExit(f"unknown approach {name!r}")


# The worker ----------------------------------------------------------------------------


SHARED_MODULES = (
    "pandas",
    "pyarrow.csv",
    "asyncpg",
    "sqlalchemy.ext.asyncio",
    "sqlalchemy.orm",
    "toolkit",
    "psycopg",
    "connectorx",
    "adbc_driver_postgresql.dbapi",
)
"""Imported by every worker before it is timed (those installed), whichever approach it
runs: each is then timed in the same process environment. The heap that ``gc.collect()``
walks before each timed run is the same size in every worker; a smaller one (a worker
that imported only asyncpg and pandas) leaves more of the CPU caches warm, which made a
100-row query 5-10% faster here, whatever the approach."""


def _import_shared_modules() -> None:
    for module in SHARED_MODULES:
        if importlib.util.find_spec(module.split(".")[0]) is not None:
            importlib.import_module(module)


def worker(name: str, rows: int, repeats: int, slow_repeats: int, min_time: float, url: str):
    import asyncio

    import pandas as pd

    _import_shared_modules()

    async def main() -> dict[str, Any]:
        measured, result = await timed_runs(
            lambda: _approach(name, url, rows),
            repeats=repeats,
            slow_repeats=slow_repeats,
            slow_seconds=SLOW_SECONDS,
            min_time=min_time,
        )
        return {"approach": name, "rows": rows, **measured, **_describe(result, pd)}

    return asyncio.run(main())


def _describe(result: Any, pd: Any) -> dict[str, Any]:
    """Shape, dtypes and NULL counts of a result, to compare approaches' correctness."""
    if not isinstance(result, pd.DataFrame):
        return {"nrows": int(result)}
    nulls = result.isna().sum()
    first = result.iloc[int(result["id"].to_numpy().argmin())] if len(result) else None
    return {
        "nrows": len(result),
        "frame_kib": int(result.memory_usage(deep=True).sum()) // 1024,
        "columns": [str(c) for c in result.columns],
        "dtypes": {str(c): str(t) for c, t in result.dtypes.items()},
        "nulls": {str(c): int(v) for c, v in nulls.items()},
        "first": {str(c): repr(v) for c, v in first.items()} if first is not None else {},
    }


# The parent ----------------------------------------------------------------------------


def _machine_info(setup_info: dict[str, Any]) -> list[str]:
    packages = ("pandas", "pyarrow", "numpy", "sqlalchemy", "asyncpg", "psycopg")
    return [
        *machine_lines((*packages, "connectorx", "adbc-driver-postgresql")),
        postgres_line(setup_info),
        f"database: {setup_info['shown_url']}; {TABLE}: {TABLE_ROWS:,} rows x {len(COLUMNS)} "
        f"columns, {setup_info['table_size']}"
        + (
            f" (built now in {setup_info['built_seconds']:.1f} s)"
            if setup_info["built_seconds"]
            else " (reused)"
        ),
    ]


def parent(args: argparse.Namespace) -> int:
    sizes = args.rows

    def describe(setup_info: dict[str, Any]) -> list[str]:
        return [
            *_machine_info(setup_info),
            f"query: {SQL}   (repeats {args.repeats}, {args.slow_repeats} when a run takes over "
            f"{SLOW_SECONDS:.0f} s, more for runs under {args.min_time:g}/{args.repeats} s; "
            "RSS = peak ru_maxrss minus RSS just before the first run)",
        ]

    options = [*repeat_options(args), "--min-time", str(args.min_time)]

    def measure_all(run_worker: Worker) -> None:
        approaches = installed_approaches(APPROACHES)
        results: dict[tuple[str, int], dict[str, Any]] = {}

        def measure(key: str, rows: int) -> dict[str, Any]:
            result = run_worker(key, str(rows), f"{LABELS[key]} @ {rows:,} rows", options)
            if "error" not in result and result["nrows"] != rows:
                print(f"note: {LABELS[key]} @ {rows:,} rows returned {result['nrows']:,} rows")
            results[(key, rows)] = result
            return result

        for rows in sizes:
            for key in approaches:
                measure(key, rows)
            _print_size(rows, approaches, results)

        stream_rows = sizes[-1]
        stream = measure(STREAM, stream_rows)
        if "error" not in stream:
            full = results.get(("toolkit", stream_rows), {})
            print(
                f"\n{LABELS[STREAM]} over {stream_rows:,} rows: median "
                f"{fmt_s(median_time(stream) or 0)} s, peak RSS delta {mb(stream['delta_kib'])} "
                f"MB (abs {mb(stream['peak_kib'])} MB) vs tk.df {mb(full.get('delta_kib', 0))} MB"
            )

        _print_dtypes(sizes, approaches, results)
        _print_targets(results, stream_rows)

    setting_up = f"setting up (building {TABLE} if needed) ..."
    return run_parent(__file__, "frames", args, describe, measure_all, setting_up=setting_up)


def _print_size(rows: int, approaches: Sequence[str], results: dict[Any, Any]) -> None:
    base = results.get(("toolkit", rows), {})
    base_median, base_delta = median_time(base), base.get("delta_kib")
    lines = []
    for key in approaches:
        result = results.get((key, rows), {})
        if "times" not in result:
            lines.append([LABELS[key], "failed", *[""] * 8])
            continue
        lines.append(
            [
                LABELS[key],
                *time_cells(result),
                mb(result["delta_kib"]),
                mb(result["peak_kib"]),
                mb(result.get("frame_kib", 0)),
                ratio(median_time(result), base_median),
                ratio(result["delta_kib"], base_delta),
                str(len(result["times"])),
            ]
        )
    print(f"\n{rows:,} rows")
    headers = ["approach", "median s", "min s", "1st run s", "peak RSS MB (delta)"]
    headers += ["peak RSS MB (abs)", "frame MB", "x tk.df", "RSS x tk.df", "runs"]
    print(markdown_table(headers, lines))


def _print_dtypes(sizes: Sequence[int], approaches: Sequence[str], results: dict[Any, Any]) -> None:
    rows = sizes[-1]
    present = [k for k in approaches if "dtypes" in results.get((k, rows), {})]
    if not present:
        return
    columns = [c for c, _ in COLUMNS]
    lines = [
        [LABELS[k], *(results[(k, rows)]["dtypes"].get(c, "?") for c in columns)] for k in present
    ]
    print(f"\ndtypes at {rows:,} rows")
    print(markdown_table(["approach", *columns], lines))
    nulls = {k: results[(k, rows)]["nulls"] for k in present}
    reference = nulls[present[0]]
    print(f"NULLs ({LABELS[present[0]]}): " + ", ".join(f"{c} {n:,}" for c, n in reference.items()))
    for key in present[1:]:
        differing = {c: n for c, n in nulls[key].items() if n != reference.get(c)}
        if differing:
            print(f"  {LABELS[key]} differs: {differing}")
    print("first row (by id), repr of each value:")
    for key in present:
        first = results[(key, rows)]["first"]
        print(f"  {LABELS[key]}: " + ", ".join(f"{c}={first.get(c)}" for c in columns if c != "id"))
    # tk.df's two paths (binary rows below the COPY threshold, COPY above) must agree.
    for key in ("toolkit", "toolkit-pyarrow"):
        seen = {s: results.get((key, s), {}).get("dtypes") for s in sizes}
        distinct = {json.dumps(d, sort_keys=True) for d in seen.values() if d}
        verdict = "same at every size" if len(distinct) == 1 else f"DIFFER: {seen}"
        print(f"{LABELS[key]} dtypes: {verdict}")


def _print_targets(results: dict[Any, Any], stream_rows: int) -> None:
    def median(key: str, rows: int) -> float | None:
        return median_time(results.get((key, rows)))

    def delta(key: str, rows: int) -> float | None:
        return results.get((key, rows), {}).get("delta_kib")

    def check(text: str, value: float | None, other: float | None, bound: float) -> None:
        target(text, value / other if value is not None and other is not None else None, bound)

    big, small = 1_000_000, 100
    print("\ntargets")
    for peer, bound in (("connectorx", 0.8), ("adbc", 0.6), ("read_sql", 0.15)):
        check(
            f"1M rows: tk.df time <= {bound} x {LABELS[peer]}",
            median("toolkit", big),
            median(peer, big),
            bound,
        )
    check(
        f"1M rows: tk.df peak RSS delta <= 1.2 x {LABELS['connectorx']}",
        delta("toolkit", big),
        delta("connectorx", big),
        1.2,
    )
    check(
        f"100 rows: tk.df time <= 1.5 x {LABELS['asyncpg']}",
        median("toolkit", small),
        median("asyncpg", small),
        1.5,
    )
    stream = delta(STREAM, stream_rows) if stream_rows == big else None
    check(
        "1M rows: stream_df peak RSS delta < 0.2 x tk.df full load",
        stream,
        delta("toolkit", big),
        0.2,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rows",
        type=sizes_arg(1, TABLE_ROWS),
        default=DEFAULT_ROWS,
        help=f"sizes (default {DEFAULT_ROWS})",
    )
    add_repeat_arguments(parser, slow_repeats=1, slow_seconds=SLOW_SECONDS)
    parser.add_argument(
        "--min-time",
        type=float,
        default=1.0,
        help="quick runs are repeated until about this many seconds (0: exactly --repeats)",
    )
    add_common_arguments(parser)
    args = parser.parse_args(argv)

    def one(name: str, rows: str, url: str) -> dict[str, Any]:
        return worker(name, int(rows), args.repeats, args.slow_repeats, args.min_time, url)

    if run_internal(args, one, setup):
        return 0
    return parent(args)


if __name__ == "__main__":
    sys.exit(main())
