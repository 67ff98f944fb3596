"""The embedded PostgreSQL server's lifecycle: init, start, status, url, stop.

Each test owns a fresh data directory and stops its server on the way out, so no test
sees another's server and none is left running. Recovery from faults (a killed starter,
a stale postmaster.pid, concurrent starts, paths with spaces) is in
tests/faults/test_embedded_server.py, which reuses this module's fixtures.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

import toolkit as tk
from toolkit import server
from toolkit.database import Database

# Longest unix-socket path (sun_path minus its NUL) on Linux; macOS allows 103.
SOCKET_PATH_MAX = 107


@pytest.fixture
def scratch_dir() -> Iterator[Path]:
    """A private directory outside pytest's tmp_path, removed afterwards.

    Not tmp_path: every pytest session start resets /tmp/pytest-of-<user> to mode 0700.
    Run as root, the wheel runs PostgreSQL as the ``pgserver`` user, which then can no
    longer reach a data directory under tmp_path if another pytest session starts
    meanwhile (pg_ctl fails with "could not access directory").
    """
    path = Path(tempfile.mkdtemp(prefix="tk-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def data_dir(scratch_dir: Path) -> Iterator[Path]:
    """A fresh data directory; whatever server runs in it is stopped afterwards."""
    path = scratch_dir / "pgdata"
    try:
        yield path
    finally:
        server.stop(path)


@pytest.fixture
def long_data_dir(scratch_dir: Path) -> Iterator[Path]:
    """A data directory too deep for a unix socket inside it.

    The test leaves its server running: this teardown notes where the wheel put the
    socket (a directory outside the data dir), stops the server, and removes that directory.
    """
    path = scratch_dir / ("deep_" * 20) / "pgdata"
    assert len(str(path / ".s.PGSQL.5432")) > SOCKET_PATH_MAX
    try:
        yield path
    finally:
        socket_dir = server.status(path).socket_dir
        server.stop(path)
        if socket_dir is not None and socket_dir != path:
            socket_dir.rmdir()  # empty once the server is down; fails loudly otherwise


async def current_database(url: URL) -> str:
    async with Database(url, pool_size=1) as database:
        frame = await tk.df("select current_database() as name", database=database)
    return str(frame["name"].item())


# Without a server ------------------------------------------------------------------------


def test_status_of_a_fresh_directory_says_not_running_and_not_initialised(tmp_path: Path) -> None:
    state = server.status(tmp_path / "pgdata")

    assert not state.running
    assert state.pid is None
    assert not state.stale_pid_file
    assert "not initialised" in state.describe()


def test_url_is_none_when_no_server_runs(tmp_path: Path) -> None:
    assert server.url(tmp_path / "pgdata") is None


def test_stop_without_a_server_returns_false(tmp_path: Path) -> None:
    assert server.stop(tmp_path / "pgdata") is False


# Lifecycle -------------------------------------------------------------------------------


@pytest.mark.slow
async def test_start_returns_a_url_to_the_toolkit_database(data_dir: Path) -> None:
    url = server.start(data_dir)

    assert url.drivername == "postgresql+asyncpg"
    assert url.database == server.DATABASE == "toolkit"
    assert await current_database(url) == "toolkit"
    assert (data_dir / "PG_VERSION").exists()


@pytest.mark.slow
def test_status_after_start_says_running_with_a_pid_and_socket(data_dir: Path) -> None:
    server.start(data_dir)

    state = server.status(data_dir)

    assert state.running
    assert state.pid is not None
    assert state.pid > 0
    assert state.socket_dir is not None
    assert (state.socket_dir / ".s.PGSQL.5432").is_socket()
    assert f"running (pid {state.pid})" in state.describe()


@pytest.mark.slow
def test_second_start_reuses_the_running_server_and_url_matches(data_dir: Path) -> None:
    first = server.start(data_dir)
    pid = server.status(data_dir).pid

    second = server.start(data_dir)

    assert server.status(data_dir).pid == pid
    assert second == first
    assert server.url(data_dir) == first


@pytest.mark.slow
def test_stop_returns_true_then_false_and_status_says_stopped(data_dir: Path) -> None:
    server.start(data_dir)

    assert server.stop(data_dir) is True

    state = server.status(data_dir)
    assert not state.running
    assert not state.stale_pid_file
    assert state.describe().startswith("stopped")
    assert not (data_dir / "postmaster.pid").exists()
    assert server.url(data_dir) is None
    assert server.stop(data_dir) is False


@pytest.mark.slow
async def test_start_after_stop_in_the_same_process_starts_the_server_again(
    data_dir: Path,
) -> None:
    server.start(data_dir)
    old_pid = server.status(data_dir).pid
    server.stop(data_dir)

    url = server.start(data_dir)  # the wheel caches a handle per process: it must re-check

    state = server.status(data_dir)
    assert state.running
    assert state.pid != old_pid
    assert await current_database(url) == "toolkit"


@pytest.mark.slow
async def test_data_dir_too_long_for_a_socket_falls_back_to_a_runtime_socket_dir(
    long_data_dir: Path,
) -> None:
    url = server.start(long_data_dir)

    state = server.status(long_data_dir)
    assert state.running
    assert state.socket_dir is not None
    assert state.socket_dir != long_data_dir
    assert len(str(state.socket_dir / ".s.PGSQL.5432")) <= SOCKET_PATH_MAX
    assert await current_database(url) == "toolkit"


@pytest.mark.slow
@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0,
    reason="only as root does the server run as another user (pgserver) that needs access",
)
def test_stop_as_root_works_after_a_parent_directory_was_made_private(data_dir: Path) -> None:
    server.start(data_dir)
    data_dir.parent.chmod(0o700)  # what pytest does to /tmp/pytest-of-root at session start
    try:
        assert server.stop(data_dir) is True
    finally:
        data_dir.parent.chmod(0o755)  # so the fixture can stop the server if this failed


# The Server object ---------------------------------------------------------------------


def test_a_server_object_names_its_data_directory_and_touches_nothing(tmp_path: Path) -> None:
    embedded = server.Server(tmp_path / "pgdata")
    assert embedded.data_dir == (tmp_path / "pgdata").resolve()
    assert repr(embedded) == f"Server({str((tmp_path / 'pgdata').resolve())!r})"
    assert not embedded.status().running
    assert embedded.url() is None
    assert not (tmp_path / "pgdata").exists()  # nothing made before start()


@pytest.mark.slow
def test_a_server_object_starts_reports_and_stops_its_server(data_dir: Path) -> None:
    embedded = server.Server(data_dir)
    url = embedded.start()
    assert embedded.status().running
    assert embedded.url() == url == server.url(data_dir)  # the functions see the same server
    assert embedded.stop() is True
    assert not embedded.status().running
    assert embedded.stop() is False


def test_without_a_data_directory_a_server_object_uses_the_default_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TOOLKIT_DATA_DIR", str(tmp_path / "elsewhere"))
    assert server.Server().data_dir == (tmp_path / "elsewhere").resolve()
    assert server.default_data_dir() == server.Server().data_dir


def test_the_server_binaries_are_reached_through_the_class_or_the_function() -> None:
    assert server.Server.binary("psql") == server.binary("psql")
    assert server.binary("psql").name == "psql"


@pytest.mark.slow
def test_a_running_server_object_shows_only_its_data_directory(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGPASSWORD", "hunter2")
    monkeypatch.setenv("TOOLKIT_DATABASE_URL", "postgresql://me:hunter2@elsewhere/db")
    embedded = server.Server(data_dir)
    embedded.start()

    shown = repr(embedded)

    assert shown == f"Server({str(data_dir.resolve())!r})"
    assert "hunter2" not in shown
    assert "postgresql" not in shown  # no URL, even for a running server
