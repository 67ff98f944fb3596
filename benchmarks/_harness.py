"""Shared plumbing of the hand-run benchmarks; not a benchmark itself.

What every script (frames.py, insert.py, update.py, pages.py, load.py) does the same way:
its command line (``--url``, ``--timeout``, ``--repeats`` and the internal ``--setup``,
``--worker``, ``--cleanup``), resolving the database URL and building a table in a set-up
subprocess, a warm-up then timed runs with peak RSS in a worker, running each approach in a
``--worker`` subprocess and collecting the JSON line it prints, formatting numbers, ratios
and markdown tables, describing the machine and printing PASS/FAIL target lines.

The scripts import it as ``_harness``: run as ``python benchmarks/<script>.py``,
benchmarks/ is ``sys.path[0]``, in the parent and in every worker it spawns.

Imports only the standard library at module level: the parent stays small, because on
Linux a child's ``ru_maxrss`` starts at its parent's peak (it is carried over fork/exec).
sqlalchemy, asyncpg and toolkit are imported inside the functions that need them, which
run in subprocesses.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

URL_ENV = "TOOLKIT_BENCH_URL"  # carries the URL to workers when it holds a password

Run = Callable[[], Awaitable[Any]]
"""One timed call of an approach."""

Close = Callable[[], Awaitable[None]]
"""What releases an approach's connections, after its runs."""

Worker = Callable[[str, str, str, Sequence[str]], dict[str, Any]]
"""(approach, size, label, extra arguments) -> the worker's JSON result (see run_parent)."""


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


def connectorx_url(url: str) -> str:
    """The URL for connectorx, which reaches a unix socket only with the socket directory
    percent-encoded as the host."""
    from urllib.parse import quote, urlencode

    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    query = dict(parsed.query)
    host = parsed.host or query.pop("host", None) or "localhost"
    port = parsed.port or query.pop("port", None) or 5432
    auth = quote(parsed.username or "", safe="")
    if parsed.password is not None:
        auth += ":" + quote(str(parsed.password), safe="")
    extra = "?" + urlencode(query, doseq=True) if query else ""
    return f"postgresql://{auth}@{quote(str(host), safe='')}:{port}/{parsed.database}{extra}"


# The benchmark tables --------------------------------------------------------------------

COLUMNS = ("n", "color", "amount", "created_at", "note", "flag")
"""Every benchmark table's columns besides its ``bigint`` primary key ``id``."""

TABLE_COLUMNS = (
    "n integer, color text, amount numeric(12,2), created_at timestamptz, note text, flag boolean"
)

COLORS = ("red", "orange", "yellow", "green", "blue", "indigo", "violet")

ADBC = ("adbc_driver_postgresql", "adbc_driver_manager")  # the modules ADBC approaches need


def bench_model(table: str, *, serial: bool = False) -> Any:
    """A mapped class (declared, not reflected) of a benchmark table: ``id`` (``bigserial``
    when ``serial``) and COLUMNS."""
    from sqlalchemy import BigInteger, Boolean, DateTime, Integer, Numeric, Text
    from sqlalchemy.orm import DeclarativeBase, mapped_column

    class Base(DeclarativeBase):
        pass

    attributes = {
        "__tablename__": table,
        "id": mapped_column(BigInteger, primary_key=True, autoincrement=serial),
        "n": mapped_column(Integer),
        "color": mapped_column(Text),
        "amount": mapped_column(Numeric(12, 2)),
        "created_at": mapped_column(DateTime(timezone=True)),
        "note": mapped_column(Text),
        "flag": mapped_column(Boolean),
    }
    return type(table.title().replace("_", ""), (Base,), attributes)


# Set-up (runs in a subprocess: it imports toolkit) ---------------------------------------


def resolve_url(url: str | None) -> tuple[str, str]:
    """(URL with password, URL to show), starting the embedded server when ``url`` is None."""
    from toolkit import config, server

    resolved = config.normalize_url(url) if url else server.start()
    return resolved.render_as_string(hide_password=False), str(config.mask_url(resolved))


