"""The ``toolkit`` command: the embedded database, migrations, demo data and JupyterLab.

toolkit db start|stop|status|url   the embedded PostgreSQL server
toolkit db reset [--users N ...]   the demo data as first seeded
toolkit migrate [REVISION]         upgrade the configured database (default: head)
toolkit downgrade REVISION         downgrade it ("base" drops every table)
toolkit seed [--users N ...]       deterministic demo data
toolkit lab [--no-browser] [--port N]
                                   database up, migrated, demo data, JupyterLab
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from toolkit._version import __version__
from toolkit.config import Settings, mask_url, server_address
from toolkit.database import Database
from toolkit.demo import reset_demo, seed_demo
from toolkit.errors import ToolkitError
from toolkit.migrate import migrate
from toolkit.models import User
from toolkit.runtime import run
from toolkit.server import Server

__all__ = ["main", "parser"]


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        code: int = args.handler(args)
    except ToolkitError as exc:
        print(f"toolkit: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return code


_DESCRIPTION = (
    "Query PostgreSQL asynchronously from notebooks: the embedded database, migrations, "
    "demo data and JupyterLab. The database is TOOLKIT_DATABASE_URL's (or DATABASE_URL's), "
    "else the embedded server in TOOLKIT_DATA_DIR."
)


def parser() -> argparse.ArgumentParser:
    """Every command and option with a one-line help that gives its default
    (``tests/test_cli.py`` checks that none is left undocumented)."""
    formatter = _DefaultsShown
    top = argparse.ArgumentParser(
        prog="toolkit", description=_DESCRIPTION, formatter_class=formatter
    )
    top.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}", help="print the version"
    )
    commands = top.add_subparsers(required=True, metavar="COMMAND", title="commands")

    def command(name: str, summary: str) -> argparse.ArgumentParser:
        return commands.add_parser(
            name, help=summary, description=summary, formatter_class=formatter
        )

    db = command("db", "manage the embedded PostgreSQL server (not used with a URL)")
    actions = db.add_subparsers(required=True, metavar="ACTION", title="actions")
    for action, summary in (
        ("start", "start the embedded server (initialised on first start); print its URL"),
        ("stop", "stop the embedded server"),
        (
            "status",
            "say whether the embedded server runs (exit status 3 when not) and what server it "
            "is; with a database URL configured, that database's server",
        ),
        ("url", "print the running embedded server's URL (exit status 3 when not running)"),
    ):
        sub = actions.add_parser(
            action, help=summary, description=summary, formatter_class=formatter
        )
        sub.set_defaults(handler=_db, action=action)
    summary = "put the demo data back as first seeded: the toolkit's tables emptied and seeded"
    reset = actions.add_parser(
        "reset", help=summary, description=summary, formatter_class=formatter
    )
    _seed_options(reset)
    reset.set_defaults(handler=_reset)

    up = command("migrate", "upgrade the database schema to a revision")
    up.add_argument("revision", nargs="?", default="head", help="Alembic revision id, or +N steps")
    up.set_defaults(handler=_migrate)

    down = command("downgrade", "downgrade the database schema to a revision")
    down.add_argument(
        "revision", help='Alembic revision id, -N steps, or "base" (drops every table)'
    )
    down.set_defaults(handler=_downgrade)

    seed = command("seed", "write deterministic demo data (users, posts, comments, tags)")
    _seed_options(seed)
    seed.set_defaults(handler=_seed)

    lab = command(
        "lab", "database up, migrated, demo data loaded (if empty), JupyterLab on notebooks/"
    )
    lab.add_argument("--no-browser", action="store_true", help="do not open a browser")
    lab.add_argument(
        "--port",
        type=int,
        default=None,
        help="JupyterLab's port (default: its own, 8888 or the next free one)",
    )
    lab.add_argument(
        "--notebook-dir", type=Path, default=None, help="notebooks to serve (default: ./notebooks)"
    )
    _seed_options(lab)
    lab.set_defaults(handler=_lab)
    return top


class _DefaultsShown(argparse.HelpFormatter):
    """argparse's ArgumentDefaultsHelpFormatter without "(default: False)" on flags and
    "(default: None)" where the help says what None means."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        help_text = action.help or ""
        shown = not any(action.default is hidden for hidden in (None, False, argparse.SUPPRESS))
        if not shown or "(default" in help_text:
            return help_text
        return f"{help_text} (default: %(default)s)"


