"""``%load_ext toolkit``: the ``%%sql`` magic, model-list HTML and the MissingGreenlet note.

The magic tests run in a real Jupyter kernel (jupyter_client), as JupyterLab drives it;
the placeholder tokenizer it uses has fast unit tests of its own (tests/sql).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.conftest import MakeDatabase
from tests.runtime.test_interrupt import Kernel
from toolkit.notebook._magic import _split_line

# The magic's own parsing ---------------------------------------------------------


def test_line_magic_options_are_split_from_the_sql() -> None:
    assert _split_line("-o out --limit 5 select '-o' as x") == (
        "-o out --limit 5",
        " select '-o' as x",
    )
    assert _split_line("select 1") == ("", "select 1")


def test_model_lists_show_twenty_rows_then_a_count() -> None:
    from toolkit.models import User
    from toolkit.notebook._display import models_html

    users = [User(id=i, email=f"u{i}@example.com", name=f"<i>{i}</i>") for i in range(25)]
    html = models_html(users)
    assert html is not None
    assert html.count("<tr>") == 21  # the header and 20 rows
    assert "5 more · 25 rows (User)" in html
    assert "&lt;i&gt;0&lt;/i&gt;" in html
    assert "<i>" not in html
    assert models_html([1, 2]) is None
    assert models_html([]) is None
    assert models_html([users[0], 1]) is None


def test_importing_toolkit_does_not_import_ipython() -> None:
    code = "import sys, toolkit; print('IPython' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# In a real kernel ---------------------------------------------------------------------


@pytest.fixture(scope="module")
async def kernel(make_database: MakeDatabase) -> AsyncIterator[Kernel]:
    """A kernel on a database of its own: the magic commits (INSERT, create_user)."""
    url = await make_database()
    env = {**os.environ, "TOOLKIT_DATABASE_URL": url.render_as_string(False)}
    started = Kernel(env)
    outputs = started.run("import toolkit as tk\n%load_ext toolkit")
    assert _errors(outputs) == [], outputs
    yield started
    started.close()


def _printed(outputs: list[dict[str, Any]], name: str = "stdout") -> str:
    return "".join(o["text"] for o in outputs if o["type"] == "stream" and o["name"] == name)


def _errors(outputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    failed = [o for o in outputs if o["type"] == "error"]
    return failed + [o for o in outputs if o["type"] == "stream" and o["name"] == "stderr"]


def _result(outputs: list[dict[str, Any]]) -> dict[str, str]:
    results = [o["data"] for o in outputs if o["type"] == "execute_result"]
    assert len(results) == 1, outputs
    data: dict[str, str] = results[0]
    return data


def _usage_error(outputs: list[dict[str, Any]]) -> str:
    """IPython shows a UsageError as one stderr line, without a traceback."""
    assert not [o for o in outputs if o["type"] == "error"], outputs
    message = _printed(outputs, "stderr").strip()
    assert message.startswith("UsageError: "), outputs
    assert "Traceback" not in message
    return message


def _run(kernel: Kernel, code: str, timeout: float = 30) -> list[dict[str, Any]]:
    return kernel.run(code, timeout=timeout)


@pytest.mark.slow
def test_sql_cell_returns_a_frame_and_o_stores_it(kernel: Kernel) -> None:
    outputs = _run(kernel, "%%sql -o answer\nselect 41 + 1 as answer, 'hello' as greeting")
    assert _errors(outputs) == []
    data = _result(outputs)
    assert "42" in data["text/plain"]
    assert "hello" in data["text/plain"]
    assert "text/html" in data
    assert "hello" in data["text/html"]
    stored = _run(kernel, "print(type(answer).__name__, int(answer['answer'][0]))")
    assert _printed(stored).strip() == "DataFrame 42"


@pytest.mark.slow
def test_sql_line_magic(kernel: Kernel) -> None:
    outputs = _run(kernel, "frame = %sql select 7 as seven\nprint(int(frame['seven'][0]))")
    assert _errors(outputs) == []
    assert _printed(outputs).strip() == "7"


@pytest.mark.slow
def test_values_are_bound_never_formatted_in(kernel: Kernel) -> None:
    hostile = "x' ; drop table users; --"
    _run(kernel, f"x = {hostile!r}\nn = 5")
    outputs = _run(
        kernel, "%%sql -o got\nselect '10:30' as t, 1::int as n, :x as x, :n::int + 1 as m"
    )
    assert _errors(outputs) == []
    check = _run(
        kernel, "print(repr(got['t'][0]), int(got['n'][0]), repr(got['x'][0]), int(got['m'][0]))"
    )
    assert _printed(check).strip() == f"'10:30' 1 {hostile!r} 6"
    still = _run(kernel, "%%sql\nselect to_regclass('users') is not null as users_exists")
    assert "True" in _result(still)["text/plain"]


@pytest.mark.slow
def test_a_missing_variable_is_a_short_usage_error(kernel: Kernel) -> None:
    outputs = _run(kernel, "%%sql\nselect :surely_not_defined as v")
    message = _usage_error(outputs)
    assert message == (
        "UsageError: no variable named 'surely_not_defined' in the notebook for :surely_not_defined"
    )


@pytest.mark.slow
def test_the_row_cap_is_a_real_limit(kernel: Kernel) -> None:
    outputs = _run(kernel, "%%sql --limit 10 -o capped\nselect g from generate_series(1, 5000) g")
    assert _errors(outputs) == []
    assert "showing the first 10 rows (--limit 0 for all)" in _printed(outputs)
    assert _printed(_run(kernel, "print(len(capped))")).strip() == "10"
    # A hundred million rows: without the LIMIT sent to the server this takes minutes.
    big = _run(
        kernel, "%%sql --limit 10 -o big\nselect g from generate_series(1, 100000000) g", timeout=30
    )
    assert _errors(big) == []
    assert "showing the first 10 rows" in _printed(big)
    everything = _run(
        kernel, "%%sql --limit 0 -o all_rows\nselect g from generate_series(1, 5000) g"
    )
    assert "showing" not in _printed(everything)
    assert _printed(_run(kernel, "print(len(all_rows))")).strip() == "5000"


@pytest.mark.slow
def test_statements_run_and_commit_and_show_sql(kernel: Kernel) -> None:
    _run(kernel, "%%sql\ncreate table magic_t (id int primary key, label text)")
    name = "one"
    _run(kernel, f"label = {name!r}")
    inserted = _run(kernel, "%%sql\ninsert into magic_t values (1, :label), (2, 'two:2')")
    assert _errors(inserted) == []
    assert "2 rows affected" in _printed(inserted)
    shown = _run(kernel, "%%sql -v\nselect label from magic_t where label = :label")
    assert _errors(shown) == []
    assert "-- parameters: :label;" in _printed(shown)
    assert " ms" in _printed(shown)
    assert "one" in _result(shown)["text/plain"]
    returning = _run(
        kernel, "%%sql\nupdate magic_t set label = 'uno' where id = 1 returning id, label"
    )
    assert "uno" in _result(returning)["text/plain"]
    _run(kernel, "%%sql\ndrop table magic_t")


@pytest.mark.slow
def test_a_failing_statement_then_a_working_one(kernel: Kernel) -> None:
    failed = _run(kernel, "%%sql\nselect * from no_such_table_here")
    message = _usage_error(failed)
    assert "no_such_table_here" in message
    assert "\n" not in message
    syntax = _run(kernel, "%%sql\nselect from where")
    assert "syntax error" in _usage_error(syntax)
    write = _run(kernel, "%%sql\ninsert into no_such_table_here values (1)")
    _usage_error(write)
    works = _run(kernel, "%%sql\nselect 'still fine' as status")
    assert _errors(works) == []
    assert "still fine" in _result(works)["text/plain"]


@pytest.mark.slow
def test_a_list_of_models_renders_as_an_escaped_html_table(kernel: Kernel) -> None:
    setup = _run(
        kernel,
        "from toolkit import queries as q\n"
        "async with tk.session() as s:\n"
        "    await q.create_user(s, 'magic-html@example.com', '<b>bold</b>')\n",
    )
    assert _errors(setup) == []
    outputs = _run(
        kernel,
        "async with tk.async_session() as s:\n    users = await q.get_all_users(s)\nusers",
    )
    data = _result(outputs)
    assert "text/html" in data
    html = data["text/html"]
    assert "&lt;b&gt;bold&lt;/b&gt;" in html
    assert "<b>bold" not in html
    assert "magic-html@example.com" in html
    assert "1 row (User)" in html
    plain = _run(kernel, "[1, 2, 3]")
    assert "text/html" not in _result(plain)


@pytest.mark.slow
def test_missing_greenlet_names_the_relationship_and_the_fixes(kernel: Kernel) -> None:
    setup = _run(
        kernel,
        "from sqlalchemy import select\n"
        "from toolkit.models import Post, User\n"
        "async with tk.session() as s:\n"
        "    author = await q.get_user_by_email(s, 'magic-html@example.com')\n"
        "    s.add(Post(title='t', content='c', author_id=author.id))\n",
    )
    assert _errors(setup) == [], setup
    outputs = _run(
        kernel,
        "async with tk.async_session() as s:\n"
        "    post = (await s.execute(select(Post).limit(1))).scalar_one()\n"
        "    post.author\n",
    )
    failed = [o for o in outputs if o["type"] == "error"]
    assert len(failed) == 1, outputs
    text = "\n".join(failed[0]["traceback"])
    assert "Post.author" in text
    assert "selectinload(Post.author)" in text
    assert "awaitable_attrs.author" in text
    assert len(failed[0]["traceback"]) == 1


@pytest.mark.slow
def test_a_lazy_load_error_from_tk_run_shows_the_same_one_line(kernel: Kernel) -> None:
    """``tk.run`` already made it a LazyLoadError: the line still names the relationship."""
    setup = _run(
        kernel,
        "from sqlalchemy import select\n"
        "from toolkit.models import Post, User\n"
        "async with tk.session() as s:\n"
        "    author = User(email='lazy-run@example.com', name='Lazy')\n"
        "    s.add(author)\n"
        "    await s.flush()\n"
        "    s.add(Post(title='t', content='c', author_id=author.id))\n",
    )
    assert _errors(setup) == [], setup
    outputs = _run(
        kernel,
        "async def first_author():\n"
        "    async with tk.async_session() as s:\n"
        "        post = (await s.execute(select(Post).limit(1))).scalar_one()\n"
        "        return post.author\n"
        "tk.run(first_author())\n",
    )
    failed = [o for o in outputs if o["type"] == "error"]
    assert len(failed) == 1, outputs
    assert failed[0]["ename"] == "LazyLoadError"
    assert len(failed[0]["traceback"]) == 1
    text = failed[0]["traceback"][0]
    assert "Post.author" in text
    assert "selectinload(Post.author)" in text
    assert "awaitable_attrs.author" in text


@pytest.mark.slow
def test_unload_removes_the_magic_and_the_formatter(kernel: Kernel) -> None:
    outputs = _run(
        kernel,
        "%unload_ext toolkit\n"
        "ip = get_ipython()\n"
        "print('sql' in ip.magics_manager.magics['cell'], ip.custom_exceptions)\n"
        "async with tk.async_session() as s:\n"
        "    users = await q.get_all_users(s)\n",
    )
    assert _printed(outputs).strip() == "False ()"
    assert "text/html" not in _result(_run(kernel, "users"))
    _run(kernel, "%load_ext toolkit")
    assert "text/html" in _result(_run(kernel, "users"))
