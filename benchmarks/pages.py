"""Benchmark: offset pages (tk.paginate, a bare OFFSET query) against keyset pages
(tk.keyset_page) at depths 1 to 10,000 of a 1,000,000-row table.

Run by hand (not part of the test suite)::

    .venv/bin/python benchmarks/pages.py [--depths 1,10,100,1000,10000] [--url URL]

The table (``bench_pages``) is built once and kept between runs only with ``--keep``;
each approach runs in its own process. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any

import _bench_tables
from _bench_tables import PAGE_SIZE, PAGE_TABLE, PAGE_TABLE_ROWS, bench_models
from _harness import (
    Run,
    Worker,
    fmt_ms,
    markdown_table,
    median_time,
    peak_rss_kib,
    ratio,
    reset_peak,
    rss_kib,
    sizes_arg,
    target,
)

DEFAULT_DEPTHS = "1,10,100,1000,10000"


PAGERS: dict[str, str] = {
    "paginate": "tk.paginate (page + count)",
    "offset": "bare OFFSET query",
    "keyset": "tk.keyset_page",
}


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

    model = bench_models()["pages"]

    async def main() -> dict[str, Any]:
        db = tk.Database(url)
        try:
            out: dict[str, Any] = {"depths": {}}
            baseline = rss_kib()
            reset = reset_peak()
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
            out["delta_kib"] = max(0, peak_rss_kib(reset) - baseline)
            return out
        finally:
            await db.dispose()

    return asyncio.run(main())


def print_pages(depths: Sequence[int], results: dict[str, Any]) -> None:
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
                f"{fmt_ms(statistics.median(found['times']))} / {fmt_ms(min(found['times']))}"
            )
            if found["first_id"] != (depth - 1) * PAGE_SIZE + 1:
                wrong.append(f"{PAGERS[key]} at page {depth} starts at id {found['first_id']}")
        pag, off, key = median("paginate", depth), median("offset", depth), median("keyset", depth)
        row += [ratio(pag, key, 1), ratio(off, key, 1), ratio(key, keyset_first)]
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
            f"{fmt_ms(statistics.median(count['times']))} ms, {len(count['times'])} runs"
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


def print_targets(pages: dict[str, Any]) -> None:
    print("\ntargets")
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
        "--depths",
        type=sizes_arg(1, PAGE_TABLE_ROWS // PAGE_SIZE),
        default=DEFAULT_DEPTHS,
        help=f"page numbers (default {DEFAULT_DEPTHS})",
    )
    parser.add_argument("--page-runs", type=int, default=5, help="least timed runs per page")
    parser.add_argument(
        "--page-time",
        type=float,
        default=0.5,
        help="repeat a page (at most 50 runs) to this many s",
    )

    def worker(args: argparse.Namespace, name: str, size: str, url: str) -> Any:
        depths = [int(d) for d in size.split(",")]
        return pages_worker(name, depths, args.page_runs, args.page_time, url)

    def measure_all(args: argparse.Namespace, run_worker: Worker) -> None:
        pages: dict[str, dict[str, Any]] = {}
        extra = ["--page-runs", str(args.page_runs), "--page-time", str(args.page_time)]
        for key, label in PAGERS.items():
            depths = ",".join(map(str, args.depths))
            pages[key] = run_worker(key, depths, f"pages {label}", extra)
        print_pages(args.depths, pages)
        print_targets(pages)

    return _bench_tables.main(__file__, "pages", parser, argv, worker, measure_all, on_table=False)


if __name__ == "__main__":
    sys.exit(main())
