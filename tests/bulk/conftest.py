"""What the bulk tests share."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from toolkit.models import User

MANY = 40_000  # more rows than asyncpg's 32,767 bind parameters could carry one per value


def _users(n: int, start: int = 0) -> list[dict[str, object]]:
    return [{"email": f"u{i}@example.com", "name": f"User {i}"} for i in range(start, start + n)]


async def _count(session: AsyncSession, *where: object) -> int:
    return int(await session.scalar(select(func.count()).select_from(User).where(*where)) or 0)
