"""Case 11: the embedded server's starter killed, a stale postmaster.pid, concurrent starts, spaces.

`toolkit db start/status/stop` recover on their own, or say exactly what to do (naming the
file or setting to act on). Each test owns a fresh data directory (``data_dir``, shared
with tests/server/test_server.py) and stops its server on the way out.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import psutil
import pytest
from sqlalchemy.engine import make_url

from tests.cli.test_cli import TOOLKIT_CLI, cli_env, toolkit, toolkit_async
from tests.server.test_server import current_database, data_dir, scratch_dir
from toolkit import server

__all__ = ["data_dir", "scratch_dir"]  # fixtures shared with tests/server/test_server.py

T = TypeVar("T")

pytestmark = pytest.mark.slow


async def wait_for(probe: Callable[[], T | None], what: str) -> T:
    """Poll ``probe`` until it returns something other than None (or fail naming ``what``)."""
    deadline = time.monotonic() + 30
    while True:
        value = probe()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not seen within 30 s")
        await asyncio.sleep(0.01)


def postmasters_of(data_dir: Path) -> list[int]:
    """Pids of the PostgreSQL postmasters serving ``data_dir`` (their children left out).

    Every process of a server works in its data directory; the postmaster is the one whose
    parent is not one of them.
    """
    serving = {
        p.info["pid"]: p.info["ppid"]
        for p in psutil.process_iter(["pid", "ppid", "name", "cwd"])
        if p.info["name"] == "postgres" and p.info["cwd"] == str(data_dir)
    }
    return sorted(pid for pid, ppid in serving.items() if ppid not in serving)


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def read_pid_file(data_dir: Path) -> list[str]:
    return (data_dir / "postmaster.pid").read_text().splitlines()


def write_pid_file(data_dir: Path, pid: int, template: list[str]) -> None:
    """Do what a crash does: leave postmaster.pid naming ``pid``, which serves no server here.

    ``template`` is a real postmaster.pid's lines; only the pid is replaced.
    """
    pid_file = data_dir / "postmaster.pid"
    assert not pid_file.exists()
    pid_file.write_text("\n".join([str(pid), *template[1:]]) + "\n")
    owner = data_dir.stat()  # the server's user must be able to replace it
    os.chown(pid_file, owner.st_uid, owner.st_gid)


@pytest.fixture
def decoy(scratch_dir: Path, request: pytest.FixtureRequest) -> Iterator[psutil.Process]:
    """A live process that is not this data directory's server (``request.param`` names it).

    After a crash and a reboot, the pid in postmaster.pid often belongs to such a process:
    any program, or a process named postgres that serves another data directory.
    """
    program = scratch_dir / str(request.param)
    program.symlink_to("/bin/sleep")  # the process's name is the name it was started by
    process = subprocess.Popen([str(program), "300"])
    try:
        yield psutil.Process(process.pid)
    finally:
        process.kill()
        process.wait()


# The starter killed ---------------------------------------------------------------------


def test_server_outlives_a_killed_starter_and_toolkit_db_stop_stops_it(data_dir: Path) -> None:
    starter = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from toolkit import server; "
            "print(server.start(Path(sys.argv[1])), flush=True); time.sleep(120)",
            str(data_dir),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert starter.stdout is not None
        assert starter.stdout.readline().startswith("postgresql+asyncpg://")
        pid = server.status(data_dir).pid
    finally:
        starter.send_signal(signal.SIGKILL)
        starter.wait(timeout=30)
        if starter.stdout is not None:
            starter.stdout.close()
    assert starter.returncode == -signal.SIGKILL

    state = server.status(data_dir)
    assert state.running
    assert state.pid == pid

    stopped = toolkit("db", "stop", env=cli_env(data_dir=data_dir))

    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout.strip() == "stopped"
    assert not server.status(data_dir).running


@pytest.mark.parametrize("step", ["initdb", "pg_ctl"])
async def test_a_starter_killed_during_initdb_or_pg_ctl_leaves_nothing_the_next_start_trips_over(
    data_dir: Path, step: str
) -> None:
    env = cli_env(data_dir=data_dir)
    starter = await asyncio.create_subprocess_exec(
        str(TOOLKIT_CLI),
        "db",
        "start",
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def step_running() -> bool | None:
            assert starter.returncode is None, f"the starter finished before {step} was seen"
            children = psutil.Process(starter.pid).children()
            return True if any(child.name() == step for child in children) else None

        await wait_for(step_running, f"{step} run by `toolkit db start`")
    finally:
        starter.kill()
        await starter.wait()

    started = await toolkit_async("db", "start", env=env)

    assert started.returncode == 0, started.stderr
    assert len(postmasters_of(data_dir)) == 1
    assert await current_database(server.start(data_dir)) == "toolkit"
    leftovers = [entry.name for entry in data_dir.parent.iterdir() if entry.is_dir()]
    assert leftovers == [data_dir.name]  # no half-initialised cluster left beside it


# A stale postmaster.pid -----------------------------------------------------------------


async def test_stale_postmaster_pid_is_reported_and_start_recovers(data_dir: Path) -> None:
    server.start(data_dir)
    real_pid_file = read_pid_file(data_dir)
    server.stop(data_dir)
    gone = dead_pid()
    write_pid_file(data_dir, gone, real_pid_file)

    state = server.status(data_dir)
    assert not state.running
    assert state.stale_pid_file
    assert state.pid == gone
    assert "stale" in state.describe()
    assert server.url(data_dir) is None

    url = server.start(data_dir)

    state = server.status(data_dir)
    assert state.running
    assert not state.stale_pid_file
    assert state.pid != gone
    assert await current_database(url) == "toolkit"


async def test_a_server_killed_with_sigkill_is_reported_stale_and_toolkit_db_start_recovers_it(
    data_dir: Path,
) -> None:
    server.start(data_dir)
    killed = psutil.Process(server.status(data_dir).pid)
    killed.kill()
    killed.wait(timeout=30)
    env = cli_env(data_dir=data_dir)

    status = await toolkit_async("db", "status", env=env)
    assert status.returncode == 3
    assert f"stale postmaster.pid from pid {killed.pid}" in status.stdout
    assert "`toolkit db start` will clear it" in status.stdout

    started = await toolkit_async("db", "start", env=env)

    assert started.returncode == 0, started.stderr
    assert postmasters_of(data_dir) == [server.status(data_dir).pid]
    assert await current_database(server.start(data_dir)) == "toolkit"


@pytest.mark.parametrize("decoy", ["sleep", "postgres"], indirect=True)
async def test_a_stale_postmaster_pid_naming_a_live_process_is_cleared_by_start(
    data_dir: Path, decoy: psutil.Process
) -> None:
    """The recorded pid now belongs to another program: status says stale, start replaces it."""
    server.start(data_dir)
    real_pid_file = read_pid_file(data_dir)
    server.stop(data_dir)
    write_pid_file(data_dir, decoy.pid, real_pid_file)

    state = server.status(data_dir)
    assert not state.running
    assert state.stale_pid_file
    assert "`toolkit db start` will clear it" in state.describe()

    url = server.start(data_dir)

    assert decoy.is_running()  # the other program is left alone
    assert server.status(data_dir).pid not in (None, decoy.pid)
    assert await current_database(url) == "toolkit"


async def test_an_empty_postmaster_pid_makes_the_cli_name_the_file_to_delete(
    data_dir: Path,
) -> None:
    """Unsafe to guess (a server may be starting): every command says which file to delete."""
    server.start(data_dir)
    server.stop(data_dir)
    pid_file = data_dir / "postmaster.pid"
    pid_file.write_text("")  # what a crash during a server's start-up can leave
    env = cli_env(data_dir=data_dir)
    advice = f"delete {pid_file}, then run `toolkit db start`"

    status, started, stopped = await asyncio.gather(
        *(toolkit_async("db", command, env=env) for command in ("status", "start", "stop"))
    )

    assert status.returncode == 3
    assert advice in status.stdout
    for result in (started, stopped):
        assert result.returncode == 1
        assert result.stderr.startswith("toolkit: error: cannot tell whether a server runs")
        assert advice in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert postmasters_of(data_dir) == []

    pid_file.unlink()  # following the advice works
    again = await toolkit_async("db", "start", env=env)

    assert again.returncode == 0, again.stderr
    assert await current_database(server.start(data_dir)) == "toolkit"


def test_a_data_dir_holding_other_files_is_refused_naming_toolkit_data_dir(
    data_dir: Path,
) -> None:
    data_dir.mkdir()
    (data_dir / "notes.txt").write_text("not a cluster")

    started = toolkit("db", "start", env=cli_env(data_dir=data_dir))

    assert started.returncode == 1
    assert started.stderr.startswith(f"toolkit: error: {data_dir} is not empty")
    assert "point TOOLKIT_DATA_DIR at a new or empty directory" in started.stderr
    assert sorted(entry.name for entry in data_dir.iterdir()) == ["notes.txt"]  # untouched


# Two starters at once -------------------------------------------------------------------


async def test_two_toolkit_db_start_at_once_on_a_fresh_dir_agree_on_one_server(
    data_dir: Path,
) -> None:
    env = cli_env(data_dir=data_dir)
    began = time.monotonic()
    results = await asyncio.gather(*(toolkit_async("db", "start", env=env) for _ in range(2)))
    elapsed = time.monotonic() - began

    for result in results:
        assert result.returncode == 0, result.stderr
    urls = {line for r in results for line in r.stdout.splitlines() if line.startswith("url: ")}
    assert len(urls) == 1, urls
    assert postmasters_of(data_dir) == [server.status(data_dir).pid]
    url = make_url(urls.pop().removeprefix("url: "))
    assert await current_database(url) == "toolkit"
    print(f"two concurrent `toolkit db start` on a fresh data dir: {elapsed:.2f} s")


# A path with spaces ---------------------------------------------------------------------


async def test_a_data_dir_on_a_path_with_spaces_starts_answers_and_stops(
    scratch_dir: Path,
) -> None:
    path = scratch_dir / "my data dir" / "pg data"
    env = cli_env(data_dir=path)
    try:
        started = await toolkit_async("db", "start", env=env)
        assert started.returncode == 0, started.stderr
        status, printed = await asyncio.gather(
            toolkit_async("db", "status", env=env), toolkit_async("db", "url", env=env)
        )

        assert status.returncode == 0
        assert status.stdout.startswith("running (pid ")
        assert f"data in {path}" in status.stdout
        url = make_url(printed.stdout.strip())
        assert url.query["host"] == str(path)  # the socket is in the data directory
        assert await current_database(url) == "toolkit"

        stopped = await toolkit_async("db", "stop", env=env)
        assert stopped.returncode == 0, stopped.stderr
        assert stopped.stdout.strip() == "stopped"
        assert postmasters_of(path) == []
    finally:
        server.stop(path)
