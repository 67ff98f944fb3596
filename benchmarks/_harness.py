"""Shared plumbing of the hand-run benchmarks; not a benchmark itself.

What every script (frames.py, insert.py, update.py, pages.py, load.py) does the same way:
resolve the database URL and build a table in a set-up
subprocess, spawn ``--worker`` subprocesses and collect the JSON line each prints, read
RSS, format numbers and markdown tables, describe the machine and print PASS/FAIL target
lines. The scripts import it as ``_harness``: run as ``python benchmarks/<script>.py``,
benchmarks/ is ``sys.path[0]``, in the parent and in every worker it spawns.

Imports only the standard library at module level (the parent stays small; see the
scripts' docstrings); sqlalchemy, asyncpg and toolkit are imported inside the functions
that need them, which run in subprocesses.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

URL_ENV = "TOOLKIT_BENCH_URL"  # carries the URL to workers when it holds a password


# URLs ---------------------------------------------------------------------------------


def default_url(url: str | None) -> str | None:
    """``--url``, else TOOLKIT_DATABASE_URL, else None (the set-up starts the embedded server)."""
    return url or os.environ.get("TOOLKIT_DATABASE_URL", "").strip() or None


def worker_url(url: str) -> str:
    """The URL a worker got on its command line; ``-`` means: from the environment."""
    return os.environ[URL_ENV] if url == "-" else url


def url_arg(url: str) -> tuple[str, str | None]:
    """The URL for a worker's command line; one with a password travels in the environment."""
    from urllib.parse import urlsplit

    if urlsplit(url).password:
        return "-", url
    return url, None


def libpq_dsn(url: str) -> str:
    """``postgresql://...`` (libpq URI; asyncpg and ADBC read it), unix socket as ?host=."""
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def sqlalchemy_url(url: str, driver: str) -> Any:
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername=f"postgresql+{driver}")


# Set-up (runs in a subprocess: it imports toolkit) ---------------------------------------


def resolve_url(url: str | None) -> tuple[str, str]:
    """(URL with password, URL to show), starting the embedded server when ``url`` is None."""
    from toolkit import config, server

    resolved = config.normalize_url(url) if url else server.start()
    return resolved.render_as_string(hide_password=False), str(config.mask_url(resolved))


async def server_info(conn: Any) -> dict[str, Any]:
    return {
        "server_version": await conn.fetchval("SHOW server_version"),
        "server_version_full": await conn.fetchval("SELECT version()"),
    }


async def table_filled(conn: Any, table: str, rows: int) -> bool:
    """``table`` holds ids 1..``rows`` and has a primary key."""
    row = await conn.fetchrow(f"SELECT count(*) AS n, min(id) AS lo, max(id) AS hi FROM {table}")
    has_pk = await conn.fetchval(
        "SELECT count(*) FROM pg_index WHERE indrelid = $1::regclass AND indisprimary", table
    )
    return bool(row["n"] == rows and row["lo"] == 1 and row["hi"] == rows and has_pk)


async def build_table(
    conn: Any, table: str, build: str, ok: Callable[[Any], Awaitable[bool]]
) -> float:
    """(Re)build ``table`` with the ``build`` script (seeded random), vacuum it; seconds taken."""
    started = time.perf_counter()
    await conn.execute(f"DROP TABLE IF EXISTS {table}")
    async with conn.transaction():
        await conn.execute("SELECT setseed(0.42)")
        await conn.execute(build)
    await conn.execute(f"VACUUM (ANALYZE) {table}")
    built = time.perf_counter() - started
    if not await ok(conn):
        raise RuntimeError(f"{table} does not look right after building it")
    return built


# RSS (in a worker) ----------------------------------------------------------------------


def rss_kib() -> int:
    """Current resident set size in KiB."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024
    except OSError:
        import psutil

        return int(psutil.Process().memory_info().rss // 1024)


def maxrss_kib() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak // 1024 if sys.platform == "darwin" else peak)  # bytes on macOS


# Subprocesses (from the parent) ---------------------------------------------------------


def run_child(
    script: str | Path,
    args: Sequence[str],
    url: str | None,
    timeout: float,
    *,
    catch_timeout: bool = True,
) -> dict[str, Any]:
    """Run ``script`` with ``args`` in a fresh interpreter, return the JSON of its last line.

    ``url`` goes in the environment (URL_ENV). A failure comes back as ``{"error": ...}``, a
    timeout too unless ``catch_timeout`` is false (then it raises TimeoutExpired).
    """
    env = dict(os.environ)
    env.pop(URL_ENV, None)
    if url is not None:
        env[URL_ENV] = url
    try:
        proc = subprocess.run(
            [sys.executable, str(Path(script).resolve()), *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        if not catch_timeout:
            raise
        return {"error": f"timed out after {timeout:.0f} s"}
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-6:])
        return {"error": f"exit {proc.returncode}: {tail}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def parse_sizes(text: str) -> list[int]:
    """``"100,10_000"`` -> sorted distinct ints."""
    return sorted({int(s.replace("_", "")) for s in text.split(",") if s.strip()})


# Output ---------------------------------------------------------------------------------


def mb(kib: float) -> str:
    return f"{kib / 1024:.1f}"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A markdown table, the first column left-aligned, the others right-aligned."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    align = ["<"] + [">"] * (len(headers) - 1)

    def line(cells: Sequence[str]) -> str:
        padded = (f"{c:{a}{w}}" for c, a, w in zip(cells, align, widths, strict=True))
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def median_time(result: dict[str, Any] | None) -> float | None:
    """Median of a result's ``times``; None when it has none (failed or not measured)."""
    if not result or not result.get("times"):
        return None
    return statistics.median(result["times"])


def target(text: str, ratio: float | None, bound: float, *, at_least: bool = False) -> None:
    """Print one PASS/FAIL line: ``ratio`` against ``bound`` (at most, or at least)."""
    if ratio is None:
        print(f"  n/a   {text} (not measured)")
        return
    ok = ratio >= bound if at_least else ratio <= bound
    print(f"  {'PASS' if ok else 'FAIL'}  {text}: {ratio:.2f}x")


def machine_lines(packages: Sequence[str], *, load: bool = False) -> list[str]:
    """The machine line (with the load average if ``load``) and the python/packages line."""

    def version(dist: str) -> str:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    cpu = ""
    memory = ""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        cpu = next(
            (
                line.split(":", 1)[1].strip()
                for line in cpuinfo.splitlines()
                if "model name" in line
            ),
            "",
        )
        meminfo = Path("/proc/meminfo").read_text().split()
        memory = f", {int(meminfo[meminfo.index('MemTotal:') + 1]) / 2**20:.1f} GiB RAM"
    except (OSError, ValueError, StopIteration):
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    machine = (
        f"machine: {os.cpu_count()} cores ({usable} usable) {cpu}{memory}; "
        f"{platform.system()} {platform.release()}"
    )
    if load:
        average = (
            " / ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
        )
        machine += f"; load average {average} at start"
    versions = ", ".join(f"{d} {version(d)}" for d in packages)
    return [machine, f"python {platform.python_version()}; {versions}"]


def postgres_line(info: dict[str, Any]) -> str:
    return f"PostgreSQL {info['server_version']} ({info['server_version_full']})"
