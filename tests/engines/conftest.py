"""Engines in front of (or beside) the server under test.

``pgbouncer``: Debian's PgBouncer in transaction mode, started for the session from a
config in a temp dir, on a free 127.0.0.1 port, in front of the server under test (the
embedded server's unix socket or the system server's TCP port), and stopped at the end.
Its pool holds fewer server connections than a Database's pool holds clients, so
consecutive transactions of one client land on different server connections, as on a
busy production pooler. Skipped, with the reason, where ``pgbouncer`` is not installed.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

SERVER_CONNECTIONS = 3
"""PgBouncer's server connections per database and user (its ``default_pool_size``)."""


@dataclass(frozen=True)
class PgBouncer:
    port: int
    log: Path

    def url(self, behind: URL) -> URL:
        """``behind`` (a URL of the server under test), reached through this PgBouncer."""
        return behind.set(host="127.0.0.1", port=self.port, query={})


@pytest.fixture(scope="session")
def pgbouncer(server_url: URL) -> Iterator[PgBouncer]:
    binary = shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin")
    if binary is None:
        pytest.skip("pgbouncer is not installed (Debian: apt-get install -y pgbouncer)")
    host = server_url.query.get("host") or server_url.host or "127.0.0.1"
    assert isinstance(host, str)
    port = _free_port()
    user = server_url.username or "postgres"
    with tempfile.TemporaryDirectory(prefix="toolkit-pgbouncer-") as tmp:
        directory = Path(tmp)
        (directory / "users.txt").write_text(f'"{user}" ""\n')
        config = directory / "pgbouncer.ini"
        log = directory / "pgbouncer.log"
        config.write_text(
            "[databases]\n"
            f"* = host={host} port={server_url.port or 5432} user={user}\n"
            "[pgbouncer]\n"
            "listen_addr = 127.0.0.1\n"
            f"listen_port = {port}\n"
            "unix_socket_dir =\n"
            "auth_type = trust\n"
            f"auth_file = {directory / 'users.txt'}\n"
            "pool_mode = transaction\n"
            f"default_pool_size = {SERVER_CONNECTIONS}\n"
            "max_client_conn = 500\n"
            f"logfile = {log}\n"
            f"pidfile = {directory / 'pgbouncer.pid'}\n"
        )
        command = [binary, str(config)]
        if os.geteuid() == 0:  # PgBouncer refuses to run as root
            command[1:1] = ["-u", _unprivileged_user(host)]
            directory.chmod(0o777)
            for path in directory.iterdir():
                path.chmod(0o644)
        with (directory / "output.txt").open("wb") as output:
            process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
            try:
                _wait_for(port, process, log)
                yield PgBouncer(port, log)
            finally:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def _unprivileged_user(host: str) -> str:
    """The user PgBouncer runs as under root: the owner of a unix socket's directory
    (only it may reach the embedded server's socket), else ``nobody``."""
    if host.startswith("/"):
        return pwd.getpwuid(os.stat(host).st_uid).pw_name
    return "nobody"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = ""
            for path in (log.parent / "output.txt", log):
                with contextlib.suppress(OSError):
                    output += path.read_text()
            pytest.fail(f"pgbouncer exited with {process.returncode}: {output}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    pytest.fail(f"pgbouncer did not listen on 127.0.0.1:{port} within 10 s")