def _seed_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--users", type=int, default=1_000, help="users to create")
    parser.add_argument(
        "--posts-per-user",
        type=int,
        default=10,
        help="posts per user, on average (the total is exact)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="random seed: the same seed, the same data"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _db(args: argparse.Namespace) -> int:
    embedded = Server()  # the default data directory: TOOLKIT_DATA_DIR, else the user's
    if args.action == "start":
        url = embedded.start()
        print(f"running: {embedded.status().describe()}")
        print(f"url: {url.render_as_string(hide_password=False)}")
    elif args.action == "stop":
        print("stopped" if embedded.stop() else f"not running: {embedded.status().describe()}")
    elif args.action == "status":
        return _status()
    else:
        current = embedded.url()
        if current is None:
            print(f"not running: {embedded.status().describe()}", file=sys.stderr)
            return 3
        print(current.render_as_string(hide_password=False))
    return 0


def _status() -> int:
    """The embedded server's state - or, with a database URL configured, that database -
    and what the server is (version, standby or primary, Citus, a pooler)."""
    settings = Settings.from_env()
    if settings.database_url is None:
        state = Server().status()
        print(state.describe())
        if not state.running:
            return 3  # 3: "not running", as pg_ctl status
    else:
        print(f"configured: {mask_url(settings.database_url)} (from {settings.url_source})")
    database = Database()

    async def described() -> str:
        return (await database.server()).describe()

    try:
        shown = run(_with(database, described()))
    except ToolkitError as exc:
        print(f"server: not reachable - {exc}")
        return 3
    print(f"server: {shown}")
    return 0


def _migrate(args: argparse.Namespace) -> int:
    database = _announced(Database(), f"migrating to {args.revision}")
    revision = run(_with(database, migrate(args.revision, database=database)))
    print(f"{mask_url(database.url)} is at revision {revision}")
    return 0


def _downgrade(args: argparse.Namespace) -> int:
    from toolkit.migrate import downgrade

    database = _announced(Database(), f"downgrading to {args.revision}")
    revision = run(_with(database, downgrade(args.revision, database=database)))
    print(f"{mask_url(database.url)} is at revision {revision or 'base'}")
    return 0


def _seed(args: argparse.Namespace) -> int:
    database = _announced(Database(), "seeding demo data")
    counts = run(_with(database, _demo(args, database)))
    print(f"seeded {mask_url(database.url)}: {counts}")
    return 0


def _reset(args: argparse.Namespace) -> int:
    database = _announced(Database(), "resetting the demo data")
    counts = run(
        _with(
            database,
            reset_demo(
                args.users,
                args.posts_per_user,
                args.seed,
                progress=not args.no_progress,
                database=database,
            ),
        )
    )
    print(f"reset {mask_url(database.url)}: {counts}")
    return 0


def _demo(args: argparse.Namespace, database: Database) -> Any:
    """seed_demo with the options ``_seed_options`` added to a command."""
    return seed_demo(
        args.users,
        args.posts_per_user,
        args.seed,
        progress=not args.no_progress,
        database=database,
    )


def _lab(args: argparse.Namespace) -> int:
    notebooks = _notebook_dir(args.notebook_dir)
    database = _announced(Database(), "preparing for JupyterLab")

    async def prepare() -> None:
        revision = await migrate(database=database)
        print(f"schema at revision {revision}")
        async with database.session() as s:
            users = await s.scalar(select(func.count()).select_from(User))
        if not users:
            print(f"demo data: {await _demo(args, database)}")
        else:
            print(f"demo data: {users} users already there")

    run(_with(database, prepare()))
    command = [sys.executable, "-m", "jupyter", "lab", f"--ServerApp.root_dir={notebooks}"]
    if args.no_browser:
        command.append("--no-browser")
    if args.port is not None:
        command.append(f"--port={args.port}")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    if importlib.util.find_spec("jupyterlab") is None:
        raise ToolkitError("JupyterLab is not installed: pip install -e '.[lab]'")
    print(f"starting JupyterLab on {notebooks} (Ctrl-C to stop)", flush=True)
    if os.name == "posix":
        # Become JupyterLab: signals (Ctrl-C, a supervisor's SIGTERM) reach it directly.
        os.execv(sys.executable, command)
    return subprocess.call(command)


def _notebook_dir(given: Path | None) -> Path:
    candidates = (
        [given]
        if given
        else [
            Path.cwd() / "notebooks",
            Path(__file__).resolve().parent.parent / "notebooks",
        ]
    )
    for candidate in candidates:
        if candidate is not None and candidate.is_dir():
            return candidate.resolve()
    raise ToolkitError(
        "no notebooks directory found: run `toolkit lab` from the repository root "
        "or pass --notebook-dir"
    )


def _announced(database: Database, doing: str) -> Database:
    """Say which server and database a command is about to write to, before it writes."""
    print(f"{doing}: {server_address(database.url)}", flush=True)
    return database


async def _with(database: Database, awaitable: object) -> object:
    """Await ``awaitable``, then close ``database``'s connections."""
    try:
        return await awaitable  # type: ignore[misc]
    finally:
        await database.dispose()
