"""Benchmark: TPC-H lineitem into pandas and Parquet - tk.df's parallel reads (issue #18).

Run by hand (not part of the test suite)::

    .venv/bin/python benchmarks/lineitem.py [--url URL] [--parts ABC] [--repeats 3]
    .venv/bin/python benchmarks/lineitem.py --quick      # scale 0.01, 1 run: a smoke test

Builds ``lineitem`` once from ``tpchgen-cli`` output (scale factor 1: 6,001,215 rows),
then measures, each approach in a fresh worker process (``_harness.run_parent``):

A. ``select * from lineitem where l_orderkey <= 1000000`` (1,000,049 rows): ``tk.df``
   single stream, ``parallel=2``/``4`` (the toolkit's split), ``parallel=2``/``4`` with
   ``partition_on="l_orderkey"``, connectorx with 2 and 4 partitions, ADBC;
B. all of lineitem into a DataFrame: ``tk.df`` single stream against ``parallel=2``/``4``;
C. all of lineitem into a zstd Parquet file: ``tk.to_parquet`` against ``tk.df`` followed
   by ``DataFrame.to_parquet``.

``parallel=`` and ``partition_on=`` are new: where ``tk.df`` does not take them yet, those
rows say "n/a (not available)". See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from _harness import (
    ADBC,
    Close,
    Run,
    Worker,
    adbc_approach,
    add_common_arguments,
    add_repeat_arguments,
    connectorx_approach,
    default_url,
    installed_approaches,
    libpq_dsn,
    machine_lines,
    markdown_table,
    mb,
    median_time,
    postgres_line,
    ratio,
    repeat_options,
    resolve_url,
    run_internal,
    run_parent,
    setup_database,
    target,
    time_cells,
    timed_runs,
)

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/tpch"
SF1_ROWS = 6_001_215  # lineitem at scale factor 1
KEYS_PER_SF = 1_000_000  # Part A reads l_orderkey <= this (times the scale below 1)
QUICK_SCALE = 0.01
SLOW_SECONDS = 30.0  # a warm-up slower than this gets --slow-repeats timed runs
PARTITION_KEY = "l_orderkey"
RSS_BOUND_MB = 300  # issue #18: tk.to_parquet's peak RSS

# The TPC-H types, spelled as format_type() prints them (the table check compares them).
COLUMNS = (
    ("l_orderkey", "bigint"),
    ("l_partkey", "bigint"),
    ("l_suppkey", "bigint"),
    ("l_linenumber", "integer"),
    ("l_quantity", "numeric(15,2)"),
    ("l_extendedprice", "numeric(15,2)"),
    ("l_discount", "numeric(15,2)"),
    ("l_tax", "numeric(15,2)"),
    ("l_returnflag", "character(1)"),
    ("l_linestatus", "character(1)"),
    ("l_shipdate", "date"),
    ("l_commitdate", "date"),
    ("l_receiptdate", "date"),
    ("l_shipinstruct", "character(25)"),
    ("l_shipmode", "character(10)"),
    ("l_comment", "character varying(44)"),
)

# approach id -> (label, modules it needs, part, keyword arguments)
APPROACHES: dict[str, tuple[str, tuple[str, ...], str, dict[str, Any]]] = {
    "a-tk": ("tk.df", (), "A", {}),
    "a-tk-p2": ("tk.df parallel=2", (), "A", {"parallel": 2}),
    "a-tk-p4": ("tk.df parallel=4", (), "A", {"parallel": 4}),
    "a-tk-p2-on": (
        f"tk.df parallel=2 partition_on={PARTITION_KEY}",
        (),
        "A",
        {"parallel": 2, "partition_on": PARTITION_KEY},
    ),
    "a-tk-p4-on": (
        f"tk.df parallel=4 partition_on={PARTITION_KEY}",
        (),
        "A",
        {"parallel": 4, "partition_on": PARTITION_KEY},
    ),
    "a-cx-2": ("connectorx partition_num=2", ("connectorx",), "A", {"partition_num": 2}),
    "a-cx-4": ("connectorx partition_num=4", ("connectorx",), "A", {"partition_num": 4}),
    "a-adbc": ("ADBC fetch_arrow_table().to_pandas()", ADBC, "A", {}),
    "b-tk": ("tk.df", (), "B", {}),
    "b-tk-p2": ("tk.df parallel=2", (), "B", {"parallel": 2}),
    "b-tk-p4": ("tk.df parallel=4", (), "B", {"parallel": 4}),
    "c-to-parquet": ("tk.to_parquet", (), "C", {}),
    "c-df-parquet": ("tk.df + DataFrame.to_parquet", (), "C", {}),
}
LABELS = {key: label for key, (label, *_) in APPROACHES.items()}
BASES = {"A": "a-tk", "B": "b-tk", "C": "c-df-parquet"}  # each part's ratios are to this
PART_TITLES = {
    "A": "Part A: {a_rows:,} rows ({sql_a})",
    "B": "Part B: all {rows:,} rows into a DataFrame ({sql_b})",
    "C": "Part C: all {rows:,} rows into a Parquet file (pyarrow, zstd)",
}
NOT_AVAILABLE = "n/a (not available)"


def table_name(scale: float) -> str:
    """``lineitem`` at scale factor 1, ``lineitem_sf0_01`` etc. at any other."""
    return "lineitem" if scale == 1 else "lineitem_sf" + f"{scale:g}".replace(".", "_")


def key_bound(scale: float) -> int:
    """Part A's ``l_orderkey`` bound: 1,000,000 (about 1M rows), scaled down below SF 1."""
    return round(KEYS_PER_SF * min(scale, 1.0))


