"""The README's Python examples run as written."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

from sqlalchemy.engine import URL

from tests.conftest import MakeDatabase

README = Path(__file__).resolve().parent.parent / "README.md"


# Runs a block as a notebook cell would: top-level `await` allowed.
RUNNER = """
import ast, asyncio, sys
source = sys.stdin.read()
code = compile(source, "<README>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
result = eval(code, {"__name__": "__main__"})
if asyncio.iscoroutine(result):
    asyncio.run(result)
"""


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


def test_the_readme_has_a_python_example() -> None:
    assert _python_blocks(), "README.md lost its ```python example"


async def test_every_python_example_runs_against_a_fresh_database_and_again(
    make_database: MakeDatabase, tmp_path: Path
) -> None:
    """Twice over: a reader runs an example again and again (no duplicate-key failure).
    In a scratch directory: an example may write a file (``tk.to_parquet``)."""
    url: URL = await make_database(migrated=False)  # the example migrates it itself
    env = {**os.environ, "TOOLKIT_DATABASE_URL": url.render_as_string(hide_password=False)}
    for block in _python_blocks() * 2:
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-W", "error", "-c", RUNNER],
            input=block,
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, f"{block}\n{done.stderr}"
