"""Every teaching notebook runs, top to bottom, against a fresh database with demo data.

Each ``notebooks/*.ipynb`` is executed in a real Jupyter kernel (nbclient) whose
``TOOLKIT_DATABASE_URL`` names a scratch database, migrated and seeded with a little demo
data. A cell that raises fails the test. The executed notebook is not written back: the
committed notebooks keep no outputs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from sqlalchemy.engine import URL

import toolkit as tk
from toolkit.database import Database

NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))

MakeDatabase = Callable[..., Awaitable[URL]]  # the conftest fixture's type


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
async def test_notebook_runs_without_errors(
    path: Path, make_database: MakeDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = await make_database()
    async with Database(url) as database:
        await tk.seed_demo(users=50, posts_per_user=3, progress=False, database=database)

    # The kernel is a subprocess: it inherits this environment when it starts.
    monkeypatch.setenv("TOOLKIT_DATABASE_URL", url.render_as_string(hide_password=False))
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS_DIR)}},
    )
    try:
        # Run the kernel client on a loop of its own, in a thread, off the test's loop.
        # asyncio.run closes that loop; client.execute() would leave it open (jupyter_core's
        # run_sync creates a loop per thread and never closes it: a ResourceWarning at exit).
        await asyncio.to_thread(asyncio.run, client.async_execute())
    except CellExecutionError as exc:
        pytest.fail(f"{path.name}: a cell raised\n{exc}")

    errors = [
        (index, output.get("ename"), output.get("evalue"))
        for index, cell in enumerate(nb.cells)
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if output.get("output_type") == "error"
    ]
    assert not errors, f"{path.name}: cells with error outputs: {errors}"
