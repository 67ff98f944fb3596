"""What a person sees when a toolkit call fails in a notebook: the message under the cell
line that made the call, in a few lines - and the whole traceback one ``%tb verbose`` away.

A real ipykernel runs each failing cell (``tests.runtime.test_interrupt.Kernel``).
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.conftest import MakeDatabase
from tests.runtime.test_interrupt import Kernel

pytestmark = pytest.mark.slow

SECRET = "S3cretPW"


@pytest.fixture(scope="module")
async def kernel(make_database: MakeDatabase) -> AsyncIterator[Kernel]:
    url = await make_database()
    env = {**os.environ, "TOOLKIT_DATABASE_URL": url.render_as_string(False)}
    started = Kernel(env)
    # URLs holding a password, defined in a cell of their own (a cell's source is shown)
    started.run(
        "import toolkit as tk\n"
        f"unreachable = 'postgresql://u:{SECRET}@127.0.0.1:1/x'\n"
        f"two_ats = 'postgresql://u:{SECRET}@x@127.0.0.1/db'"
    )
    yield started
    started.close()


def _error(outputs: list[dict[str, Any]]) -> tuple[str, list[str]]:
    """The error output's name and its traceback lines, as plain text."""
    errors = [o for o in outputs if o["type"] == "error"]
    assert len(errors) == 1, outputs
    text = "\n".join(errors[0]["traceback"])
    return errors[0]["ename"], re.sub(r"\x1b\[[0-9;]*m", "", text).splitlines()


FAILING_CELLS = {
    "unreachable server": (
        "db = tk.Database(unreachable)\nframe = await tk.df('select 1', database=db)",
        "ConnectionFailed",
        "could not connect to PostgreSQL at 127.0.0.1:1",
    ),
    "incomplete url": (
        "db = tk.Database('postgresql://')",
        "ConfigurationError",
        "has no host and no database",
    ),
    "malformed url": (
        "db = tk.Database(two_ats)",
        "ConfigurationError",
        "malformed database URL",
    ),
    "misspelt table": (
        "frame = await tk.df('select * from usres')",
        "UndefinedTable",
        "did you mean 'users'?",
    ),
    "unknown revision": (
        "await tk.migrate('nosuchrev')",
        "ToolkitError",
        "no migration revision 'nosuchrev' - known revisions: base, 0001_users",
    ),
    "a statement without rows": (
        "frame = await tk.df('create table never_made (n int)')",
        "ToolkitError",
        "run it with tk.execute(...)",
    ),
    "missing table, through tk.run": (
        "def load():\n    return tk.run(tk.df('select * from usres'))\n\nframe = load()",
        "UndefinedTable",
        'relation "usres" does not exist',
    ),
}


@pytest.mark.parametrize("case", FAILING_CELLS)
def test_a_toolkit_error_shows_its_message_under_the_users_own_line(
    kernel: Kernel, case: str
) -> None:
    cell, ename, message = FAILING_CELLS[case]

    shown_name, lines = _error(kernel.run(cell))

    assert shown_name == ename
    assert len(lines) <= 12, "\n".join(lines)
    assert any(line.startswith("Cell In[") for line in lines)
    last_line = cell.splitlines()[-1]
    assert any(line.startswith("---->") and last_line in line for line in lines), lines
    assert any(line.startswith(f"{ename}: ") and message in line for line in lines), lines
    assert lines[-1] == "(the whole traceback: %tb verbose)"
    assert not [line for line in lines if "site-packages" in line or "/toolkit/" in line]
    assert SECRET not in "\n".join(lines)


def test_tb_verbose_shows_every_frame_and_never_the_password(kernel: Kernel) -> None:
    cell, ename, _ = FAILING_CELLS["unreachable server"]
    kernel.run(cell)

    shown_name, lines = _error(kernel.run("%tb verbose"))
    text = "\n".join(lines)

    assert shown_name == ename
    assert len(lines) > 40
    assert "site-packages/sqlalchemy" in text
    assert "toolkit/database/" in text
    assert SECRET not in text  # Verbose would print the connect call's locals


def test_an_error_that_is_not_the_toolkits_keeps_ipythons_own_display(kernel: Kernel) -> None:
    shown_name, lines = _error(kernel.run("import json\njson.loads('{')"))

    assert shown_name == "JSONDecodeError"
    assert any("site-packages" in line or "json/" in line for line in lines)
