"""What the write and page benchmarks (insert.py, update.py, pages.py) share: their tables,
the measured worker (a warm-up, timed runs, peak RSS), and the parent that runs each
approach in a fresh process and cleans up.

Every measurement runs in a fresh worker process (``--worker``) so that its peak RSS is
its own, on a freshly created and, before every run, truncated (or refilled) table. The
parent stays small on purpose: it imports only the standard library and leaves the
database set-up and clean-up to subprocesses too.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
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
    maxrss_kib,
    postgres_line,
    resolve_url,
    rss_kib,
    run_child,
    server_info,
    table_filled,
    url_arg,
    worker_url,
)

__all__ = [
    "ADBC",
    "COLORS",
    "COLUMNS",
    "FIVE_YEARS_US",
    "INSERT_TABLE",
    "PAGES_BUILD",
    "PAGE_SIZE",
    "PAGE_TABLE",
    "PAGE_TABLE_ROWS",
    "SLOW_SECONDS",
    "TABLES",
    "TABLE_COLUMNS",
    "UPDATE_TABLE",
    "Close",
    "Run",
    "bench_models",
    "check_cell",
    "checkpoint_now",
    "cleanup",
    "fmt_ms",
    "fmt_s",
    "installed_approaches",
    "machine_info",
    "measure",
    "pages_table_ok",
    "peak_rss_kib",
    "reset_peak",
    "setup",
]


INSERT_TABLE = "bench_ins"


UPDATE_TABLE = "bench_upd"


PAGE_TABLE = "bench_pages"


TABLES = (INSERT_TABLE, UPDATE_TABLE, PAGE_TABLE)


PAGE_TABLE_ROWS = 1_000_000


PAGE_SIZE = 100


SLOW_SECONDS = 8.0  # a warm-up slower than this gets --slow-repeats timed runs


COLUMNS = ("n", "color", "amount", "created_at", "note", "flag")  # id comes from bigserial


COLORS = ("red", "orange", "yellow", "green", "blue", "indigo", "violet")


TABLE_COLUMNS = (
    "n integer, color text, amount numeric(12,2), created_at timestamptz, note text, flag boolean"
)


FIVE_YEARS_US = 5 * 365 * 86_400 * 1_000_000


ADBC = ("adbc_driver_postgresql", "adbc_driver_manager")


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


def setup(url: str | None, sections: Sequence[str]) -> dict[str, Any]:
    """Resolve the URL (starting the embedded server if needed), build bench_pages."""
    import asyncio

    import asyncpg

    url_text, shown_url = resolve_url(url)

    async def main() -> dict[str, Any]:
        conn = await asyncpg.connect(libpq_dsn(url_text))
        try:
            built: float | None = None
            if "pages" in sections and not await pages_table_ok(conn):
                built = await build_table(conn, PAGE_TABLE, PAGES_BUILD, pages_table_ok)
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


async def pages_table_ok(conn: Any) -> bool:
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


def bench_models() -> dict[str, Any]:
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


Run = Callable[[], Awaitable[int]]


Close = Callable[[], Awaitable[None]]


def reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) so the data set-up's peak does not count."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_kib(reset: bool) -> int:
    if reset:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    return maxrss_kib()


async def measure(
    run: Run, prepare: Callable[[], Awaitable[None]], repeats: int, slow_repeats: int
) -> dict[str, Any]:
    """A warm-up run, then timed runs; ``prepare`` (untimed) resets the table before each."""
    import gc

    await prepare()
    gc.collect()
    baseline = rss_kib()
    reset = reset_peak()
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
    peak = peak_rss_kib(reset)
    return {
        "warmup": warmup,
        "times": times,
        "count": count,
        "baseline_kib": baseline,
        "peak_kib": peak,
        "delta_kib": max(0, peak - baseline),
        "peak_from": "VmHWM" if reset else "ru_maxrss",
    }


def measured_on_table(
    url: str,
    table: str,
    key: str,
    reset: Callable[[Any], Awaitable[None]],
    approach: Callable[[], Awaitable[tuple[Run, Close]]],
    check: str,
    repeats: int,
    slow_repeats: int,
) -> dict[str, Any]:
    """A worker's measurement: ``table`` made afresh (``key`` is its id column), ``reset``
    (then a CHECKPOINT) before every run, untimed; then the table's content by ``check``."""
    import asyncio

    import asyncpg

    async def main() -> dict[str, Any]:
        admin = await asyncpg.connect(libpq_dsn(url))
        try:
            await admin.execute(f"DROP TABLE IF EXISTS {table}")
            await admin.execute(f"CREATE TABLE {table} ({key}, {TABLE_COLUMNS})")

            async def prepare() -> None:
                await reset(admin)
                await checkpoint_now(admin)

            run, close = await approach()
            try:
                result = await measure(run, prepare, repeats, slow_repeats)
            finally:
                await close()
            result["check"] = dict(await admin.fetchrow(check))
            return result
        finally:
            await admin.close()

    return asyncio.run(main())


async def checkpoint_now(admin: Any) -> None:
    """Flush dirty buffers before a timed run, so a checkpoint is less likely during it."""
    import asyncpg

    with contextlib.suppress(asyncpg.InsufficientPrivilegeError):
        await admin.execute("CHECKPOINT")


