"""Alembic, programmatically: ``await tk.migrate()`` and ``await tk.downgrade(rev)``.

The migration runs on a connection opened here and handed to ``env.py`` through
``config.attributes["connection"]``; env.py then calls no ``asyncio.run`` of its own, so
this works inside a running loop (Jupyter, pytest-asyncio).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionError
from alembic.util import CommandError
from sqlalchemy.engine import Connection

from toolkit import errors
from toolkit.database import Database, get_database, refuse_writes_on
from toolkit.runtime import interruptible

__all__ = ["alembic_config", "current_revision", "downgrade", "head_revision", "migrate"]


def migrations_dir() -> Path:
    """The migrations shipped in the wheel, else the repository's ``migrations/``."""
    package = Path(__file__).resolve().parent
    for candidate in (package / "_migrations", package.parent / "migrations"):
        if (candidate / "env.py").exists():
            return candidate
    raise FileNotFoundError("toolkit's migrations directory is missing from this installation")


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic Config that needs no alembic.ini (the package knows its paths)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


@interruptible
async def migrate(revision: str = "head", *, database: Database | None = None) -> str | None:
    """Upgrade the database to ``revision``; returns the revision it is at afterwards."""
    return await _run(command.upgrade, revision, database, "migrate")


@interruptible
async def downgrade(revision: str, *, database: Database | None = None) -> str | None:
    """Downgrade the database to ``revision`` (``"base"`` removes every table)."""
    return await _run(command.downgrade, revision, database, "downgrade")


async def current_revision(*, database: Database | None = None) -> str | None:
    """The revision the database is at (None when never migrated)."""
    async with (database or get_database()).engine.connect() as conn:
        return await conn.run_sync(_current)


def head_revision() -> str | None:
    """The newest revision among the migrations."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def known_revisions() -> list[str]:
    """Every revision id among the migrations, oldest first."""
    script = ScriptDirectory.from_config(alembic_config())
    return [r.revision for r in reversed(list(script.walk_revisions()))]


def _revision_refused(revision: str, exc: Exception) -> errors.ToolkitError:
    """Alembic's refusal of ``revision`` as one line that lists the revisions there are."""
    known = ", ".join(["base", *known_revisions(), "head"])
    reason = str(exc).split("\n", 1)[0]
    if reason.startswith("Can't locate revision"):
        reason = f"no migration revision {revision!r}"
    return errors.ToolkitError(
        f"{reason} - known revisions: {known} (relative steps such as -1 and +1 work too)"
    )


async def _run(step: Any, revision: str, database: Database | None, what: str) -> str | None:
    def work(sync_conn: Connection) -> str | None:
        try:
            step(alembic_config(sync_conn), revision)
        except (CommandError, RevisionError) as exc:  # Alembic's "Can't locate revision"
            raise _revision_refused(revision, exc) from exc
        return _current(sync_conn)

    with errors.translated():  # a failed step: the server's message, as a DatabaseError
        async with (database or get_database()).engine.connect() as conn:
            await refuse_writes_on(conn, f"{what} to {revision!r}")
            result: str | None = await conn.run_sync(work)
            await conn.commit()
            return result


def _current(sync_conn: Connection) -> str | None:
    return MigrationContext.configure(sync_conn).get_current_revision()
