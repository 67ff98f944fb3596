"""Text edge cases, read through every path, as psycopg reads them: '' against NULL, a
character from every Unicode plane, the characters COPY's text format escapes (tab,
newline, carriage return, backslash, ``\\N``, ``\\.``), quotes, control characters and a
10 MB value - as text, inside an array and as a JSON string.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from tests.conformance.conftest import PATHS, Raised, Reader, normalise
from toolkit.database import Database

TEXTS: list[str | None] = [
    "",
    None,
    "plain",
    " ",
    "  leading and trailing  ",
    *(chr((plane << 16) + 0x41) for plane in range(1, 17)),  # a code point of every plane
    "é € \u2028 \ufeff \uffff ü",  # plane 0: accents, a line separator, a BOM, U+FFFF
    "\U0001f418 \U0010ffff",
    "tab\there",
    "\t",
    "line\nbreak",
    "\n",
    "carriage\rreturn",
    "\r\n",
    "back\\slash",
    "\\",
    "\\\\",
    "ends with \\",
    "\\N",
    "\\.",
    "\\n is not a newline",
    "say 'hi' and \"bye\"",
    "NULL",
    "null",
    "a,b;c|d",
    "".join(chr(c) for c in range(1, 32)) + "\x7f",
    "\\\t\n\r\\N\\\\",
]
"""Every value once; each is also read inside a one-element array and as a JSON string."""

BIG = ("ten megabytes \t\\\n\r 🐘 ünï " * 400_000)[: 10 * 1024 * 1024]


@pytest.fixture(scope="module")
async def texts(reference: psycopg.AsyncConnection[Any]) -> AsyncIterator[str]:
    """A table of the values (bound as parameters by psycopg): its name."""
    await reference.execute("CREATE TABLE texts (i int, v text, a text[], j jsonb)")
    await reference.cursor().executemany(
        "INSERT INTO texts VALUES (%s, %s, %s, %s)",
        [
            (i, v, None if v is None else [v], None if v is None else Jsonb(v))
            for i, v in enumerate(TEXTS)
        ],
    )
    await reference.execute("CREATE TABLE big_text (i int, v text)")
    await reference.execute("INSERT INTO big_text VALUES (1, %s), (2, 'after')", (BIG,))
    yield "texts"
    await reference.execute("DROP TABLE texts, big_text")


async def _psycopg(conn: psycopg.AsyncConnection[Any], sql: str) -> list[Any]:
    cursor = await conn.execute(sql)  # type: ignore[arg-type]  # constant SQL
    return [normalise(row[0]) for row in await cursor.fetchall()]


@pytest.fixture
def reader(conformance_db: Database, request: pytest.FixtureRequest, path: str) -> Reader:
    kernel = request.getfixturevalue("magic_kernel") if path.startswith("magic") else None
    return Reader(conformance_db, kernel)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("column", ["v", "a", "j", "v::varchar", "v::name"])
async def test_every_text_edge_case_reads_as_psycopg_gives_it(
    column: str, path: str, reader: Reader, texts: str, reference: psycopg.AsyncConnection[Any]
) -> None:
    sql = f"SELECT {column} AS v FROM {texts} ORDER BY i"
    if column == "v::name":  # name holds 63 bytes: the values that fit
        sql = f"SELECT {column} AS v FROM {texts} WHERE octet_length(v) < 64 ORDER BY i"
    want = await _psycopg(reference, sql)
    got = await reader.read(path, sql)
    assert not isinstance(got, Raised), got
    assert got == want
    if path.startswith("copy/"):
        assert reader.copy_answered == ([] if column == "a" else [True])  # arrays: row path
    if column == "j":
        assert got[2:] == [None if v is None else v for v in TEXTS[2:]]  # the strings
    if column == "v":  # psycopg agrees with what was written
        assert want == TEXTS
        assert json.dumps(got) == json.dumps(TEXTS)


@pytest.mark.parametrize("path", PATHS)
async def test_a_10_mb_value_reads_whole(
    path: str, reader: Reader, texts: str, reference: psycopg.AsyncConnection[Any]
) -> None:
    sql = "SELECT v FROM big_text ORDER BY i"
    got = await reader.read(path, sql)
    assert not isinstance(got, Raised), got
    assert got == [BIG, "after"]
    assert got == await _psycopg(reference, sql)
    if path.startswith("copy/"):  # a row longer than Arrow's blocks: COPY still answers
        assert reader.copy_answered == [True]
