"""What state a data directory's server is in, read from ``postmaster.pid`` without
starting anything: running (and ready), stopped, a stale pid file, an unreadable one."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from toolkit.config import Settings
from toolkit.errors import ServerError

__all__ = [
    "ServerStatus",
    "clear_stale_pid_file",
    "data_path",
    "default_data_dir",
    "is_postmaster_of",
    "read_status",
    "settled_status",
    "system_user",
]


def default_data_dir() -> Path:
    """``TOOLKIT_DATA_DIR``, else a per-user data directory (e.g. ~/.local/share/toolkit)."""
    configured = Settings.from_env().data_dir
    if configured is not None:
        return configured.resolve()
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
    ready: bool = False
    unreadable_pid_file: bool = False

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "postmaster.pid"

    def unreadable_advice(self) -> str:
        """What to do about a postmaster.pid that names no process (empty, truncated)."""
        return (
            f"{self.pid_file} is empty or unreadable (left by a server that crashed while "
            "starting, or being written by one starting right now); if no postgres process "
            f"runs on {self.data_dir}, delete {self.pid_file}, then run `toolkit db start`"
        )

    def describe(self) -> str:
        if self.running and not self.ready:
            return f"starting (pid {self.pid}), data in {self.data_dir}"
        if self.running:
            return f"running (pid {self.pid}), data in {self.data_dir}, socket in {self.socket_dir}"
        if self.stale_pid_file:
            return (
                f"stopped (a stale postmaster.pid from pid {self.pid} is in {self.data_dir}; "
                "`toolkit db start` will clear it)"
            )
        if self.unreadable_pid_file:
            return f"unknown: {self.unreadable_advice()}"
        if not (self.data_dir / "PG_VERSION").exists():
            return (
                f"not initialised ({self.data_dir} holds no cluster; "
                "`toolkit db start` creates one)"
            )
        return f"stopped, data in {self.data_dir}"


def read_status(data_dir: Path | None = None) -> ServerStatus:
    """Read the state from ``postmaster.pid`` without starting anything."""
    path = data_path(data_dir)
    try:
        lines = (path / "postmaster.pid").read_text().splitlines()
    except FileNotFoundError:
        return ServerStatus(path, running=False)
    except (OSError, UnicodeDecodeError):
        return ServerStatus(path, running=False, unreadable_pid_file=True)
    # Lines: pid, data dir, start time, port, socket dir, listen address, shmem key, status.
    fields = [line.strip() for line in lines]
    pid = int(fields[0]) if fields and fields[0].isdigit() else None
    if pid is None:
        return ServerStatus(path, running=False, unreadable_pid_file=True)
    if not is_postmaster_of(pid, path):
        return ServerStatus(path, running=False, pid=pid, stale_pid_file=True)
    socket_dir = Path(fields[4]) if len(fields) > 4 and fields[4] else None
    ready = len(fields) > 7 and fields[7] == "ready"
    return ServerStatus(path, running=True, pid=pid, socket_dir=socket_dir, ready=ready)


def data_path(data_dir: Path | None) -> Path:
    return (data_dir or default_data_dir()).expanduser().resolve()


def settled_status(path: Path) -> ServerStatus:
    """``read_status(path)``, giving a postmaster.pid being written right now a moment to finish.

    PostgreSQL creates postmaster.pid empty and then writes it; if it stays unreadable, this
    process cannot tell a crashed start from one in progress, so it says what to check.
    """
    deadline = time.monotonic() + 1.0
    state = read_status(path)
    while state.unreadable_pid_file and time.monotonic() < deadline:
        time.sleep(0.1)
        state = read_status(path)
    if state.unreadable_pid_file:
        raise ServerError(
            f"cannot tell whether a server runs in {path}: {state.unreadable_advice()}"
        )
    return state


def clear_stale_pid_file(state: ServerStatus) -> None:
    """Remove a postmaster.pid whose pid now belongs to another live program.

    PostgreSQL clears a stale file itself when that pid is gone, and then still uses the
    file's shared-memory key to check that no orphaned backend of the old server is alive,
    so that case is left to it. A reused pid owned by the same user would make it refuse
    to start ("lock file already exists"): that file goes.
    """
    import psutil

    if state.stale_pid_file and state.pid is not None and psutil.pid_exists(state.pid):
        state.pid_file.unlink(missing_ok=True)


def is_postmaster_of(pid: int, path: Path) -> bool:
    """True if ``pid`` is alive and is a postgres process of ``path`` (pids get reused).

    A postmaster's working directory is its data directory; other servers' processes
    (which run as the same user and may get the recorded pid after a crash) do not match.
    """
    import psutil

    try:
        process = psutil.Process(pid)
        if "postgres" not in process.name():
            return False
        try:
            return Path(process.cwd()) == path
        except psutil.AccessDenied:
            return True  # a postgres we may not inspect: trust the pid file
    except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
        return False


def system_user() -> str | None:
    """PostgreSQL refuses to run as root; the wheel runs it as ``pgserver`` then."""
    return "pgserver" if hasattr(os, "geteuid") and os.geteuid() == 0 else None
