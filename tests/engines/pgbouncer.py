"""Debian's PgBouncer in transaction mode, in front of a server, for the tests and CI.

``running(server_url)`` starts one from a config in a temp dir, on a free 127.0.0.1
port, in front of the server ``server_url`` names (a unix socket directory, as the
embedded server's, or a TCP host and port), and stops it at the end. Its pool holds
fewer server connections than a Database's pool holds clients, so consecutive
transactions of one client land on different server connections, as on a busy
production pooler.

``python -m tests.engines.pgbouncer COMMAND...`` runs COMMAND with
``TOOLKIT_DATABASE_URL`` pointing through one in front of that variable's server (the
embedded one without it); CI runs a subset of the suite so.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import URL, make_url

from toolkit import server

SERVER_CONNECTIONS = 3
"""PgBouncer's server connections per database and user (its ``default_pool_size``)."""


class NotInstalled(RuntimeError):
    """No ``pgbouncer`` program here."""


@dataclass(frozen=True)
class PgBouncer:
    port: int
    log: Path

    def url(self, behind: URL) -> URL:
        """``behind`` (a URL of the server under test), reached through this PgBouncer."""
        return behind.set(host="127.0.0.1", port=self.port, query={})


@contextlib.contextmanager
def running(server_url: URL, pool_size: int = SERVER_CONNECTIONS) -> Iterator[PgBouncer]:
    binary = shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin")
    if binary is None:
        raise NotInstalled("pgbouncer is not installed (Debian: apt-get install -y pgbouncer)")
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
            f"default_pool_size = {pool_size}\n"
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
            raise RuntimeError(f"pgbouncer exited with {process.returncode}: {output}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"pgbouncer did not listen on 127.0.0.1:{port} within 10 s")


def main(command: list[str]) -> int:
    configured = os.environ.get("TOOLKIT_DATABASE_URL", "").strip()
    started = not configured and not server.status().running
    behind = make_url(configured) if configured else server.start()  # else the embedded one
    try:
        with running(behind, pool_size=2 * SERVER_CONNECTIONS) as bouncer:
            through = bouncer.url(behind).render_as_string(hide_password=False)
            print(f"== PgBouncer (transaction mode) on 127.0.0.1:{bouncer.port}", flush=True)
            return subprocess.call(command, env={**os.environ, "TOOLKIT_DATABASE_URL": through})
    finally:
        if started:  # as the suite does: a server it started is stopped again
            server.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