def setup_database(
    url: str | None, prepare: Callable[[Any], Awaitable[dict[str, Any]]]
) -> dict[str, Any]:
    """Resolve the URL, run ``prepare`` (build tables...) on an asyncpg connection.

    Returns what the parent needs: ``url`` (with password), ``shown_url``, the server's
    version and whatever ``prepare`` returned.
    """
    import asyncio

    import asyncpg

    url_text, shown_url = resolve_url(url)

    async def main() -> dict[str, Any]:
        conn = await asyncpg.connect(libpq_dsn(url_text))
        try:
            return {
                "url": url_text,
                "shown_url": shown_url,
                "server_version": await conn.fetchval("SHOW server_version"),
                "server_version_full": await conn.fetchval("SELECT version()"),
                **await prepare(conn),
            }
        finally:
            await conn.close()

    return asyncio.run(main())


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


# Measuring (in a worker) ------------------------------------------------------------------


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


def reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) so the data set-up's peak does not count."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_kib(reset: bool) -> int:
    """VmHWM after a ``reset_peak()`` that worked, else ``ru_maxrss``."""
    if reset:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    return maxrss_kib()


async def timed_runs(
    approach: Callable[[], Awaitable[tuple[Run, Close]]],
    *,
    repeats: int,
    slow_repeats: int,
    slow_seconds: float,
    prepare: Callable[[], Awaitable[None]] | None = None,
    min_time: float = 0.0,
    clear_peak: bool = False,
) -> tuple[dict[str, Any], Any]:
    """A warm-up run, then timed runs; (the measurement as JSON, the last run's result).

    ``approach()`` opens the approach (untimed) and returns its (run, close); close is
    awaited at the end. ``repeats`` timed runs, ``slow_repeats`` when the warm-up took over
    ``slow_seconds``; with ``min_time``, quick runs are repeated until about that many
    seconds (at most 200 runs) for a stable median. ``prepare`` (untimed) comes before every
    run. Peak RSS: ``ru_maxrss``, or with ``clear_peak`` the kernel's mark reset just before
    the warm-up (so what the worker built before, its input, does not count).
    """
    run, close = await approach()
    try:
        return await _timed(run, repeats, slow_repeats, slow_seconds, prepare, min_time, clear_peak)
    finally:
        await close()


async def _timed(
    run: Run,
    repeats: int,
    slow_repeats: int,
    slow_seconds: float,
    prepare: Callable[[], Awaitable[None]] | None,
    min_time: float,
    clear_peak: bool,
) -> tuple[dict[str, Any], Any]:
    import gc

    if prepare is not None:
        await prepare()
    gc.collect()
    maxrss_before = maxrss_kib()
    baseline = rss_kib()
    reset = reset_peak() if clear_peak else False
    started = time.perf_counter()
    result = await run()
    warmup = time.perf_counter() - started
    if warmup > slow_seconds:
        runs = min(repeats, slow_repeats)
    elif min_time > 0 and warmup > 0:
        runs = max(repeats, min(200, int(min_time / warmup)))
    else:
        runs = repeats
    times = []
    for _ in range(runs):
        result = None  # the previous result must not inflate this run's peak
        if prepare is not None:
            await prepare()
        gc.collect()
        started = time.perf_counter()
        result = await run()
        times.append(time.perf_counter() - started)
    peak = peak_rss_kib(reset)  # before the caller describes the result, which allocates
    measurement = {
        "warmup": warmup,
        "times": times,
        "baseline_kib": baseline,
        "maxrss_before_kib": maxrss_before,
        "peak_kib": peak,
        "delta_kib": max(0, peak - baseline),
        "peak_from": "VmHWM" if reset else "ru_maxrss",
    }
    return measurement, result


def connectorx_approach(url: str, sql: str, **options: Any) -> tuple[Run, Close]:
    """connectorx's ``read_sql`` into pandas (``options``: ``partition_on``...)."""
    import connectorx as cx

    cx_url = connectorx_url(url)

    async def run() -> Any:
        return cx.read_sql(cx_url, sql, return_type="pandas", **options)

    return run, closing()


def adbc_approach(url: str, sql: str) -> tuple[Run, Close]:
    """ADBC's PostgreSQL driver: an Arrow table, then ``to_pandas()``."""
    import adbc_driver_postgresql.dbapi

    adbc = adbc_driver_postgresql.dbapi.connect(libpq_dsn(url))

    async def run() -> Any:
        with adbc.cursor() as cur:
            cur.execute(sql)
            return cur.fetch_arrow_table().to_pandas()

    return run, closing(adbc.close)


