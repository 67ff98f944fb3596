"""What the table benchmarks (insert.py, update.py, pages.py) share beyond ``_harness``:
their tables and mapped classes, the set-up that builds ``bench_pages`` and the clean-up
that drops them all, the measured worker of insert.py and update.py (a table made afresh,
reset before every run), their machine lines, the table-content check and their ``main``.

Imports only the standard library and ``_harness`` at module level (the parent stays small).
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from _harness import (
    COLORS,
    TABLE_COLUMNS,
    Close,
    Run,
    Worker,
    add_common_arguments,
    add_repeat_arguments,
    bench_model,
    build_table,
    libpq_dsn,
    machine_lines,
    mb,
    median_time,
    postgres_line,
    run_internal,
    run_parent,
    setup_database,
    table_filled,
    time_cells,
    timed_runs,
)

INSERT_TABLE = "bench_ins"
UPDATE_TABLE = "bench_upd"
PAGE_TABLE = "bench_pages"
TABLES = (INSERT_TABLE, UPDATE_TABLE, PAGE_TABLE)
PAGE_TABLE_ROWS = 1_000_000
PAGE_SIZE = 100
SLOW_SECONDS = 8.0  # a warm-up slower than this gets --slow-repeats timed runs
FIVE_YEARS_US = 5 * 365 * 86_400 * 1_000_000

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


# Set-up and clean-up (subprocesses of the parent) ------------------------------------


def setup(url: str | None, section: str) -> dict[str, Any]:
    """Resolve the URL (starting the embedded server if needed); for the ``pages``
    section, build bench_pages when it is missing."""

    async def prepare(conn: Any) -> dict[str, Any]:
        built: float | None = None
        if section == "pages" and not await pages_table_ok(conn):
            built = await build_table(conn, PAGE_TABLE, PAGES_BUILD, pages_table_ok)
        settings = {
            name: await conn.fetchval("SELECT current_setting($1)", name)
            for name in ("shared_buffers", "max_wal_size", "synchronous_commit", "fsync")
        }
        return {"settings": settings, "built_seconds": built}

    return setup_database(url, prepare)


async def pages_table_ok(conn: Any) -> bool:
    exists = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", PAGE_TABLE)
    if not exists:
        return False
    return await table_filled(conn, PAGE_TABLE, PAGE_TABLE_ROWS)


def cleanup(url: str) -> dict[str, Any]:
    import asyncio

    import asyncpg

    async def drop() -> dict[str, Any]:
        conn = await asyncpg.connect(libpq_dsn(url))
        try:
            await conn.execute(f"DROP TABLE IF EXISTS {', '.join(TABLES)}")
            return {"dropped": list(TABLES)}
        finally:
            await conn.close()

    return asyncio.run(drop())


# Workers -------------------------------------------------------------------------------


def bench_models() -> dict[str, Any]:
    """Mapped classes of the three tables (declared, not reflected)."""
    return {
        "insert": bench_model(INSERT_TABLE, serial=True),
        "update": bench_model(UPDATE_TABLE),
        "pages": bench_model(PAGE_TABLE),
    }


def measured_on_table(
    url: str,
    table: str,
    key: str,
    reset: Callable[[Any], Awaitable[None]],
    approach: Callable[[], Awaitable[tuple[Run, Close]]],
    check: str,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """A worker's measurement: ``table`` made afresh (``key`` is its id column), ``reset``
    (then a CHECKPOINT) before every run, untimed; then the table's content by ``check``.
    Peak RSS from the kernel's mark reset after the input was built (``timed_runs``)."""
    import asyncio

    import asyncpg

    async def measure() -> dict[str, Any]:
        admin = await asyncpg.connect(libpq_dsn(url))
        try:
            await admin.execute(f"DROP TABLE IF EXISTS {table}")
            await admin.execute(f"CREATE TABLE {table} ({key}, {TABLE_COLUMNS})")

            async def prepare() -> None:
                await reset(admin)
                await checkpoint_now(admin)

            result, count = await timed_runs(
                approach,
                repeats=args.repeats,
                slow_repeats=args.slow_repeats,
                slow_seconds=SLOW_SECONDS,
                prepare=prepare,
                clear_peak=True,
            )
            result["count"] = count
            result["check"] = dict(await admin.fetchrow(check))
            return result
        finally:
            await admin.close()

    return asyncio.run(measure())


async def checkpoint_now(admin: Any) -> None:
    """Flush dirty buffers before a timed run, so a checkpoint is less likely during it."""
    import asyncpg

    with contextlib.suppress(asyncpg.InsufficientPrivilegeError):
        await admin.execute("CHECKPOINT")


# The parent ----------------------------------------------------------------------------

MEASURED = (
    "each measurement: a fresh process, a warm-up run ('1st run'), then {repeats} "
    "timed runs ({slow_repeats} when the warm-up takes over {slow:.0f} s); "
    "the table is truncated (inserts) or refilled and vacuumed (updates), then CHECKPOINTed, "
    "before every run, untimed. RSS delta = peak RSS during the runs minus RSS before them "
    "(the input data is built before)."
)


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


def check_cell(check: dict[str, Any] | None, reference: dict[str, Any] | None) -> str:
    """``ok`` when a table's content ``check`` matches the reference, else what differs."""
    if not check:
        return "?"
    if reference is None or check == reference:
        return "ok"
    differing = [k for k, v in check.items() if reference.get(k) != v]
    return "DIFFERS: " + ", ".join(differing)


def result_row(
    labels: Sequence[str], result: dict[str, Any], rows: int, ratio_cell: str, content: str
) -> list[str]:
    """A row of the insert and update tables: ``labels``, times, rows/s, ``ratio_cell``,
    RSS delta, runs and the table's ``content``; ``failed`` when nothing was timed."""
    median = median_time(result)
    if median is None:
        return [*labels, "failed", *[""] * 7]
    return [
        *labels,
        *time_cells(result),
        f"{rows / median:,.0f}",
        ratio_cell,
        mb(result["delta_kib"]),
        str(len(result["times"])),
        content,
    ]


def main(
    script: str,
    section: str,
    parser: argparse.ArgumentParser,
    argv: Sequence[str] | None,
    worker: Callable[[argparse.Namespace, str, str, str], Any],
    measure_all: Callable[[argparse.Namespace, Worker], None],
    *,
    on_table: bool = True,
) -> int:
    """A table benchmark's main: its own options (``parser``) plus the common ones;
    ``worker(args, approach, size, url)`` in a worker, else the parent's
    ``measure_all(args, run_worker)`` between set-up and clean-up. ``on_table``: the
    workers run measured_on_table (--repeats, --slow-repeats; how that is measured).
    """
    if on_table:
        add_repeat_arguments(parser, slow_repeats=2, slow_seconds=SLOW_SECONDS)
    add_common_arguments(parser, keep=True)
    args = parser.parse_args(argv)

    def one(name: str, size: str, url: str) -> Any:
        return worker(args, name, size, url)

    if run_internal(args, one, setup, cleanup):
        return 0

    def describe(info: dict[str, Any]) -> list[str]:
        if not on_table:
            return machine_info(info)
        measured = MEASURED.format(
            repeats=args.repeats, slow_repeats=args.slow_repeats, slow=SLOW_SECONDS
        )
        return [*machine_info(info), measured]

    return run_parent(
        script, section, args, describe, lambda run: measure_all(args, run), cleanup=True
    )