def part_sql(part: str, scale: float) -> str:
    table = table_name(scale)
    if part == "A":
        return f"select * from {table} where l_orderkey <= {key_bound(scale)}"
    return f"select * from {table}"


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "toolkit-bench" / "tpch"


# Set-up (runs in a subprocess: it imports toolkit) ---------------------------------------


def setup(url: str | None, section: str) -> dict[str, Any]:
    """Create the database if missing, build the table unless it is there; ``section`` is
    the JSON of {"scale", "cache_dir", "rebuild"} (the set-up gets no other arguments)."""
    import asyncio

    options = json.loads(section)
    scale, rebuild = float(options["scale"]), bool(options["rebuild"])
    table = table_name(scale)
    url_text, _ = resolve_url(url or DEFAULT_URL)
    created = asyncio.run(_ensure_database(url_text))

    async def prepare(conn: Any) -> dict[str, Any]:
        built: dict[str, float] = {}
        expected = await _expected_rows(conn, table, scale)
        if rebuild or expected is None or not await _table_ok(conn, table, expected):
            csv, built = _tpchgen_csv(scale, Path(options["cache_dir"]))
            built.update(await _build(conn, table, scale, csv))
            expected = await _expected_rows(conn, table, scale)
            if expected is None or not await _table_ok(conn, table, expected):
                raise RuntimeError(f"{table} does not look right after building it")
        return {
            "table": table,
            "rows": expected,
            "a_rows": await conn.fetchval(
                f"SELECT count(*) FROM {table} WHERE l_orderkey <= {key_bound(scale)}"
            ),
            "built": built,
            "database_created": created,
            "table_size": await conn.fetchval(
                f"SELECT pg_size_pretty(pg_total_relation_size('{table}'))"
            ),
        }

    return setup_database(url_text, prepare)


async def _ensure_database(url: str) -> bool:
    """Create the URL's database (from the server's ``postgres`` database) when it is
    missing; whether it was created."""
    import asyncpg
    from sqlalchemy.engine import make_url

    try:
        conn = await asyncpg.connect(libpq_dsn(url))
    except asyncpg.InvalidCatalogNameError:
        pass
    else:
        await conn.close()
        return False
    parsed = make_url(url)
    admin_url = parsed.set(database="postgres").render_as_string(hide_password=False)
    admin = await asyncpg.connect(libpq_dsn(admin_url))
    try:
        name = str(parsed.database).replace('"', '""')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return True


async def _expected_rows(conn: Any, table: str, scale: float) -> int | None:
    """6,001,215 at scale factor 1; else the count the build wrote into the table's
    comment; None when the table is missing (or has no such comment)."""
    if await conn.fetchval("SELECT to_regclass($1)", table) is None:
        return None
    if scale == 1:
        return SF1_ROWS
    comment = await conn.fetchval("SELECT obj_description($1::regclass, 'pg_class')", table)
    found = re.search(r": (\d+) rows$", comment or "")
    return int(found.group(1)) if found else None


