# The seed's "Async Queries" and "Insert/Update/Delete" blocks, copied verbatim from
# shared/seeds/000_f8793b31f43eb781.txt (only the imports of the models are ours).
# tests/queries/test_queries.py runs them against toolkit.models and the migrated schema, to
# prove the seed's code works unchanged. Do not reformat or "fix" this file.
# ruff: noqa
from sqlalchemy.ext.asyncio import AsyncSession

from toolkit.models import User, Post

from sqlalchemy import select, update, delete
from sqlalchemy.orm import selectinload, joinedload

# Select all
async def get_all_users(session: AsyncSession) -> list[User]:
    result = await session.execute(select(User))
    return result.scalars().all()

# Select with filter
async def get_user_by_email(session: AsyncSession, email: str) -> User | None:
    result = await session.execute(
        select(User).where(User.email == email)
    )
    return result.scalar_one_or_none()

# Select with eager loading
async def get_user_with_posts(session: AsyncSession, user_id: int) -> User | None:
    result = await session.execute(
        select(User)
        .options(selectinload(User.posts))
        .where(User.id == user_id)
    )
    return result.scalar_one_or_none()

# Pagination
async def get_users_paginated(
    session: AsyncSession,
    skip: int = 0,
    limit: int = 100,
) -> list[User]:
    result = await session.execute(
        select(User)
        .offset(skip)
        .limit(limit)
        .order_by(User.created_at.desc())
    )
    return result.scalars().all()

# Create
async def create_user(session: AsyncSession, email: str, name: str) -> User:
    user = User(email=email, name=name)
    session.add(user)
    await session.flush()  # Get ID without committing
    return user

# Update single
async def update_user(session: AsyncSession, user_id: int, **kwargs) -> User | None:
    user = await session.get(User, user_id)
    if not user:
        return None
    for key, value in kwargs.items():
        setattr(user, key, value)
    await session.flush()
    return user

# Bulk update
async def deactivate_users(session: AsyncSession, user_ids: list[int]) -> int:
    result = await session.execute(
        update(User)
        .where(User.id.in_(user_ids))
        .values(is_active=False)
    )
    return result.rowcount

# Delete
async def delete_user(session: AsyncSession, user_id: int) -> bool:
    result = await session.execute(
        delete(User).where(User.id == user_id)
    )
    return result.rowcount > 0
