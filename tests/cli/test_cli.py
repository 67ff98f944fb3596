"""The ``toolkit`` command, run as users run it: a separate process, configured by environment."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL

import toolkit as tk
from toolkit import cli, server
from toolkit.database import Database

MakeDatabase = Callable[..., Awaitable[URL]]  # the conftest fixture's type

TOOLKIT_CLI = Path(sys.executable).parent / "toolkit"
TIMEOUT = 120


def cli_env(*, data_dir: Path | None = None, database_url: str | None = None) -> dict[str, str]:
    """The current environment without the toolkit's variables, plus the given ones."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"TOOLKIT_DATABASE_URL", "DATABASE_URL", "TOOLKIT_DATA_DIR"}
    }
    if data_dir is not None:
        env["TOOLKIT_DATA_DIR"] = str(data_dir)
    if database_url is not None:
        env["TOOLKIT_DATABASE_URL"] = database_url
    return env


def toolkit(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(TOOLKIT_CLI), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def toolkit_concurrently(
    *commands: list[str], env: dict[str, str]
) -> list[subprocess.CompletedProcess[str]]:
    """Run independent read-only commands side by side (each one pays ~1 s of imports)."""
    processes = [
        (
            args,
            subprocess.Popen(
                [str(TOOLKIT_CLI), *args],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            ),
        )
        for args in commands
    ]
    results = []
    for args, process in processes:
        out, err = process.communicate(timeout=TIMEOUT)
        results.append(subprocess.CompletedProcess(args, process.returncode, out, err))
    return results


async def toolkit_async(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``toolkit(...)`` without blocking the event loop the database fixtures live on."""
    process = await asyncio.create_subprocess_exec(
        str(TOOLKIT_CLI),
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), TIMEOUT)
    assert process.returncode is not None
    return subprocess.CompletedProcess(
        [str(TOOLKIT_CLI), *args], process.returncode, out.decode(), err.decode()
    )


def url_of(url: URL) -> str:
    return url.render_as_string(hide_password=False)


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A fresh data directory (outside pytest's tmp_path: see test_server.scratch_dir).

    Whatever server a command starts in it is stopped afterwards, then it is removed.
    """
    base = Path(tempfile.mkdtemp(prefix="tk-"))
    path = base / "pgdata"
    try:
        yield path
    finally:
        try:
            server.stop(path)
        finally:
            shutil.rmtree(base, ignore_errors=True)


# toolkit db ... ----------------------------------------------------------------------------


def test_db_status_exits_3_when_no_server_runs(data_dir: Path) -> None:
    result = toolkit("db", "status", env=cli_env(data_dir=data_dir))

    assert result.returncode == 3
    assert "not initialised" in result.stdout


def test_db_url_exits_3_and_explains_when_no_server_runs(data_dir: Path) -> None:
    result = toolkit("db", "url", env=cli_env(data_dir=data_dir))

    assert result.returncode == 3
    assert result.stdout == ""
    assert result.stderr.startswith("not running:")


def test_python_dash_m_toolkit_is_the_same_command(data_dir: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "toolkit", "db", "status"],
        env=cli_env(data_dir=data_dir),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )

    assert result.returncode == 3
    assert "not initialised" in result.stdout


@pytest.mark.slow
def test_db_start_prints_the_url_that_db_url_repeats_and_db_status_exits_0(
    data_dir: Path,
) -> None:
    env = cli_env(data_dir=data_dir)

    started = toolkit("db", "start", env=env)

    assert started.returncode == 0, started.stderr
    lines = started.stdout.splitlines()
    assert lines[0].startswith("running: running (pid ")
    assert lines[1].startswith("url: postgresql+asyncpg://")
    start_url = lines[1].removeprefix("url: ")

    status, url = toolkit_concurrently(["db", "status"], ["db", "url"], env=env)
    assert status.returncode == 0
    assert status.stdout.startswith("running (pid ")
    assert str(data_dir) in status.stdout
    assert url.returncode == 0
    assert url.stdout.strip() == start_url
    library_url = server.url(data_dir)
    assert library_url is not None
    assert url_of(library_url) == start_url  # the library agrees with the CLI


@pytest.mark.slow
def test_db_stop_stops_the_server_and_status_then_exits_3(data_dir: Path) -> None:
    server.start(data_dir)
    env = cli_env(data_dir=data_dir)

    stopped = toolkit("db", "stop", env=env)

    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout.strip() == "stopped"
    assert not server.status(data_dir).running
    status, again = toolkit_concurrently(["db", "status"], ["db", "stop"], env=env)
    assert status.returncode == 3
    assert status.stdout.startswith("stopped")
    assert again.returncode == 0
    assert again.stdout.startswith("not running:")


# toolkit migrate / seed ------------------------------------------------------------------


async def test_migrate_creates_the_schema_on_an_empty_database(
    make_database: MakeDatabase,
) -> None:
    url = await make_database(migrated=False)

    result = await toolkit_async("migrate", env=cli_env(database_url=url_of(url)))

    assert result.returncode == 0, result.stderr
    async with Database(url, pool_size=1) as database:
        version = await tk.df("select version_num from alembic_version", database=database)
        tables = await tk.df(
            "select table_name from information_schema.tables where table_schema = 'public'",
            database=database,
        )
    assert len(version) == 1
    assert f"is at revision {version['version_num'].item()}" in result.stdout
    assert {"users", "posts", "comments", "tags", "post_tags"} <= set(tables["table_name"])


async def test_migrate_twice_is_a_no_op(make_database: MakeDatabase) -> None:
    url = await make_database(migrated=True)

    result = await toolkit_async("migrate", env=cli_env(database_url=url_of(url)))

    assert result.returncode == 0, result.stderr
    assert "is at revision" in result.stdout


async def test_seed_writes_the_requested_users_and_posts(make_database: MakeDatabase) -> None:
    url = await make_database(migrated=False)
    env = cli_env(database_url=url_of(url))
    assert (await toolkit_async("migrate", env=env)).returncode == 0

    result = await toolkit_async(
        "seed", "--users", "20", "--posts-per-user", "2", "--no-progress", env=env
    )

    assert result.returncode == 0, result.stderr
    assert "users=20" in result.stdout
    assert "posts=40" in result.stdout
    assert result.stderr == ""  # --no-progress: no progress bar
    async with Database(url, pool_size=1) as database:
        counts = await tk.df(
            "select (select count(*) from users) as users, (select count(*) from posts) as posts",
            database=database,
        )
    assert counts.to_dict("records") == [{"users": 20, "posts": 40}]


async def test_seed_on_an_unmigrated_database_says_to_run_migrate(
    make_database: MakeDatabase,
) -> None:
    url = await make_database(migrated=False)

    result = await toolkit_async(
        "seed", "--users", "2", "--no-progress", env=cli_env(database_url=url_of(url))
    )

    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("toolkit: error:")
    assert "toolkit migrate" in lines[0]


# Errors ----------------------------------------------------------------------------------


def test_migrate_on_an_unreachable_server_prints_one_error_line_without_the_password() -> None:
    result = toolkit("migrate", env=cli_env(database_url="postgresql://u:hunter2@127.0.0.1:1/x"))

    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("toolkit: error: ")
    assert "127.0.0.1:1" in lines[0]
    assert "hunter2" not in result.stdout + result.stderr


def test_a_non_postgres_url_is_rejected_with_one_error_line_without_the_password() -> None:
    result = toolkit("migrate", env=cli_env(database_url="mysql://u:hunter2@127.0.0.1/x"))

    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("toolkit: error: unsupported database URL")
    assert "hunter2" not in result.stdout + result.stderr


def test_an_unknown_command_is_a_usage_error() -> None:
    result = toolkit("frobnicate", env=cli_env())

    assert result.returncode == 2
    assert "usage: toolkit" in result.stderr


# The main job --------------------------------------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _answers(port: int) -> bool:
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.write(b"GET /lab HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
    await writer.drain()
    status = await reader.readline()
    writer.close()
    await writer.wait_closed()
    return status.split()[1:2] in ([b"200"], [b"302"])


@pytest.mark.slow
async def test_lab_migrates_seeds_and_serves_jupyterlab_until_stopped(
    make_database: MakeDatabase,
) -> None:
    url = await make_database(migrated=False)
    port = _free_port()
    process = await asyncio.create_subprocess_exec(
        str(TOOLKIT_CLI),
        "lab",
        "--no-browser",
        f"--port={port}",
        "--users=20",
        "--posts-per-user=2",
        "--no-progress",
        env=cli_env(database_url=url_of(url)),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        for _ in range(600):  # up to 60 s
            if await _answers(port):
                break
            assert process.returncode is None, "toolkit lab exited early"
            await asyncio.sleep(0.1)
        else:
            pytest.fail(f"JupyterLab did not answer on port {port} within 60 s")
    finally:
        process.terminate()
        output, _ = await asyncio.wait_for(process.communicate(), timeout=30)
    text = output.decode()
    assert "schema at revision 0004_tags" in text
    assert f"preparing for JupyterLab: {_where(url)}" in text  # a socket as a path, not %2F
    assert f"127.0.0.1:{port}/lab" in text or f"localhost:{port}/lab" in text
    assert not await _answers(port), "JupyterLab stopped with toolkit lab"
    async with Database(url, pool_size=1) as database:
        users = await tk.df("select count(*) as n from users", database=database)
    assert users["n"].tolist() == [20]


# Help ------------------------------------------------------------------------------------


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[Any]:
    """(command path, parser, subcommand help) for the whole command tree."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub in action.choices.items():
                yield (*path, name), sub, helps.get(name)
                yield from _commands(sub, (*path, name))


def test_every_command_and_option_has_a_one_line_description_with_its_default() -> None:
    undocumented = []
    for path, parser, summary in [((), cli.parser(), "top"), *_commands(cli.parser())]:
        if not summary or not parser.description:
            undocumented.append(" ".join(path) or "toolkit")
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue
            if not action.help or action.help == argparse.SUPPRESS:
                undocumented.append(f"{' '.join(path)} {action.dest}")
            with_default = action.default not in (None, False, argparse.SUPPRESS)
            if with_default and "default" not in parser.format_help().split(action.dest)[-1]:
                undocumented.append(f"{' '.join(path)} {action.dest}: default not shown")
    assert undocumented == []
    assert {" ".join(p) for p, _, _ in _commands(cli.parser())} >= {
        "db",
        "db start",
        "db stop",
        "db status",
        "db url",
        "migrate",
        "downgrade",
        "seed",
        "lab",
    }


def test_help_names_each_default_and_no_rest_markup() -> None:
    seed = toolkit("seed", "--help", env=cli_env())
    top = toolkit("--help", env=cli_env())

    assert seed.returncode == top.returncode == 0
    assert "--users USERS         users to create (default: 1000)" in seed.stdout
    assert "--seed SEED" in seed.stdout
    assert "(default: 0)" in seed.stdout
    assert "``" not in top.stdout
    assert "Query PostgreSQL asynchronously from notebooks" in top.stdout


def test_db_start_help_describes_start_itself() -> None:
    result = toolkit("db", "start", "--help", env=cli_env())

    assert result.returncode == 0
    assert result.stdout.startswith("usage: toolkit db start")
    assert "start the embedded server" in result.stdout


def test_version_prints_the_installed_version() -> None:
    result = toolkit("--version", env=cli_env())

    assert result.returncode == 0
    assert result.stdout.strip() == f"toolkit {tk.__version__}"
    assert re.fullmatch(r"\d+\.\d+\.\d+\S*", tk.__version__)


async def test_migrate_to_an_unknown_revision_prints_one_line_with_the_known_ones(
    make_database: MakeDatabase,
) -> None:
    url = await make_database(migrated=False)
    env = cli_env(database_url=url_of(url))
    for command in ("migrate", "downgrade"):
        result = await toolkit_async(command, "nosuchrev", env=env)

        assert result.returncode == 1
        lines = result.stderr.strip().splitlines()
        assert lines == [
            "toolkit: error: no migration revision 'nosuchrev' - known revisions: base, "
            "0001_users, 0002_posts, 0003_comments, 0004_tags, head "
            "(relative steps such as -1 and +1 work too)"
        ], result.stderr


async def test_commands_that_write_first_name_the_server_and_database(
    make_database: MakeDatabase,
) -> None:
    url = await make_database(migrated=False)
    env = cli_env(database_url=url_of(url))

    migrated = await toolkit_async("migrate", env=env)
    seeded = await toolkit_async("seed", "--users", "1", "--no-progress", env=env)

    assert migrated.stdout.splitlines()[0] == f"migrating to head: {_where(url)}"
    assert seeded.stdout.splitlines()[0] == f"seeding demo data: {_where(url)}"


def _where(url: URL) -> str:
    """How the CLI names the server of ``url``: host and port, or a socket's directory."""
    if url.query.get("host"):  # the embedded server: a socket
        return f"socket {url.query['host']} (database {url.database})"
    return f"{url.host}:{url.port or 5432} (database {url.database})"


def test_an_incomplete_url_is_refused_before_anything_is_written() -> None:
    result = toolkit("migrate", env=cli_env(database_url="postgresql://"))

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip() == (
        "toolkit: error: the database URL from TOOLKIT_DATABASE_URL has no host and no "
        "database - write postgresql://user:password@host:port/database (for a unix socket: "
        "postgresql://user@/database?host=/var/run/postgresql)"
    )


async def test_db_reset_puts_the_demo_data_back_as_first_seeded(
    make_database: MakeDatabase,
) -> None:
    url = await make_database()
    env = cli_env(database_url=url_of(url))
    first = await toolkit_async("db", "reset", "--users", "3", "--no-progress", env=env)
    async with Database(url, pool_size=1) as database, database.session() as s:
        await s.execute(text("insert into users (email, name) values ('x@y.z', 'X')"))

    again = await toolkit_async("db", "reset", "--users", "3", "--no-progress", env=env)

    assert first.returncode == again.returncode == 0, first.stderr + again.stderr
    assert again.stdout.splitlines()[0].startswith("resetting the demo data: ")
    assert "DemoCounts(users=3, posts=30" in again.stdout
    async with Database(url, pool_size=1) as database:
        users = await tk.df("select id from users order by id", database=database)
    assert users["id"].tolist() == [1, 2, 3]
