"""What the frames tests share: a numbers table of any size."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

BIG = 5_000


async def _numbers(session: AsyncSession, rows: int = BIG) -> None:
    await session.execute(
        text(
            "CREATE TEMP TABLE numbers ON COMMIT DROP AS "
            "SELECT g AS n, g::text AS label, (g % 2 = 0) AS even, "
            "now() - make_interval(secs => g) AS at FROM generate_series(1, :rows) g"
        ),
        {"rows": rows},
    )
    await session.execute(text("ANALYZE numbers"))
