"""The demo rows themselves: names, words and tags, and the generators that draw users,
posts, tags and comments from one seeded ``random.Random`` (the same seed, the same rows)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = [
    "ANCHOR",
    "SPAN",
    "TAGS",
    "chunks",
    "comment_rows",
    "post_rows",
    "post_tag_rows",
    "user_rows",
]

ANCHOR = datetime(2026, 1, 1, tzinfo=UTC)
"""Demo timestamps fall in the two years before this instant."""
SPAN = timedelta(days=730)

FIRST = [
    "Ada",
    "Alan",
    "Barbara",
    "Claude",
    "Dennis",
    "Edsger",
    "Frances",
    "Grace",
    "Guido",
    "Hedy",
    "Ken",
    "Katherine",
    "Linus",
    "Margaret",
    "Niklaus",
    "Radia",
    "Ritchie",
    "Shafi",
    "Sophie",
    "Tim",
    "Yukihiro",
    "Barbara",
    "John",
    "Donald",
    "Leslie",
    "Mary",
    "Annie",
    "Jean",
    "Evelyn",
    "Kathleen",
    "Betty",
    "Adele",
    "Lynn",
    "Joan",
]
LAST = [
    "Lovelace",
    "Turing",
    "Liskov",
    "Shannon",
    "Ritchie",
    "Dijkstra",
    "Allen",
    "Hopper",
    "Rossum",
    "Lamarr",
    "Thompson",
    "Johnson",
    "Torvalds",
    "Hamilton",
    "Wirth",
    "Perlman",
    "Goldwasser",
    "Wilson",
    "Lee",
    "Matsumoto",
    "Knuth",
    "Lamport",
    "Keller",
    "Easley",
    "Bartik",
    "Clarke",
    "Booth",
    "Holberton",
    "Goldberg",
    "Conway",
    "Sammet",
    "Wing",
]
WORDS = [
    "async",
    "query",
    "index",
    "page",
    "cursor",
    "session",
    "engine",
    "pool",
    "loop",
    "await",
    "select",
    "join",
    "load",
    "eager",
    "lazy",
    "batch",
    "copy",
    "stream",
    "frame",
    "column",
    "table",
    "schema",
    "migration",
    "revision",
    "commit",
    "rollback",
    "flush",
    "transaction",
    "latency",
    "plan",
    "scan",
    "vacuum",
    "tuple",
    "row",
    "key",
    "seek",
    "offset",
    "limit",
    "order",
    "notebook",
    "kernel",
    "chart",
    "metric",
    "sample",
    "profile",
    "trend",
    "signal",
    "outlier",
    "cohort",
]
TAGS = [
    "python",
    "postgres",
    "sqlalchemy",
    "asyncio",
    "pandas",
    "jupyter",
    "performance",
    "tutorial",
    "databases",
    "analytics",
    "migrations",
    "testing",
    "indexing",
    "pagination",
    "visualization",
    "tips",
]


def user_rows(rng: random.Random, created: dict[int, datetime]) -> Iterator[tuple[Any, ...]]:
    for uid, when in created.items():
        first, last = rng.choice(FIRST), rng.choice(LAST)
        yield (
            uid,
            f"{first}.{last}.{uid}@example.com".lower(),
            f"{first} {last}",
            rng.random() < 0.9,
            when,
        )


class _Phrases:
    """Sentences drawn from a pool made once per seed: picking one is a single random
    call, where building each sentence word by word dominated the seeding time."""

    def __init__(self, rng: random.Random, low: int, high: int, size: int = 4_096) -> None:
        self._pool = [
            " ".join(rng.choices(WORDS, k=rng.randint(low, high))).capitalize() for _ in range(size)
        ]
        self._rng = rng

    def __call__(self) -> str:
        return self._pool[int(self._rng.random() * len(self._pool))]


def post_rows(
    rng: random.Random, ids: list[int], authors: list[int], created: list[datetime]
) -> Iterator[tuple[Any, ...]]:
    title, sentence = _Phrases(rng, 3, 8), _Phrases(rng, 6, 14)
    for pid, author, when in zip(ids, authors, created, strict=True):
        content = ". ".join([sentence() for _ in range(1 + int(rng.random() * 4))]) + "."
        yield (pid, title(), content, author, when)


def post_tag_rows(
    rng: random.Random, post_ids: list[int], tag_ids: list[int]
) -> Iterator[tuple[int, int]]:
    if not tag_ids:
        return
    for pid in post_ids:
        for tid in rng.sample(tag_ids, k=min(len(tag_ids), rng.randint(0, 3))):
            yield (pid, tid)


def comment_rows(
    rng: random.Random,
    start: int,
    count: int,
    post_ids: list[int],
    post_created: list[datetime],
    user_ids: list[int],
) -> Iterator[tuple[Any, ...]]:
    if not post_ids or not user_ids:
        return
    body = _Phrases(rng, 3, 16)
    for offset in range(count):
        index = rng.randrange(len(post_ids))
        written = post_created[index] + timedelta(hours=rng.expovariate(1 / 48))
        yield (
            start + offset + 1,
            post_ids[index],
            rng.choice(user_ids),
            body(),
            min(written, ANCHOR),
        )


def chunks(rows: Iterator[tuple[Any, ...]], size: int) -> Iterator[list[tuple[Any, ...]]]:
    chunk: list[tuple[Any, ...]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