async def _table_ok(conn: Any, table: str, rows: int) -> bool:
    """The TPC-H column types, the primary key and ``rows`` rows."""
    columns = await conn.fetch(
        """SELECT attname, format_type(atttypid, atttypmod) AS type FROM pg_attribute
           WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped
           ORDER BY attnum""",
        table,
    )
    if [(c["attname"], c["type"]) for c in columns] != list(COLUMNS):
        return False
    has_pk = await conn.fetchval(
        "SELECT count(*) FROM pg_index WHERE indrelid = $1::regclass AND indisprimary", table
    )
    return bool(has_pk) and await conn.fetchval(f"SELECT count(*) FROM {table}") == rows


def _tpchgen_csv(scale: float, cache_dir: Path) -> tuple[Path, dict[str, float]]:
    """``lineitem.csv`` at ``scale`` in the cache directory, generated when missing
    (into a partial directory renamed at the end); (path, {"generate_s": ...})."""
    done = cache_dir / f"sf{scale:g}"
    csv = done / "lineitem.csv"
    if csv.exists():
        return csv, {}
    started = time.perf_counter()
    partial = cache_dir / f".sf{scale:g}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    command = [_tpchgen_cli(), "csv", "--scale-factor", f"{scale:g}", "--tables", "lineitem"]
    command += ["--output-dir", str(partial), "--quiet"]
    subprocess.run(command, check=True, capture_output=True, text=True)
    shutil.rmtree(done, ignore_errors=True)
    partial.rename(done)
    return csv, {"generate_s": time.perf_counter() - started}


def _tpchgen_cli() -> str:
    beside = Path(sys.executable).parent / "tpchgen-cli"  # the venv's, when it has one
    found = str(beside) if beside.exists() else shutil.which("tpchgen-cli")
    if not found:
        raise SystemExit("tpchgen-cli not found: pip install tpchgen-cli")
    return found


async def _build(conn: Any, table: str, scale: float, csv: Path) -> dict[str, float]:
    """Drop and create ``table``, COPY the CSV in (tpchgen writes a header line, commas,
    quoted comments), add the primary key, VACUUM (ANALYZE); seconds of each step."""
    columns = ", ".join(f"{name} {type_} NOT NULL" for name, type_ in COLUMNS)
    steps: dict[str, float] = {}
    started = time.perf_counter()
    await conn.execute(f"DROP TABLE IF EXISTS {table}")
    async with conn.transaction():
        await conn.execute(f"CREATE TABLE {table} ({columns})")
        status = await conn.copy_to_table(table, source=csv, format="csv", header=True)
        steps["copy_s"] = time.perf_counter() - started
        started = time.perf_counter()
        await conn.execute(f"ALTER TABLE {table} ADD PRIMARY KEY (l_orderkey, l_linenumber)")
        steps["primary_key_s"] = time.perf_counter() - started
        rows = int(status.split()[-1])
        if scale == 1 and rows != SF1_ROWS:
            raise RuntimeError(f"{csv} held {rows:,} rows, not {SF1_ROWS:,}")
        comment = f"tpchgen-cli csv --scale-factor {scale:g} --tables lineitem: {rows} rows"
        await conn.execute(f"COMMENT ON TABLE {table} IS '{comment}'")
    started = time.perf_counter()
    await conn.execute(f"VACUUM (ANALYZE) {table}")
    steps["vacuum_analyze_s"] = time.perf_counter() - started
    return steps


# Approaches (each: async set-up -> async run()) -----------------------------------------


async def _approach(key: str, url: str, scale: float, path: Path) -> tuple[Run, Close]:
    """(run, close) for ``key``; every import and connection happens here, untimed."""
    _, _, part, options = APPROACHES[key]
    sql = part_sql(part, scale)

    if key.startswith("a-cx"):
        return connectorx_approach(url, sql, partition_on=PARTITION_KEY, **options)

    if key == "a-adbc":
        return adbc_approach(url, sql)

    import toolkit as tk

    db = tk.Database(url)

    async def run_df() -> Any:
        return await tk.df(sql, database=db, **options)

    async def run_to_parquet() -> Any:
        return await tk.to_parquet(sql, path, database=db, compression="zstd")

    async def run_df_to_parquet() -> Any:
        frame = await tk.df(sql, database=db)
        frame.to_parquet(path, engine="pyarrow", compression="zstd")
        return len(frame)

    runs = {"c-to-parquet": run_to_parquet, "c-df-parquet": run_df_to_parquet}
    return runs.get(key, run_df), db.dispose


