"""Fault case 9: secrets.

No password appears in any repr, error message, log line, notebook output or CLI output -
for a password in the URL's usual place (``user:password@host``) and in a query parameter
(``?password=...``), on a URL that works and on URLs that fail (nothing listening, a host
that does not resolve, a database that does not exist, a URL that does not parse).

The working URLs are the server under test's, with a distinctive password added (the
embedded server and a local ``trust`` server ignore it); if the configured URL already has
a password, that real password is the secret looked for.
"""

from __future__ import annotations

import json
import logging
import os
import traceback
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL

import toolkit as tk
from tests.cli.test_cli import cli_env, toolkit
from tests.conftest import MakeDatabase
from tests.runtime.test_interrupt import Kernel
from toolkit import config
from toolkit.database import Database
from toolkit.database import _default as database_module

DISTINCTIVE = "S3cretPw-xyz"


class Urls:
    """The URLs of this case, rendered as users write them (password in clear)."""

    def __init__(self, base: URL) -> None:
        self.secret = base.password if base.password else DISTINCTIVE
        with_password = base.set(password=self.secret)
        in_query = base.set(password=None).update_query_dict({"password": self.secret})
        self.working = {
            "password": _render(with_password),
            "query-password": _render(in_query),
        }
        s = self.secret
        self.failing = {
            "nothing-listening": f"postgresql://postgres:{s}@127.0.0.1:1/test",
            "nothing-listening-query": f"postgresql://postgres@127.0.0.1:1/test?password={s}",
            "host-does-not-resolve": f"postgresql://postgres:{s}@no-such-host.invalid:5432/x",
            "no-such-database": _render(with_password.set(database="toolkit_no_such_db")),
            "no-such-database-query": _render(in_query.set(database="toolkit_no_such_db")),
        }
        self.malformed = f"postgresql://postgres:{s}@localhost:notaport/db?password={s}"

    def leaks(self, shown: object) -> bool:
        return self.secret in str(shown)


def _render(url: URL) -> str:
    return url.render_as_string(hide_password=False)


@pytest.fixture(scope="module")
async def urls(make_database: MakeDatabase) -> Urls:
    """A migrated scratch database, reached through URLs that carry the secret."""
    made = Urls(await make_database())
    async with Database(made.working["password"]) as probe:
        try:
            await tk.df("SELECT 1 AS ok", database=probe)
        except tk.ConnectionFailed as exc:  # a server that checks passwords
            pytest.skip(f"the server under test rejects an invented password: {exc}")
    return made


