"""Alembic environment: async, reuses a passed connection, serialised by an advisory lock.

* Offline (``alembic upgrade head --sql``): SQL with literal binds, no database needed.
* Online from the CLI: an async engine from the toolkit's configuration, migrations run
  through ``AsyncConnection.run_sync`` inside one ``asyncio.run``.
* Online from ``await tk.migrate()``: the caller passes a connection in
  ``config.attributes["connection"]``; no event loop is started here, so it works inside
  Jupyter's or pytest's running loop.

Every online run holds a PostgreSQL advisory lock, so two processes upgrading at once run
one after the other: the second finds nothing left to do.
"""

from __future__ import annotations

import asyncio
import logging.config

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

from toolkit.database import Database
from toolkit.models import Base

config = context.config
if config.config_file_name is not None and config.attributes.get("connection") is None:
    logging.config.fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata

# pg_advisory_lock key: any fixed bigint unique to this project's migrations.
MIGRATION_LOCK_KEY = 0x746F6F6C6B6974  # "toolkit"


def _configured_url() -> str | None:
    return config.get_main_option("sqlalchemy.url") or None


def run_migrations_offline() -> None:
    database = Database(_configured_url())
    context.configure(
        url=database.url.render_as_string(hide_password=False),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    """Run the migrations on a sync connection, holding the migration lock."""
    if connection.in_transaction():
        connection.commit()  # start clean: each migration gets its own transaction
    connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
    connection.commit()
    try:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            transaction_per_migration=True,
            compare_server_default=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        if connection.in_transaction():
            connection.commit()
    finally:
        if connection.in_transaction():
            connection.rollback()
        connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})
        connection.commit()


async def run_async_migrations() -> None:
    database = Database(_configured_url(), pool_size=1)
    try:
        async with database.engine.connect() as connection:
            await connection.run_sync(do_run_migrations)
    finally:
        await database.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        do_run_migrations(connection)
    else:
        asyncio.run(run_async_migrations())


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