def closing(*closers: Callable[[], Any]) -> Close:
    """An approach's ``close`` from synchronous ones (``engine.dispose``, ``conn.close``)."""

    async def close() -> None:
        for closer in closers:
            closer()

    return close


def installed_approaches(approaches: Mapping[str, Sequence[Any]]) -> list[str]:
    """The keys of ``approaches`` (key -> (label, modules it needs, ...)) that can run;
    prints a note for each skipped one."""
    found = []
    for key, (label, modules, *_) in approaches.items():
        missing = [m for m in modules if importlib.util.find_spec(m) is None]
        if missing:
            print(f"note: skipping {label}: {', '.join(missing)} not installed")
        else:
            found.append(key)
    return found


# Command line ---------------------------------------------------------------------------


def add_common_arguments(
    parser: argparse.ArgumentParser, *, keep: bool = False, last_url: str = "embedded"
) -> None:
    """--url, --timeout (and --keep) and the internal --setup/--cleanup/--worker;
    ``last_url`` names the database used without --url and TOOLKIT_DATABASE_URL."""
    parser.add_argument(
        "--url", help=f"database URL (default TOOLKIT_DATABASE_URL, else {last_url})"
    )
    if keep:
        parser.add_argument(
            "--keep", action="store_true", help="keep the bench_* tables at the end"
        )
    parser.add_argument("--timeout", type=float, default=900, help="seconds per worker")
    parser.add_argument("--setup", metavar="SECTION", help=argparse.SUPPRESS)
    parser.add_argument("--cleanup", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--worker",
        nargs=3,
        metavar=("APPROACH", "SIZE", "URL"),
        help=f"internal: one measurement, printed as JSON (URL '-': from ${URL_ENV})",
    )


def add_repeat_arguments(
    parser: argparse.ArgumentParser, *, slow_repeats: int, slow_seconds: float
) -> None:
    parser.add_argument("--repeats", type=int, default=5, help="timed runs after a warm-up")
    parser.add_argument(
        "--slow-repeats",
        type=int,
        default=slow_repeats,
        help=f"timed runs when the warm-up took over {slow_seconds:.0f} s (default {slow_repeats})",
    )


def repeat_options(args: argparse.Namespace) -> list[str]:
    """``--repeats`` and ``--slow-repeats`` as given, for a worker's command line."""
    return ["--repeats", str(args.repeats), "--slow-repeats", str(args.slow_repeats)]


def sizes_arg(low: int, high: int | None = None) -> Callable[[str], list[int]]:
    """An argparse ``type``: ``"100,10_000"`` -> sorted distinct ints, each in [low, high]."""

    def parse(text: str) -> list[int]:
        try:
            sizes = sorted({int(s.replace("_", "")) for s in text.split(",") if s.strip()})
        except ValueError:
            raise argparse.ArgumentTypeError(f"not whole numbers: {text!r}") from None
        if not sizes or any(s < low or (high is not None and s > high) for s in sizes):
            bound = f"between {low:,} and {high:,}" if high is not None else f"at least {low:,}"
            raise argparse.ArgumentTypeError(f"each must be {bound}: {text!r}")
        return sizes

    return parse


def run_internal(
    args: argparse.Namespace,
    worker: Callable[[str, str, str], Any],
    setup: Callable[[str | None, str], dict[str, Any]],
    cleanup: Callable[[str], dict[str, Any]] | None = None,
) -> bool:
    """Answer --setup, --cleanup or --worker (printing JSON); False when none was asked.

    ``setup(url or None, section)``, ``cleanup(url)``, ``worker(approach, size, url)``.
    """
    if args.setup is not None:
        print(json.dumps(setup(os.environ.get(URL_ENV), args.setup)))
    elif args.cleanup and cleanup is not None:
        print(json.dumps(cleanup(os.environ[URL_ENV])))
    elif args.worker:
        name, size, url = args.worker
        print(json.dumps(worker(name, size, worker_url(url)), default=str))
    else:
        return False
    return True


# Subprocesses (from the parent) ---------------------------------------------------------