@pytest.fixture
def own_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """tk.connect() replaces the default database: the suite's is put back afterwards."""
    monkeypatch.setattr(database_module, "_default", None)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and every exception reachable from it: cause, context, originals."""
    seen: set[int] = set()
    todo: list[object] = [exc]
    while todo:
        current = todo.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo += [
            current.__cause__,
            current.__context__,
            getattr(current, "original", None),
            getattr(current, "orig", None),
        ]


def _everything_shown(exc: BaseException) -> str:
    """What a user could see of an error: messages, reprs, args and the formatted traceback."""
    parts = ["".join(traceback.format_exception(exc))]
    for item in _chain(exc):
        parts += [str(item), repr(item), repr(item.args)]
    return "\n".join(parts)


async def _failure(awaitable: Any) -> BaseException:
    try:
        await awaitable
    except Exception as exc:
        return exc
    raise AssertionError("expected the call to fail")


# Reprs ---------------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["password", "query-password"])
async def test_reprs_of_database_engine_url_and_session_hide_the_password(
    urls: Urls, form: str, own_default: None
) -> None:
    url = urls.working[form]
    async with Database(url) as db:
        shown = [repr(db), str(db)]  # before any engine exists
        engine = db.engine
        shown += [repr(db.url), str(db.url), db.url.render_as_string()]
        shown += [repr(engine), repr(engine.sync_engine), repr(engine.url), str(engine.url)]
        shown += [repr(engine.pool), engine.pool.status()]
        async with db.session() as s:
            await s.execute(text("SELECT 1"))
            shown += [repr(s), repr(s.bind), repr(await s.connection()), repr(s.sync_session)]
        assert "***" in repr(db), "the password is there, masked"

    connected = tk.connect(url)
    shown += [repr(connected), repr(tk.get_database()), repr(tk.get_engine())]
    shown += [repr(tk.get_engine().url), repr(tk.get_engine().sync_engine)]
    await connected.dispose()
    leaked = [item for item in shown if urls.leaks(item)]
    assert leaked == []


@pytest.mark.parametrize("form", ["password", "query-password"])
async def test_a_url_from_the_environment_is_shown_masked(
    urls: Urls, form: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOOLKIT_DATABASE_URL", urls.working[form])
    db = Database()
    shown = [repr(db), repr(config.Settings.from_env())]  # before resolving the URL
    shown += [repr(db.url), repr(db.engine.sync_engine), repr(db)]
    await db.dispose()
    assert "TOOLKIT_DATABASE_URL" in shown[0]
    assert [item for item in shown if urls.leaks(item)] == []


# Errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "failing",
    [
        "nothing-listening",
        "nothing-listening-query",
        "host-does-not-resolve",
        "no-such-database",
        "no-such-database-query",
    ],
)
async def test_connection_errors_and_their_tracebacks_hide_the_password(
    urls: Urls, failing: str
) -> None:
    db = Database(urls.failing[failing], connect_timeout=5)
    try:

        async def in_a_session() -> None:
            async with db.session() as s:
                await s.execute(text("SELECT 1"))

        failures = [
            await _failure(tk.df("SELECT 1", database=db)),
            await _failure(in_a_session()),
            await _failure(tk.migrate(database=db)),
            await _failure(tk.bulk_insert("t", [{"a": 1}], database=db)),
        ]
    finally:
        await db.dispose()
    for exc in failures:
        assert isinstance(exc, tk.ConnectionFailed), repr(exc)
        assert "could not connect to PostgreSQL at" in str(exc)
        assert not urls.leaks(_everything_shown(exc))


async def test_a_malformed_url_error_hides_the_password(
    urls: Urls, monkeypatch: pytest.MonkeyPatch, own_default: None
) -> None:
    failures: list[BaseException] = []
    for make in (lambda: Database(urls.malformed), lambda: tk.connect(urls.malformed)):
        with pytest.raises(tk.ConfigurationError) as caught:
            make()
        failures.append(caught.value)
    monkeypatch.setenv("TOOLKIT_DATABASE_URL", urls.malformed)
    from_env = Database()
    assert not urls.leaks(repr(from_env))
    with pytest.raises(tk.ConfigurationError) as caught:
        _ = from_env.engine
    failures.append(caught.value)
    for exc in failures:
        assert "malformed database URL" in str(exc)
        assert not urls.leaks(_everything_shown(exc))


async def test_query_errors_on_a_working_url_hide_the_password(urls: Urls) -> None:
    async with Database(urls.working["query-password"]) as db:
        failures = [
            await _failure(tk.df("SELECT * FROM no_such_table", database=db)),
            await _failure(tk.df("SELECT :x AS x", database=db)),
            await _failure(tk.bulk_insert("no_such_table", [{"a": 1}], database=db)),
        ]
    assert isinstance(failures[0], tk.DatabaseError)
    for exc in failures:
        assert not urls.leaks(_everything_shown(exc))


# Logs ----------------------------------------------------------------------------------


async def test_log_records_at_debug_hide_the_password(
    urls: Urls, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    engine_logger = logging.getLogger("sqlalchemy.engine.Engine")
    handlers = list(engine_logger.handlers)  # echo=True adds one; take it away again
    caplog.set_level(logging.DEBUG)
    for name in ("sqlalchemy", "asyncpg", "toolkit", "alembic"):
        caplog.set_level(logging.DEBUG, logger=name)
    try:
        for url in urls.working.values():
            async with Database(url, echo=True) as db:
                await tk.df("SELECT 1 AS one", database=db)
                async with db.session() as s:
                    await s.execute(text("SELECT current_database()"))
                await _failure(tk.df("SELECT * FROM no_such_table", database=db))
        for url in urls.failing.values():
            async with Database(url, echo=True, connect_timeout=5) as db:
                await _failure(tk.df("SELECT 1", database=db))
    finally:
        engine_logger.handlers[:] = handlers
    printed = capsys.readouterr()
    lines = [record.getMessage() for record in caplog.records]
    lines += [caplog.text, printed.out, printed.err]
    lines += [
        "".join(traceback.format_exception(*record.exc_info))
        for record in caplog.records
        if record.exc_info
    ]
    assert any("SELECT current_database()" in line for line in lines), "echo was captured"
    assert [line for line in lines if urls.leaks(line)] == []


# CLI -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_cli_output_hides_the_password(urls: Urls) -> None:
    """stdout and stderr of the commands that read the URL, working and failing."""
    seed = ["seed", "--users", "2", "--no-progress"]
    # (args, TOOLKIT_DATABASE_URL, exits 0?) - None: the embedded server's state decides.
    runs: list[tuple[list[str], str, bool | None]] = [
        (["migrate"], urls.working["password"], True),
        (["migrate"], urls.working["query-password"], True),
        (seed, urls.working["query-password"], True),  # one seed: two would race for ids
        (["migrate"], urls.malformed, False),
        (["downgrade", "base"], urls.malformed, False),
        (["db", "url"], urls.working["password"], None),
        (["db", "status"], urls.failing["nothing-listening"], None),
    ]
    for name, url in urls.failing.items():
        runs.append((["migrate"] if "query" in name else seed, url, False))

    def call(run: tuple[list[str], str, bool | None]) -> tuple[list[str], bool | None, Any]:
        args, url, succeeds = run
        return args, succeeds, toolkit(*args, env=cli_env(database_url=url))

    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(call, runs))
    for args, succeeds, done in results:
        output = done.stdout + done.stderr
        assert not urls.leaks(output), (args, output)
        if succeeds is not None:
            assert (done.returncode == 0) == succeeds, (args, output)
        if succeeds is False:  # one error line (stdout may first name the server)
            assert done.stderr.startswith("toolkit: error: "), (args, output)
            assert len(done.stderr.strip().splitlines()) == 1, (args, output)
    migrated = [done.stdout for args, ok, done in results if args == ["migrate"] and ok]
    assert len(migrated) == 2
    assert all("***" in out and "is at revision" in out for out in migrated), migrated


# Notebook ------------------------------------------------------------------------------


@pytest.fixture(name="kernel")
def kernel_fixture(urls: Urls) -> Iterator[Kernel]:
    """A kernel configured by environment, as a notebook keeps secrets out of its cells
    (a URL typed into a cell would be shown back in its own traceback)."""
    env = {
        **os.environ,
        "TOOLKIT_DATABASE_URL": urls.working["password"],
        "QUERY_PASSWORD_URL": urls.working["query-password"],
        "NOTHING_LISTENING_URL": urls.failing["nothing-listening"],
        "NO_SUCH_DATABASE_URL": urls.failing["no-such-database-query"],
        "MALFORMED_URL": urls.malformed,
    }
    started = Kernel(env)
    yield started
    started.close()


def _shown_in_notebook(outputs: list[dict[str, Any]]) -> str:
    """Everything a notebook would show: streams, results (every mimetype), errors."""
    parts: list[str] = []
    for output in outputs:
        parts.append(output.get("text", ""))
        parts += [str(value) for value in output.get("data", {}).values()]
        parts += [output.get("ename", ""), output.get("evalue", "")]
        parts += output.get("traceback", [])
    return "\n".join(parts)


@pytest.mark.slow
def test_notebook_output_hides_the_password(urls: Urls, kernel: Kernel) -> None:
    cells = [
        "import os\nimport toolkit as tk\n%load_ext toolkit",
        "tk.get_database()",
        "tk.get_engine()",
        "tk.get_engine().url",
        "x = 41\n%sql -v SELECT :x + 1 AS answer, current_database() AS db",
        "tk.connect(os.environ['QUERY_PASSWORD_URL'])",
        "tk.get_engine().sync_engine",
        "await tk.df('SELECT 2 AS two')",
        "bad = tk.Database(os.environ['NOTHING_LISTENING_URL'])\nbad",
        "await tk.df('SELECT 1', database=bad)",
        "tk.connect(os.environ['NO_SUCH_DATABASE_URL'])",
        "%sql SELECT 1",
        "tk.Database(os.environ['MALFORMED_URL'])",
    ]
    outputs: list[dict[str, Any]] = []
    for cell in cells:
        outputs += kernel.run(cell, timeout=60)
    shown = _shown_in_notebook(outputs)
    assert "answer" in shown, "the magic ran"
    assert "could not connect to PostgreSQL" in shown, "the failures were shown"
    assert "malformed database URL" in shown
    assert "***" in shown, "URLs were shown, masked"
    leaked = [line for line in shown.splitlines() if urls.leaks(line)]
    assert leaked == [], json.dumps(leaked)


# The masking itself ------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://u:{DISTINCTIVE}@h/db",
        f"postgresql://u@h/db?password={DISTINCTIVE}",
        f"postgresql://u@h/db?sslmode=require&PassWord={DISTINCTIVE}&x=1",
        f"postgresql://u@h/db?api_token={DISTINCTIVE}",
        f"postgresql://u:{DISTINCTIVE}@h:port/db?password={DISTINCTIVE}",  # does not parse
        f"postgresql://h:port/db?password={DISTINCTIVE}",  # nor this one
    ],
)
def test_mask_url_hides_passwords_and_secret_query_values(url: str) -> None:
    shown = config.mask_url(url)
    assert DISTINCTIVE not in shown
    assert "***" in shown or "%2A%2A%2A" in shown


def test_a_query_password_becomes_the_urls_password() -> None:
    url = config.normalize_url(f"postgresql://u@h/db?password={DISTINCTIVE}&sslmode=require")
    assert url.password == DISTINCTIVE  # still used to connect
    assert "password" not in url.query
    assert DISTINCTIVE not in repr(url)
    assert DISTINCTIVE not in str(url)