def _not_available(exc: TypeError) -> bool:
    """A TypeError of a tk.df that does not take ``parallel``/``partition_on`` yet."""
    text = str(exc)
    return "unexpected keyword argument" in text and any(
        f"'{name}'" in text for name in ("parallel", "partition_on")
    )


# The worker -----------------------------------------------------------------------------

SHARED_MODULES = ("pandas", "pyarrow", "pyarrow.parquet", "toolkit")
"""Imported by every worker before it is timed; connectorx and ADBC only by their own
(to_parquet's absolute peak RSS is then that of a process with the toolkit alone)."""


def worker(key: str, scale: float, repeats: int, slow_repeats: int, url: str) -> dict[str, Any]:
    import asyncio

    for module in (*SHARED_MODULES, *APPROACHES[key][1]):
        importlib.import_module(module)

    async def main(scratch: Path) -> dict[str, Any]:
        path = scratch / "lineitem.parquet"

        async def remove_file() -> None:
            path.unlink(missing_ok=True)

        try:
            measured, result = await timed_runs(
                lambda: _approach(key, url, scale, path),
                repeats=repeats,
                slow_repeats=slow_repeats,
                slow_seconds=SLOW_SECONDS,
                prepare=remove_file if key.startswith("c-") else None,
            )
        except TypeError as exc:
            if _not_available(exc):
                return {"approach": key, "unavailable": str(exc)}
            raise
        return {"approach": key, **measured, **_describe(result, path)}

    with tempfile.TemporaryDirectory(prefix="lineitem-bench-") as scratch:
        return asyncio.run(main(Path(scratch)))


def _describe(result: Any, path: Path) -> dict[str, Any]:
    """Rows, and the frame's size and dtypes or the Parquet file's size and row groups."""
    import pandas as pd

    if isinstance(result, pd.DataFrame):
        return {
            "nrows": len(result),
            "frame_kib": int(result.memory_usage(deep=True).sum()) // 1024,
            "dtypes": {str(c): str(t) for c, t in result.dtypes.items()},
        }
    import pyarrow.parquet as pq

    metadata = pq.read_metadata(path)
    return {
        "nrows": int(result),
        "file_rows": metadata.num_rows,
        "row_groups": metadata.num_row_groups,
        "file_kib": path.stat().st_size // 1024,
    }


# The parent -----------------------------------------------------------------------------


def parent(args: argparse.Namespace) -> int:
    scale = args.scale
    info: dict[str, Any] = {}
    section = json.dumps(
        {"scale": scale, "cache_dir": str(args.cache_dir), "rebuild": args.rebuild}
    )

    def describe(setup_info: dict[str, Any]) -> list[str]:
        info.update(setup_info, sql_a=part_sql("A", scale), sql_b=part_sql("B", scale))
        return [
            *machine_lines(
                (
                    "pandas",
                    "pyarrow",
                    "numpy",
                    "sqlalchemy",
                    "asyncpg",
                    "connectorx",
                    "adbc-driver-postgresql",
                    "tpchgen-cli",
                ),
                load=True,
            ),
            postgres_line(setup_info),
            _table_line(setup_info, scale),
            f"median of {args.repeats} timed runs after a warm-up ({args.slow_repeats} when the "
            f"warm-up took over {SLOW_SECONDS:.0f} s), each approach in a fresh process; RSS "
            "delta = peak ru_maxrss minus the RSS just before the warm-up",
        ]

    def measure_all(run_worker: Worker) -> None:
        chosen = {k: v for k, v in APPROACHES.items() if v[2] in args.parts}
        keys = installed_approaches(chosen)
        results: dict[str, dict[str, Any]] = {}
        for part in args.parts:
            for key in (k for k in keys if APPROACHES[k][2] == part):
                label = f"{part}: {LABELS[key]}"
                result = run_worker(key, f"{scale:g}", label, repeat_options(args))
                expected = info["a_rows"] if part == "A" else info["rows"]
                if "nrows" in result and result["nrows"] != expected:
                    print(f"note: {label} returned {result['nrows']:,} rows, not {expected:,}")
                results[key] = result
            _print_part(part, [k for k in keys if APPROACHES[k][2] == part], results, info)
        if "A" in args.parts:
            _print_dtypes(results)
        _print_targets(results)

    setting_up = (
        f"setting up (building {table_name(scale)} with tpchgen-cli and COPY if needed: "
        "a few minutes at scale factor 1) ..."
    )
    return run_parent(__file__, section, args, describe, measure_all, setting_up=setting_up)


