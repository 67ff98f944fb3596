"""Loading the demo data: ``seed_demo`` and ``reset_demo``, with COPY, in one transaction.

The same ``seed`` always gives the same rows (timestamps are anchored to a fixed date,
not to "now"). Rows go through PostgreSQL's COPY protocol on the session's own asyncpg
connection - one transaction, so a failure leaves nothing behind - which loads 100,000
posts in about a second where ORM ``add_all`` takes tens of seconds.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from toolkit.database import Database, get_database, refuse_writes, refuse_writes_on
from toolkit.demo._rows import (
    ANCHOR,
    SPAN,
    TAGS,
    chunks,
    comment_rows,
    post_rows,
    post_tag_rows,
    user_rows,
)
from toolkit.errors import DatabaseError, ToolkitError, server_field, translated
from toolkit.migrate import current_revision, known_revisions, migrate
from toolkit.models import Base, Comment, Post, Tag, User
from toolkit.runtime import interruptible, progress_bar
from toolkit.sql import quote

__all__ = ["DemoCounts", "reset_demo", "seed_demo"]

CHUNK = 20_000
"""Rows per COPY: bounds memory and feeds the progress bar."""


@dataclass(frozen=True)
class DemoCounts:
    """How many rows ``seed_demo`` wrote to each table."""

    users: int
    posts: int
    comments: int
    tags: int
    post_tags: int


@interruptible
async def seed_demo(
    users: int = 1_000,
    posts_per_user: int = 10,
    seed: int = 0,
    progress: bool = True,
    *,
    comments_per_post: int = 2,
    session: AsyncSession | None = None,
    database: Database | None = None,
) -> DemoCounts:
    """Write deterministic demo rows (appending after any rows already there).

    ``posts_per_user`` and ``comments_per_post`` are averages: the totals are exact
    (users x posts_per_user posts), but some authors write far more than others, as in
    real data. With ``session`` the rows join that session's transaction; otherwise
    they are committed in one transaction of their own.
    """
    if min(users, posts_per_user, comments_per_post) < 0:
        raise ValueError("users, posts_per_user and comments_per_post must not be negative")
    with translated():  # e.g. an unmigrated database: UndefinedTable, "run toolkit migrate"
        if session is not None:
            return await _seed(session, users, posts_per_user, comments_per_post, seed, progress)
        async with (database or get_database()).session() as own:
            return await _seed(own, users, posts_per_user, comments_per_post, seed, progress)


@interruptible
async def reset_demo(
    users: int = 1_000,
    posts_per_user: int = 10,
    seed: int = 0,
    progress: bool = False,
    *,
    comments_per_post: int = 2,
    database: Database | None = None,
) -> DemoCounts:
    """Put the demo database back as ``toolkit lab`` first made it, in about a second:
    migrated to head, the toolkit's tables emptied (ids start again at 1) and seeded
    again with the same parameters - so a notebook run twice shows the same rows.

    Only the tables of ``toolkit.models`` are touched (tables a notebook created stay),
    in one transaction: if anything fails, the data is as it was. A database the toolkit
    never migrated is refused rather than given the toolkit's tables.
    """
    if min(users, posts_per_user, comments_per_post) < 0:
        raise ValueError("users, posts_per_user and comments_per_post must not be negative")
    db = database or get_database()
    with translated():
        revision = await current_revision(database=db)
    if revision not in known_revisions():
        raise ToolkitError(
            "reset_demo resets only a database the toolkit migrated, and this one is at "
            f"revision {revision or 'none'} - run `toolkit migrate` (or `await tk.migrate()`) "
            "first if it is meant to hold the demo data"
        )
    async with db.engine.connect() as conn:  # a hot standby: refused before the migration
        await refuse_writes_on(conn, "reset_demo")
    await migrate(database=db)
    tables = ", ".join(quote(t.name, "table") for t in Base.metadata.sorted_tables)
    try:
        with translated():
            async with db.session() as s:
                await s.execute(text(f"TRUNCATE {tables} RESTART IDENTITY"))
                return await _seed(s, users, posts_per_user, comments_per_post, seed, progress)
    except DatabaseError as exc:
        if exc.sqlstate != _REFERENCED:
            raise
        detail = server_field(exc, "detail") or "another table references them"
        raise ToolkitError(
            f"reset_demo cannot empty the demo tables: {detail} - drop that foreign key "
            "(or that table) first; the demo data is unchanged"
        ) from exc


_REFERENCED = "0A000"
"""TRUNCATE's SQLSTATE when a table outside the list references one in it."""


async def _seed(
    session: AsyncSession,
    n_users: int,
    posts_per_user: int,
    comments_per_post: int,
    seed: int,
    progress: bool,
) -> DemoCounts:
    rng = random.Random(seed)
    start = {
        model: int(await session.scalar(select(func.coalesce(func.max(model.id), 0))) or 0)
        for model in (User, Post, Comment, Tag)
    }
    conn = await session.connection()
    raw = (await conn.get_raw_connection()).driver_connection
    assert raw is not None
    await refuse_writes(raw, conn.engine.sync_engine, "seed_demo")

    n_posts = n_users * posts_per_user
    n_comments = n_posts * comments_per_post
    bar = progress_bar(n_users + n_posts + n_comments, progress, "demo data")

    async def copy(table: str, columns: Sequence[str], rows: Iterator[tuple[Any, ...]]) -> int:
        count = 0
        for chunk in chunks(rows, CHUNK):
            await raw.copy_records_to_table(table, records=chunk, columns=list(columns))
            count += len(chunk)
            if table != "post_tags" and table != "tags":
                bar.update(len(chunk))
        return count

    user_ids = list(range(start[User] + 1, start[User] + n_users + 1))
    user_created = {uid: ANCHOR - SPAN + SPAN * rng.random() for uid in user_ids}
    await copy(
        "users", ("id", "email", "name", "is_active", "created_at"), user_rows(rng, user_created)
    )

    tag_rows = (
        [(start[Tag] + i + 1, name) for i, name in enumerate(TAGS)] if start[Tag] == 0 else []
    )
    n_tags = await copy("tags", ("id", "name"), iter(tag_rows))
    tag_ids = [row[0] for row in tag_rows] or [
        tid for (tid,) in (await session.execute(select(Tag.id))).all()
    ]

    # Skewed authorship: a few prolific writers, a long tail (Zipf-like weights).
    weights = [1.0 / (rank + 1) ** 0.8 for rank in range(len(user_ids))]
    rng.shuffle(weights)
    authors = rng.choices(user_ids, weights=weights, k=n_posts) if user_ids else []
    post_ids = list(range(start[Post] + 1, start[Post] + n_posts + 1))
    post_created = [user_created[a] + (ANCHOR - user_created[a]) * rng.random() for a in authors]
    await copy(
        "posts",
        ("id", "title", "content", "author_id", "created_at"),
        post_rows(rng, post_ids, authors, post_created),
    )
    n_links = await copy("post_tags", ("post_id", "tag_id"), post_tag_rows(rng, post_ids, tag_ids))

    await copy(
        "comments",
        ("id", "post_id", "author_id", "body", "created_at"),
        comment_rows(rng, start[Comment], n_comments, post_ids, post_created, user_ids),
    )
    bar.close()

    for table in ("users", "posts", "comments", "tags"):
        await session.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT coalesce(max(id), 0) + 1 FROM {table}), false)"
            )
        )
    return DemoCounts(n_users, n_posts, n_comments, n_tags, n_links)
