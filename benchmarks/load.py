"""Load: many notebooks' worth of concurrent sessions, each in a process of its own.

    .venv/bin/python benchmarks/load.py                      # 20 processes for 60 s
    .venv/bin/python benchmarks/load.py --processes 5 --seconds 10 --url postgresql://...

Each worker is one analyst's kernel: it runs a mix of the toolkit's calls one after the
other - small and COPY-sized ``tk.df`` queries, an aggregate, ORM loads with eager loading,
offset and keyset pages, a streamed frame, and a bulk update in a unit of work on rows of
its own (workers never write the same rows, as two analysts would not) - until the time
is up, and reports each call's latency and every error. The parent prints the figures per
call and overall (p50/p95/p99, calls per second) and exits 1 when any call failed.

Database: ``--url``, else TOOLKIT_DATABASE_URL, else the embedded server; the script
creates its own database ``toolkit_load`` there (migrated, demo data), dropped at the end.
The last line of output is the JSON summary (``tests/faults/test_load.py`` reads it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
from typing import Any

import _harness

DATABASE = "toolkit_load"
USERS = 2_000


def _admin(url: str) -> Any:
    """An autocommit engine on ``url``'s server (CREATE/DROP DATABASE), no pool."""
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    from toolkit import config

    return create_async_engine(
        config.normalize_url(url), isolation_level="AUTOCOMMIT", poolclass=NullPool
    )


