"""A URL that reaches the wrong server: another service's port, a server that asks for a
password the URL does not hold. Each says what is wrong, in one error naming the fix,
with the driver's own exception as its ``__cause__``.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread

import asyncpg
import pytest
from sqlalchemy.engine import URL

import toolkit as tk
from toolkit import server

pytestmark = pytest.mark.slow


async def _failure(url: str | URL) -> tk.ConnectionFailed:
    async with tk.Database(url, connect_timeout=2) as db:
        with pytest.raises(tk.ConnectionFailed) as caught:
            await tk.df("select 1", database=db)
    return caught.value


@pytest.fixture
async def greeting_port() -> AsyncIterator[int]:
    """A service that speaks first, as MySQL and MariaDB greet every client: their
    handshake packet (length, sequence 0, protocol version 10, a version string)."""

    async def greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"\x0e\x00\x00\x00\x0a10.11.6-MariaDB\x00")
        await writer.drain()
        await reader.read(100)
        writer.close()

    listener = await asyncio.start_server(greet, "127.0.0.1", 0)
    yield listener.sockets[0].getsockname()[1]
    listener.close()
    await listener.wait_closed()


@pytest.fixture
def http_port() -> Iterator[int]:
    """A real HTTP server: it waits for a request line, so PostgreSQL's binary first
    message gets no answer (Redis does the same)."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Quiet)
    Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


class _Quiet(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """No access log on stderr."""


@pytest.mark.parametrize("sslmode", ["prefer", "disable"])
async def test_another_protocol_on_the_port_is_named(greeting_port: int, sslmode: str) -> None:
    error = await _failure(f"postgresql://u@127.0.0.1:{greeting_port}/db?sslmode={sslmode}")

    assert str(error).startswith(f"could not connect to PostgreSQL at 127.0.0.1:{greeting_port}")
    assert "does not speak PostgreSQL's protocol (it answered something else)" in str(error)
    assert "is the port right? PostgreSQL listens on 5432" in str(error)
    assert error.__cause__ is not None  # the driver's own account, kept for debugging


async def test_a_service_that_never_answers_is_named(http_port: int) -> None:
    error = await _failure(f"postgresql://u@127.0.0.1:{http_port}/db")

    assert "accepted the connection but never answered PostgreSQL's handshake" in str(error)


async def test_a_port_nobody_listens_on_is_still_said_so() -> None:
    error = await _failure("postgresql://u@127.0.0.1:1/db")

    assert "nothing is listening there" in str(error)


# A server that asks for a password -----------------------------------------------------


@pytest.fixture(scope="module")
async def password_server() -> AsyncIterator[URL]:
    """An embedded server of its own whose role ``needs_pw`` must give a password."""
    base = Path(tempfile.mkdtemp(prefix="tk-"))
    data_dir = base / "pgdata"
    url = server.start(data_dir)
    try:
        conn = await asyncpg.connect(url.set(drivername="postgresql").render_as_string(False))
        try:
            await conn.execute("CREATE ROLE needs_pw LOGIN PASSWORD 'right-one'")
            hba = Path(await conn.fetchval("SHOW hba_file"))
            await asyncio.to_thread(_ask_for_a_password, hba)
            await conn.execute("SELECT pg_reload_conf()")
        finally:
            await conn.close()
        yield url.set(username="needs_pw")
    finally:
        try:
            server.stop(data_dir)
        finally:
            shutil.rmtree(base, ignore_errors=True)


def _ask_for_a_password(hba: Path) -> None:
    hba.write_text("local all needs_pw scram-sha-256\n" + hba.read_text())


async def test_no_password_for_a_server_that_asks_says_none_was_given(
    password_server: URL, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PGPASSWORD", raising=False)

    error = await _failure(password_server)

    assert "the server asks for a password and none was given" in str(error)
    assert "percent-encoding @ : / as %40 %3A %2F" in str(error)


async def test_a_wrong_password_is_said_to_be_rejected(password_server: URL) -> None:
    error = await _failure(password_server.set(password="wrong-one"))

    assert "the password was rejected" in str(error)
    assert "wrong-one" not in str(error)


async def test_the_right_password_connects(password_server: URL) -> None:
    async with tk.Database(password_server.set(password="right-one")) as db:
        frame = await tk.df("select current_user as who", database=db)

    assert frame["who"].tolist() == ["needs_pw"]
