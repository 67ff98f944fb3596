"""Benchmark: bulk update by primary key, tk.bulk_update against the ORM, Core and
hand-written asyncpg statements.

Run by hand (not part of the test suite)::

    .venv/bin/python benchmarks/update.py [--update-rows 100000] [--url URL]

Each approach runs in its own process on a freshly filled and vacuumed table
(``_bench_tables``); the table's content is checked against the others'. See
benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Sequence
from typing import Any

import _bench_tables
from _bench_tables import (
    UPDATE_TABLE,
    bench_models,
    check_cell,
    measured_on_table,
    result_row,
)
from _harness import (
    COLORS,
    COLUMNS,
    Close,
    Run,
    Worker,
    libpq_dsn,
    markdown_table,
    median_time,
    ratio,
    repeat_options,
    sqlalchemy_url,
    target,
)

UPDATES: dict[str, str] = {
    "orm": "ORM update(Model) by PK, list of dicts",
    "core": "Core update().where(id == bindparam) executemany",
    "asyncpg-executemany": "asyncpg executemany UPDATE ... WHERE id = $1",
    "asyncpg-unnest": "asyncpg UPDATE ... FROM unnest($1::bigint[], ...)",
    "tk": "tk.bulk_update(Model, dicts)",
}


HAND_WRITTEN = ("core", "asyncpg-executemany", "asyncpg-unnest")


UPDATE_FILL = f"""
INSERT INTO {UPDATE_TABLE} (id, {", ".join(COLUMNS)})
SELECT g, g % 1000, (ARRAY{list(COLORS)})[1 + g % 7], (g % 100000) / 100.0,
       timestamptz '2020-01-01 00:00:00+00' + g * interval '1 minute', md5(g::text), g % 2 = 0
FROM generate_series(1, $1::int) AS g
"""


UPDATE_CHECK = f"""
SELECT count(*) FILTER (WHERE note LIKE 'upd %') AS updated,
       md5(string_agg(ROW(id, {", ".join(COLUMNS)})::text, E'\\n' ORDER BY id)) AS digest
FROM {UPDATE_TABLE}
"""


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


async def _update_approach(name: str, url: str, rows: list[dict[str, Any]]) -> tuple[Run, Close]:
    """Every approach starts from the same list of dicts; reshaping them is timed."""
    model = bench_models()["update"]
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


def update_worker(args: argparse.Namespace, name: str, size: str, url: str) -> Any:
    rows = int(size)
    updates = _update_rows(rows)

    async def reset(admin: Any) -> None:  # the same freshly filled, vacuumed table every run
        await admin.execute(f"TRUNCATE {UPDATE_TABLE}")
        await admin.execute(UPDATE_FILL, rows)
        await admin.execute(f"VACUUM (ANALYZE) {UPDATE_TABLE}")

    def approach() -> Awaitable[tuple[Run, Close]]:
        return _update_approach(name, url, updates)

    key = "id bigint PRIMARY KEY"
    return measured_on_table(url, UPDATE_TABLE, key, reset, approach, UPDATE_CHECK, args)


def print_updates(rows: int, results: dict[str, Any]) -> None:
    base = median_time(results.get("tk"))
    reference = next((r["check"] for r in results.values() if r.get("check")), None)
    lines = []
    for key, label in UPDATES.items():
        result = results.get(key, {})
        check = result.get("check") or {}
        note = "" if check.get("updated") == rows else f" ({check.get('updated')} updated)"
        time_ratio = ratio(median_time(result), base)
        lines.append(
            result_row([label], result, rows, time_ratio, check_cell(check, reference) + note)
        )
    print(f"\nUPDATE {rows:,} rows by primary key (new n and note; ids shuffled) in {UPDATE_TABLE}")
    headers = ["approach", "median s", "min s", "1st run s", "rows/s", "time x tk"]
    headers += ["RSS delta MB", "runs", "table content"]
    print(markdown_table(headers, lines))


def print_targets(updates: dict[str, Any]) -> None:
    print("\ntargets")
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


def _positive(text: str) -> int:
    if int(text) < 1:
        raise argparse.ArgumentTypeError("must be positive")
    return int(text)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--update-rows", type=_positive, default=100_000, help="rows to update")

    def measure_all(args: argparse.Namespace, run_worker: Worker) -> None:
        rows = args.update_rows
        updates: dict[str, dict[str, Any]] = {}
        for key, label in UPDATES.items():
            updates[key] = run_worker(key, str(rows), f"update {label}", repeat_options(args))
        print_updates(rows, updates)
        print_targets(updates)

    return _bench_tables.main(__file__, "update", parser, argv, update_worker, measure_all)


if __name__ == "__main__":
    sys.exit(main())