def fmt_s(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds:.4f}"
    return f"{seconds:.3f}"


def fmt_ms(seconds: float) -> str:
    ms = seconds * 1000
    return f"{ms:.2f}" if ms < 10 else f"{ms:.1f}" if ms < 100 else f"{ms:.0f}"


def machine_info(info: dict[str, Any]) -> list[str]:
    packages = ("pandas", "pyarrow", "numpy", "sqlalchemy", "asyncpg", "psycopg")
    settings = ", ".join(f"{k} {v}" for k, v in sorted(info["settings"].items()))
    built = info["built_seconds"]
    return [
        *machine_lines((*packages, "adbc-driver-postgresql"), load=True),
        f"{postgres_line(info)}; {settings}",
        f"database: {info['shown_url']}"
        + (f"; {PAGE_TABLE} built now in {built:.1f} s" if built else ""),
    ]


def installed_approaches(
    approaches: dict[str, tuple[str, tuple[str, ...], str, bool]],
) -> list[str]:
    found = []
    for key, (label, modules, _, _) in approaches.items():
        missing = [m for m in modules if importlib.util.find_spec(m) is None]
        if missing:
            print(f"note: skipping {label}: {', '.join(missing)} not installed")
        else:
            found.append(key)
    return found


def check_cell(check: dict[str, Any] | None, reference: dict[str, Any] | None) -> str:
    if not check:
        return "?"
    if reference is None or check == reference:
        return "ok"
    differing = [k for k, v in check.items() if reference.get(k) != v]
    return "DIFFERS: " + ", ".join(differing)


# The parent ----------------------------------------------------------------------------

Worker = Callable[[str, str, str, Sequence[str]], dict[str, Any]]
"""(approach, size, label, extra arguments) -> the worker's JSON result."""

MEASURED = (
    "each measurement: a fresh process, a warm-up run ('1st run'), then {repeats} "
    "timed runs ({slow_repeats} when the warm-up takes over {slow:.0f} s); "
    "the table is truncated (inserts) or refilled and vacuumed (updates), then CHECKPOINTed, "
    "before every run, untimed. RSS delta = peak RSS during the runs minus RSS before them "
    "(the input data is built before)."
)


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """--url, --keep, --timeout and the internal --setup/--cleanup/--worker."""
    parser.add_argument("--url", help="database URL (default TOOLKIT_DATABASE_URL, else embedded)")
    parser.add_argument("--keep", action="store_true", help="keep the bench_* tables at the end")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per worker")
    parser.add_argument("--setup", metavar="SECTIONS", help=argparse.SUPPRESS)
    parser.add_argument("--cleanup", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--worker",
        nargs=3,
        metavar=("APPROACH", "SIZE", "URL"),
        help=f"internal: one measurement, printed as JSON (URL '-': from ${URL_ENV})",
    )


def add_repeat_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repeats", type=int, default=5, help="timed runs after a warm-up")
    parser.add_argument(
        "--slow-repeats",
        type=int,
        default=2,
        help=f"timed runs when the warm-up took over {SLOW_SECONDS:.0f} s (default 2)",
    )


def run_internal(args: argparse.Namespace, worker: Callable[[str, str, str], Any]) -> bool:
    """Answer --setup, --cleanup or --worker (printing JSON); False when none was asked."""
    if args.setup is not None:
        print(json.dumps(setup(os.environ.get(URL_ENV), args.setup.split(","))))
    elif args.cleanup:
        print(json.dumps(cleanup(os.environ[URL_ENV])))
    elif args.worker:
        name, size, url = args.worker
        print(json.dumps(worker(name, size, worker_url(url)), default=str))
    else:
        return False
    return True


def run_parent(
    script: str,
    section: str,
    args: argparse.Namespace,
    measure_all: Callable[[Worker], None],
    *,
    described: str | None = None,
) -> int:
    """Set up (in a subprocess), run ``measure_all`` with a worker runner, clean up."""
    started = time.perf_counter()
    url = default_url(args.url)
    print("setting up ...", file=sys.stderr, flush=True)
    info = run_child(script, ["--setup", section], url, timeout=1800)
    if "error" in info:
        print(f"set-up failed: {info['error']}", file=sys.stderr)
        return 1
    print("\n".join(machine_info(info)))
    if described:
        print(described)
    worker_url_arg, url_env = url_arg(info["url"])

    def run_worker(key: str, size: str, label: str, extra: Sequence[str]) -> dict[str, Any]:
        print(f"  {label} ...", file=sys.stderr, flush=True)
        command = ["--worker", key, size, worker_url_arg, *extra]
        result = run_child(script, command, url_env, timeout=args.timeout)
        if "error" in result:
            print(f"note: {label} failed: {result['error']}")
        return result

    measure_all(run_worker)
    if not args.keep:
        done = run_child(script, ["--cleanup"], info["url"], timeout=300)
        print(
            f"\ndropped {', '.join(done['dropped'])}"
            if "dropped" in done
            else f"\nnote: clean-up failed: {done.get('error')}"
        )
    print(f"total wall time {time.perf_counter() - started:.0f} s")
    return 0