async def _recreate(url: str, *, create: bool) -> None:
    from sqlalchemy import text

    admin = _admin(url)
    async with admin.connect() as conn:
        await conn.execute(text(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"))
        if create:
            await conn.execute(text(f"CREATE DATABASE {DATABASE}"))
    await admin.dispose()


async def _setup(url: str) -> str:
    """Create, migrate and seed the load database; return its URL."""
    import toolkit as tk
    from toolkit import config

    await _recreate(url, create=True)
    target = config.normalize_url(url).set(database=DATABASE)
    async with tk.Database(target) as db:
        await tk.migrate(database=db)
        await tk.seed_demo(users=USERS, posts_per_user=10, progress=False, database=db)
    return target.render_as_string(hide_password=False)


async def _drop(url: str) -> None:
    from toolkit import config

    maintenance = config.normalize_url(url).set(database="postgres")
    await _recreate(maintenance.render_as_string(hide_password=False), create=False)


async def _work(url: str, worker: int, workers: int, seconds: float) -> dict[str, Any]:
    """One kernel: the mix of calls, one at a time, until ``seconds`` have passed."""
    from sqlalchemy import func, select
    from sqlalchemy.orm import selectinload

    import toolkit as tk
    from toolkit import queries
    from toolkit.models import Post, User

    rng = random.Random(worker)
    mine = [i for i in range(1, USERS + 1) if i % workers == worker]  # rows only I write
    db = tk.Database(url, pool_size=2, max_overflow=0)

    async def small_frame() -> None:
        await tk.df(select(User).where(User.id == rng.randint(1, USERS)), database=db)

    async def copy_frame() -> None:
        await tk.df(select(Post.id, Post.title, Post.created_at).limit(5_000), database=db)

    async def aggregate() -> None:
        await tk.df(
            select(User.name, func.count(Post.id).label("posts"))
            .join(Post)
            .group_by(User.id)
            .order_by(func.count(Post.id).desc())
            .limit(10),
            database=db,
        )

    async def eager_load() -> None:
        async with db.session() as s:
            user = await queries.get_user_with_posts(s, rng.randint(1, USERS))
            assert user is None or isinstance(user.posts, list)
            posts = await s.execute(select(Post).options(selectinload(Post.author)).limit(50))
            assert all(p.author is not None for p in posts.scalars())

    async def offset_page() -> None:
        await tk.paginate(select(User).order_by(User.id), rng.randint(1, 20), 50, database=db)

    async def keyset_page() -> None:
        page = await tk.keyset_page(select(Post), key=Post.id, size=100, database=db)
        if page.next_cursor:
            await tk.keyset_page(
                select(Post), key=Post.id, size=100, after=page.next_cursor, database=db
            )

    async def stream() -> None:
        sql = "select id, title from posts"
        async for _ in tk.stream_df(sql, chunk_size=5_000, database=db, progress=False):
            pass

    async def bulk_write() -> None:
        chosen = rng.sample(mine, min(50, len(mine)))
        async with db.session() as s:
            rows = [{"id": key, "is_active": rng.random() < 0.5} for key in chosen]
            await tk.bulk_update(User, rows, session=s, progress=False)

    calls = [
        small_frame,
        small_frame,
        copy_frame,
        aggregate,
        eager_load,
        offset_page,
        keyset_page,
        stream,
        bulk_write,
    ]
    latencies: dict[str, list[float]] = {}
    errors: list[str] = []
    deadline = time.monotonic() + seconds
    async with db:
        while time.monotonic() < deadline:
            call = rng.choice(calls)
            started = time.perf_counter()
            try:
                await call()
            except Exception as exc:  # every failure is a finding: reported, never hidden
                errors.append(f"{call.__name__}: {type(exc).__name__}: {exc}"[:300])
                continue
            latencies.setdefault(call.__name__, []).append(time.perf_counter() - started)
    return {"latencies": latencies, "errors": errors}


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _summary(results: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
    by_call: dict[str, list[float]] = {}
    errors: list[str] = []
    for result in results:
        if "error" in result:  # the worker itself died
            errors.append(result["error"])
            continue
        errors.extend(result["errors"])
        for name, values in result["latencies"].items():
            by_call.setdefault(name, []).extend(values)
    everything = [v for values in by_call.values() for v in values]

    def figures(values: list[float]) -> dict[str, float]:
        return {
            "calls": len(values),
            "p50_ms": 1000 * statistics.median(values),
            "p95_ms": 1000 * _percentile(values, 0.95),
            "p99_ms": 1000 * _percentile(values, 0.99),
            "max_ms": 1000 * max(values),
        }

    return {
        "workers": len(results),
        "seconds": seconds,
        "errors": errors,
        "calls_per_second": len(everything) / seconds if seconds else 0.0,
        "overall": figures(everything) if everything else {},
        "by_call": {name: figures(values) for name, values in sorted(by_call.items())},
    }


def _print(summary: dict[str, Any], shown_url: str) -> None:
    print(f"load: {summary['workers']} processes for {summary['seconds']:g} s on {shown_url}")
    rows = [
        [name, str(f["calls"]), f"{f['p50_ms']:.1f}", f"{f['p95_ms']:.1f}", f"{f['p99_ms']:.1f}"]
        for name, f in [*summary["by_call"].items(), ("all calls", summary["overall"])]
        if f
    ]
    print(_harness.markdown_table(["call", "calls", "p50 ms", "p95 ms", "p99 ms"], rows))
    print(f"{summary['calls_per_second']:.0f} calls/s, {len(summary['errors'])} errors")
    for error in summary["errors"][:10]:
        print(f"  error: {error}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--url", help="server URL (default: TOOLKIT_DATABASE_URL, else embedded)")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--setup", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--drop", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.setup or args.drop or args.worker is not None:  # a child: URL in the environment
        url = _harness.worker_url("-")
        if args.setup:
            server_url, shown = _harness.resolve_url(url or None)
            result: dict[str, Any] = {"url": asyncio.run(_setup(server_url)), "shown": shown}
        elif args.drop:
            asyncio.run(_drop(url))
            result = {}
        else:
            result = asyncio.run(_work(url, args.worker, args.processes, args.seconds))
        print(json.dumps(result))
        return 0

    script = __file__
    setup = _harness.run_child(script, ["--setup"], _harness.default_url(args.url) or "", 600)
    if "error" in setup:
        print(f"set-up failed: {setup['error']}", file=sys.stderr)
        return 2
    try:
        each = ["--processes", str(args.processes), "--seconds", str(args.seconds)]
        procs = [
            _harness.spawn_child(script, ["--worker", str(i), *each], setup["url"])
            for i in range(args.processes)
        ]
        results = [_harness.child_result(proc, timeout=args.seconds + 300) for proc in procs]
    finally:
        _harness.run_child(script, ["--drop"], setup["url"], 120)
    summary = _summary(results, args.seconds)
    _print(summary, setup["shown"])
    print(json.dumps(summary))
    return 1 if summary["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
