"""toolkit.errors against a real PostgreSQL: SQLSTATE mapping and connection failures.

Every error here is produced by a real server (or a real failed connect); nothing is mocked.
"""

from __future__ import annotations

import os
import subprocess
import sys
import traceback

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

import toolkit as tk
from toolkit.database import Database
from toolkit.errors import (
    ConnectionFailed,
    DatabaseError,
    IntegrityViolation,
    QueryCanceled,
    ReadOnlyViolation,
    ToolkitError,
    UndefinedColumn,
    UndefinedTable,
    from_dbapi_error,
    sqlstate_of,
)
from toolkit.models import Post, User

# SQLSTATE mapping ----------------------------------------------------------------------


async def test_query_on_a_missing_table_raises_undefined_table_naming_the_fix(
    db: Database,
) -> None:
    with pytest.raises(UndefinedTable) as caught:
        await tk.df("select * from no_such_table", database=db)

    error = caught.value
    assert error.sqlstate == "42P01"
    assert "no_such_table" in str(error)
    assert "toolkit migrate" in str(error)
    assert isinstance(error, DatabaseError)
    assert isinstance(error, ToolkitError)


async def test_default_database_query_on_a_missing_table_raises_undefined_table(
    database_url: URL,
) -> None:
    # database_url exports TOOLKIT_DATABASE_URL, so tk.df's default database is the scratch one.
    with pytest.raises(UndefinedTable, match="no_such_table"):
        await tk.df("select * from no_such_table")


async def test_undefined_table_keeps_the_driver_error_for_debugging(db: Database) -> None:
    with pytest.raises(UndefinedTable) as caught:
        await tk.df("select * from no_such_table", database=db)

    assert isinstance(caught.value.original, DBAPIError | asyncpg.PostgresError)
    assert sqlstate_of(caught.value.original) == "42P01"


async def test_query_on_a_missing_column_raises_undefined_column(db: Database) -> None:
    with pytest.raises(UndefinedColumn) as caught:
        await tk.df("select no_such_column from users", database=db)

    assert caught.value.sqlstate == "42703"
    assert "no_such_column" in str(caught.value)


async def test_unique_violation_maps_to_integrity_violation(session: AsyncSession) -> None:
    session.add(User(email="twin@example.com", name="First"))
    session.add(User(email="twin@example.com", name="Second"))
    with pytest.raises(IntegrityError) as caught:
        await session.flush()

    mapped = from_dbapi_error(caught.value)

    assert isinstance(mapped, IntegrityViolation)
    assert mapped.sqlstate == "23505"
    assert "unique constraint" in str(mapped)
    assert "users_email" in str(mapped)  # names the constraint that was violated
    assert mapped.original is caught.value


async def test_foreign_key_violation_maps_to_integrity_violation_by_sqlstate_class(
    session: AsyncSession,
) -> None:
    session.add(Post(title="orphan", content="no author", author_id=2_000_000_000))
    with pytest.raises(IntegrityError) as caught:
        await session.flush()

    mapped = from_dbapi_error(caught.value)

    assert isinstance(mapped, IntegrityViolation)
    assert mapped.sqlstate == "23503"


async def test_set_local_statement_timeout_cancels_a_slow_query(session: AsyncSession) -> None:
    await session.execute(text("SET LOCAL statement_timeout = 50"))

    with pytest.raises(QueryCanceled) as caught:
        await tk.df("select pg_sleep(1)", session=session)

    assert caught.value.sqlstate == "57014"
    assert "statement_timeout" in str(caught.value)


async def test_database_statement_timeout_cancels_a_slow_query(database_url: URL) -> None:
    async with Database(database_url, statement_timeout=0.05, pool_size=1) as slow:
        with pytest.raises(QueryCanceled):
            await tk.df("select pg_sleep(1)", database=slow)

        # The connection survives the cancel and serves the next query.
        frame = await tk.df("select 1 as one", database=slow)
        assert frame["one"].tolist() == [1]


async def test_writing_through_a_read_only_database_raises_read_only_violation(
    database_url: URL,
) -> None:
    async with Database(database_url, read_only=True, pool_size=1) as read_only:
        with pytest.raises(ReadOnlyViolation) as caught:
            await tk.df(
                "insert into users (email, name) values (:email, :name) returning id",
                {"email": "ro@example.com", "name": "Read Only"},
                database=read_only,
            )
        # Reads still work.
        frame = await tk.df("select count(*) as n from users", database=read_only)

    assert caught.value.sqlstate == "25006"
    assert "read_only=True" in str(caught.value)
    assert frame["n"].tolist() == [0]