def _table_line(info: dict[str, Any], scale: float) -> str:
    built = info["built"]
    if built:
        steps = [
            f"tpchgen-cli {built['generate_s']:.1f} s"
            if "generate_s" in built
            else "CSV from the cache",
            f"COPY {built['copy_s']:.1f} s",
            f"primary key {built['primary_key_s']:.1f} s",
            f"VACUUM (ANALYZE) {built['vacuum_analyze_s']:.1f} s",
        ]
        how = f"built now: {', '.join(steps)}"
    else:
        how = "reused"
    created = " (database created now)" if info["database_created"] else ""
    return (
        f"database: {info['shown_url']}{created}; {info['table']} (TPC-H SF {scale:g}): "
        f"{info['rows']:,} rows x {len(COLUMNS)} columns, {info['table_size']} ({how})"
    )


def _print_part(
    part: str, keys: Sequence[str], results: dict[str, dict[str, Any]], info: dict[str, Any]
) -> None:
    base = results.get(BASES[part], {})
    base_median, base_delta = median_time(base), base.get("delta_kib")
    lines = []
    for key in keys:
        result = results.get(key, {})
        if "unavailable" in result:
            lines.append([LABELS[key], NOT_AVAILABLE, *[""] * 8])
            continue
        if "times" not in result:
            lines.append([LABELS[key], "failed", *[""] * 8])
            continue
        size = result.get("frame_kib", result.get("file_kib", 0))
        lines.append(
            [
                LABELS[key],
                *time_cells(result),
                mb(result["delta_kib"]),
                mb(result["peak_kib"]),
                mb(size),
                ratio(median_time(result), base_median),
                ratio(result["delta_kib"], base_delta),
                str(len(result["times"])),
            ]
        )
    print("\n" + PART_TITLES[part].format(**info))
    versus = "x df+to_parquet" if part == "C" else "x tk.df"
    headers = ["approach", "median s", "min s", "1st run s", "peak RSS MB (delta)"]
    headers += ["peak RSS MB (abs)", "file MB" if part == "C" else "frame MB", versus]
    headers += [f"RSS {versus}", "runs"]
    print(markdown_table(headers, lines))
    if part == "C":
        for key in keys:
            if "row_groups" in results.get(key, {}):
                result = results[key]
                print(
                    f"  {LABELS[key]}: {result['file_rows']:,} rows in "
                    f"{result['row_groups']} row groups, {mb(result['file_kib'])} MB"
                )


def _print_dtypes(results: dict[str, dict[str, Any]]) -> None:
    """Part A's dtypes, one column per distinct set (approaches that agree share one)."""
    groups: dict[str, list[str]] = {}
    for key, result in results.items():
        if key.startswith("a-") and "dtypes" in result:
            groups.setdefault(json.dumps(result["dtypes"]), []).append(key)
    if not groups:
        return
    print("\nPart A dtypes")
    heads = ["column"]
    for number, keys in enumerate(groups.values(), 1):
        heads.append(f"({number}) {LABELS[keys[0]]}" + (f" +{len(keys) - 1}" if keys[1:] else ""))
        print(f"  ({number}) {', '.join(LABELS[k] for k in keys)}")
    sets = [json.loads(text) for text in groups]
    print(markdown_table(heads, [[c, *(d.get(c, "-") for d in sets)] for c, _ in COLUMNS]))