def spawn_child(script: str | Path, args: Sequence[str], url: str | None) -> subprocess.Popen:
    """Start ``script`` with ``args`` in a fresh interpreter, ``url`` in the environment."""
    env = {k: v for k, v in os.environ.items() if k != URL_ENV}
    if url is not None:
        env[URL_ENV] = url
    return subprocess.Popen(
        [sys.executable, str(Path(script).resolve()), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def child_result(proc: subprocess.Popen, timeout: float) -> dict[str, Any]:
    """The JSON of a child's last line; a failure, a timeout or no JSON as ``{"error": ...}``."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return {"error": f"timed out after {timeout:.0f} s"}
    if proc.returncode != 0:
        tail = "\n".join(err.strip().splitlines()[-6:])
        return {"error": f"exit {proc.returncode}: {tail}"}
    lines = out.strip().splitlines()
    try:
        return json.loads(lines[-1])
    except (IndexError, ValueError):
        return {"error": f"no JSON line in its output: {out.strip()[-300:]!r}"}


def run_child(
    script: str | Path, args: Sequence[str], url: str | None, timeout: float
) -> dict[str, Any]:
    """Run ``script`` with ``args`` in a fresh interpreter, return the JSON of its last line
    (``url`` in the environment, URL_ENV; a failure or a timeout as ``{"error": ...}``)."""
    return child_result(spawn_child(script, args, url), timeout)


def run_parent(
    script: str,
    section: str,
    args: argparse.Namespace,
    describe: Callable[[dict[str, Any]], Sequence[str]],
    measure_all: Callable[[Worker], None],
    *,
    setting_up: str = "setting up ...",
    cleanup: bool = False,
) -> int:
    """A whole run: set up (``--setup section``, in a subprocess), print ``describe(info)``,
    run ``measure_all`` with a worker runner, clean up (``--cleanup``, unless ``--keep``).

    The worker runner runs ``--worker APPROACH SIZE URL`` plus extra arguments in a fresh
    process and returns its JSON; a failure is printed as a note and returned as
    ``{"error": ...}``.
    """
    started = time.perf_counter()
    url = default_url(args.url)
    print(setting_up, file=sys.stderr, flush=True)
    info = run_child(script, ["--setup", section], url, timeout=1800)
    if "error" in info:
        print(f"set-up failed: {info['error']}", file=sys.stderr)
        return 1
    print("\n".join(describe(info)))
    worker_url_arg, url_env = url_arg(info["url"])

    def run_worker(key: str, size: str, label: str, extra: Sequence[str]) -> dict[str, Any]:
        print(f"  {label} ...", file=sys.stderr, flush=True)
        command = ["--worker", key, size, worker_url_arg, *extra]
        result = run_child(script, command, url_env, timeout=args.timeout)
        if "error" in result:
            print(f"note: {label} failed: {result['error']}")
        return result

    measure_all(run_worker)
    if cleanup and not args.keep:
        done = run_child(script, ["--cleanup"], info["url"], timeout=300)
        print(
            f"\ndropped {', '.join(done['dropped'])}"
            if "dropped" in done
            else f"\nnote: clean-up failed: {done.get('error')}"
        )
    print(f"\ntotal wall time {time.perf_counter() - started:.0f} s")
    return 0


# Output ---------------------------------------------------------------------------------


def mb(kib: float) -> str:
    return f"{kib / 1024:.1f}"


def fmt_s(seconds: float) -> str:
    if seconds < 0.01:
        return f"{seconds:.5f}"
    if seconds < 1:
        return f"{seconds:.4f}"
    return f"{seconds:.3f}"


def time_cells(result: dict[str, Any]) -> list[str]:
    """A measured result's median, fastest and warm-up seconds, for a table row."""
    times = result["times"]
    return [fmt_s(statistics.median(times)), fmt_s(min(times)), fmt_s(result["warmup"])]


def fmt_ms(seconds: float) -> str:
    ms = seconds * 1000
    return f"{ms:.2f}" if ms < 10 else f"{ms:.1f}" if ms < 100 else f"{ms:.0f}"


def ratio(value: float | None, base: float | None, digits: int = 2) -> str:
    """``value / base`` for a table cell; ``-`` when either is missing."""
    if value is None or not base:
        return "-"
    return f"{value / base:.{digits}f}"


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