async def test_read_only_violation_from_a_session_maps_through_from_dbapi_error(
    database_url: URL,
) -> None:
    read_only = Database(database_url, read_only=True, pool_size=1)
    async with read_only, read_only.async_session() as s:
        s.add(User(email="ro@example.com", name="Read Only"))
        with pytest.raises(DBAPIError) as caught:
            await s.flush()

    assert isinstance(from_dbapi_error(caught.value), ReadOnlyViolation)


async def test_an_unmapped_sqlstate_becomes_a_plain_database_error(db: Database) -> None:
    with pytest.raises(DatabaseError) as caught:
        await tk.df("select 1 / 0", database=db)

    assert type(caught.value) is DatabaseError
    assert caught.value.sqlstate == "22012"  # division_by_zero: no subclass for it
    assert "division by zero" in str(caught.value)
    assert from_dbapi_error(caught.value.original) is None  # type: ignore[arg-type]


@pytest.mark.parametrize("exc", [ValueError("no sqlstate here"), KeyError("x"), RuntimeError()])
def test_sqlstate_of_a_non_database_exception_is_none(exc: BaseException) -> None:
    assert sqlstate_of(exc) is None
    assert from_dbapi_error(exc) is None


# Connection failures ---------------------------------------------------------------------


async def test_unreachable_server_raises_connection_failed_naming_it_without_the_password() -> None:
    async with Database("postgresql://u:secret@127.0.0.1:1/x", connect_timeout=5) as nowhere:
        with pytest.raises(ConnectionFailed) as caught:
            await tk.df("select 1", database=nowhere)

    message = str(caught.value)
    assert "127.0.0.1:1" in message
    assert "secret" not in message
    assert "is the server running" in message


async def test_missing_database_raises_connection_failed_saying_it_does_not_exist(
    server_url: URL,
) -> None:
    async with Database(server_url.set(database="no_such_db_xyz"), pool_size=1) as missing:
        with pytest.raises(ConnectionFailed) as caught:
            await tk.df("select 1", database=missing)

    assert "does not exist" in str(caught.value)
    assert "no_such_db_xyz" in str(caught.value)


async def test_unresolvable_host_raises_connection_failed() -> None:
    async with Database("postgresql://u@no-such-host.invalid/x", connect_timeout=5) as nowhere:
        with pytest.raises(ConnectionFailed) as caught:
            await tk.df("select 1", database=nowhere)

    assert "no-such-host.invalid" in str(caught.value)
    assert "does not resolve" in str(caught.value)


def test_script_on_an_unreachable_server_fails_with_one_clear_line_and_no_secret() -> None:
    """The issue's done criterion, verbatim: a script, a bad server, one readable error."""
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "TOOLKIT_DATA_DIR"}}
    env["TOOLKIT_DATABASE_URL"] = "postgresql+asyncpg://u:secret@127.0.0.1:1/x"

    result = subprocess.run(
        [sys.executable, "-c", "import toolkit as tk; tk.run(tk.df('select 1'))"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("toolkit.errors.ConnectionFailed:"), result.stderr
    assert "127.0.0.1:1" in last_line
    assert "TOOLKIT_DATABASE_URL" in last_line  # says which setting to change
    assert "secret" not in result.stdout + result.stderr


async def test_in_a_script_the_chain_ends_in_the_toolkits_error_with_the_driver_as_cause(
    session: AsyncSession,
) -> None:
    """What a script prints last is the toolkit's message; the driver's own exception is
    the ``__cause__`` (printed above it, as "the direct cause"), not folded into the text."""
    with pytest.raises(UndefinedTable) as caught:
        await tk.df("select * from usres", session=session)

    error = caught.value
    assert str(error).startswith('relation "usres" does not exist - did you mean')
    assert isinstance(error.__cause__, asyncpg.exceptions.UndefinedTableError)
    printed = "".join(traceback.format_exception(error)).rstrip().splitlines()
    assert printed[-1].startswith('toolkit.errors.UndefinedTable: relation "usres"')
    assert "The above exception was the direct cause of the following exception:" in printed