def _print_targets(results: dict[str, dict[str, Any]]) -> None:
    def check(text: str, key: str, other: str, bound: float) -> None:
        if any("unavailable" in results.get(k, {}) for k in (key, other)):
            print(f"  n/a   {text}: {NOT_AVAILABLE}")
            return
        value, base = median_time(results.get(key)), median_time(results.get(other))
        target(text, value / base if value is not None and base else None, bound)

    print("\ntargets (issue #18)")
    check("A: tk.df parallel=2 time <= 0.7 x single tk.df", "a-tk-p2", "a-tk", 0.7)
    check("A: tk.df parallel=2 time <= 0.5 x connectorx 2 partitions", "a-tk-p2", "a-cx-2", 0.5)
    check("B: tk.df parallel=2 time <= 0.7 x single tk.df", "b-tk-p2", "b-tk", 0.7)
    streamed = results.get("c-to-parquet", {})
    if "peak_kib" in streamed:
        peak = streamed["peak_kib"] / 1024
        print(
            f"  {'PASS' if peak <= RSS_BOUND_MB else 'FAIL'}  C: tk.to_parquet peak RSS <= "
            f"{RSS_BOUND_MB} MB: {peak:.0f} MB (the worker's whole process; "
            f"{mb(streamed['delta_kib'])} MB over its RSS before the first run)"
        )
    else:
        print(f"  n/a   C: tk.to_parquet peak RSS <= {RSS_BOUND_MB} MB (not measured)")
    check(
        "C: tk.to_parquet time <= 1.2 x tk.df + DataFrame.to_parquet",
        "c-to-parquet",
        "c-df-parquet",
        1.2,
    )
    others = [
        ("A: parallel=4 / single", "a-tk-p4", "a-tk"),
        ("A: parallel=2 partition_on / single", "a-tk-p2-on", "a-tk"),
        ("A: parallel=4 partition_on / single", "a-tk-p4-on", "a-tk"),
        ("A: parallel=4 / connectorx 4 partitions", "a-tk-p4", "a-cx-4"),
        ("A: single tk.df / connectorx 2 partitions", "a-tk", "a-cx-2"),
        ("A: single tk.df / ADBC", "a-tk", "a-adbc"),
        ("B: parallel=4 / single", "b-tk-p4", "b-tk"),
    ]
    shown = []
    for text, key, other in others:
        if any("unavailable" in results.get(k, {}) for k in (key, other)):
            shown.append(f"{text} n/a")
        elif median_time(results.get(key)) and median_time(results.get(other)):
            shown.append(f"{text} {ratio(median_time(results[key]), median_time(results[other]))}x")
    if shown:
        print("  other time ratios (no target): " + "; ".join(shown))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="TPC-H scale factor (default 1; table lineitem, any other scale lineitem_sf<scale>)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"a smoke test: --scale {QUICK_SCALE:g}, one timed run per approach",
    )
    parser.add_argument(
        "--parts",
        type=_parts_arg,
        default="ABC",
        help="which parts to run (default ABC: A the 1M-row query, B the whole table, "
        "C to_parquet)",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=default_cache_dir(),
        help="where tpchgen-cli's CSV is kept (default %(default)s)",
    )
    parser.add_argument(
        "--rebuild", action="store_true", help="drop and rebuild the table (CSV from the cache)"
    )
    add_repeat_arguments(parser, slow_repeats=3, slow_seconds=SLOW_SECONDS)
    parser.set_defaults(repeats=3)
    add_common_arguments(parser, last_url=f"{DEFAULT_URL}, created when missing")
    args = parser.parse_args(argv)
    if args.quick:
        args.scale, args.repeats, args.slow_repeats = QUICK_SCALE, 1, 1
    if not args.scale > 0:
        parser.error("--scale must be above 0")

    def one(key: str, scale: str, url: str) -> dict[str, Any]:
        return worker(key, float(scale), args.repeats, args.slow_repeats, url)

    if run_internal(args, one, setup):
        return 0
    args.url = default_url(args.url) or DEFAULT_URL
    return parent(args)


def _parts_arg(text: str) -> str:
    parts = "".join(p for p in "ABC" if p in text.upper())
    if not parts or set(text.upper()) - set("ABC,"):
        raise argparse.ArgumentTypeError(f"a selection of A, B and C: {text!r}")
    return parts


if __name__ == "__main__":
    sys.exit(main())
