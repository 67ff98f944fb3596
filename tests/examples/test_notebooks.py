"""Every teaching notebook runs clean, twice in a row, and shows the same outputs each time.

Each ``notebooks/*.ipynb`` is executed twice in a real Jupyter kernel (nbclient), a fresh
kernel each time, against one scratch database that is only migrated: the notebooks put the
demo data in place themselves (``await tk.reset_demo()``). The second run follows the first
on the same database, as a reader running a notebook again would. A cell that raises fails
the test, and so does a code cell whose outputs differ between the two runs - unless the
cell carries the tag ``varies``: its outputs are measurements (timings, charts of timings,
a progress bar's rate, server process ids) and are not compared.

The committed notebooks keep no outputs, and their metadata is what JupyterLab writes when
their kernel starts, so that opening one does not mark it modified. The executed notebooks
are never written back.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import nbformat
import pytest
from jupyter_client.manager import start_new_kernel
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from sqlalchemy.engine import URL

NOTEBOOKS_DIR = Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
VARIES = "varies"
"""The one cell tag the notebooks use: this cell's outputs legitimately differ per run."""

MakeDatabase = Callable[..., Awaitable[URL]]  # the conftest fixture's type


def read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


async def execute(path: Path) -> nbformat.NotebookNode:
    """The notebook as a fresh kernel leaves it, run top to bottom; fails on a raising cell."""
    nb = read(path)
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
        (cell.id, output.get("ename"), output.get("evalue"))
        for cell in nb.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type == "error"
    ]
    assert not errors, f"{path.name}: cells with error outputs: {errors}"
    return nb


def shown(cell: nbformat.NotebookNode) -> list[tuple[str, Any]]:
    """What a reader sees of a cell's outputs: streams joined as Jupyter joins them
    (consecutive pieces of one stream are one box), and each display's data by MIME type."""
    seen: list[tuple[str, Any]] = []
    for output in cell.outputs:
        if output.output_type == "stream":
            if seen and seen[-1][0] == output.name:
                seen[-1] = (output.name, seen[-1][1] + output.text)
            else:
                seen.append((output.name, output.text))
        elif output.output_type == "error":
            seen.append(("error", (output.ename, output.evalue)))
        else:
            seen.append((output.output_type, dict(output.data)))
    return seen


def first_difference(a: list[tuple[str, Any]], b: list[tuple[str, Any]]) -> str:
    if len(a) != len(b):
        return f"{len(a)} outputs, then {len(b)}: {[kind for kind, _ in a]} / {[k for k, _ in b]}"
    for (kind_a, value_a), (kind_b, value_b) in zip(a, b, strict=True):
        if (kind_a, value_a) != (kind_b, value_b):
            return f"{kind_a}: {str(value_a)[:600]!r}\nthen {kind_b}: {str(value_b)[:600]!r}"
    return ""


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
async def test_notebook_runs_twice_with_the_same_outputs(
    path: Path, make_database: MakeDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = await make_database()  # migrated, no rows: each notebook resets the demo data
    # The kernel is a subprocess: it inherits this environment when it starts.
    monkeypatch.setenv("TOOLKIT_DATABASE_URL", url.render_as_string(hide_password=False))

    first = await execute(path)
    second = await execute(path)

    differences = [
        f"cell {cell.id} (#{index}):\n{first_difference(shown(cell), shown(again))}"
        for index, (cell, again) in enumerate(zip(first.cells, second.cells, strict=True))
        if cell.cell_type == "code"
        and VARIES not in cell.metadata.get("tags", [])
        and shown(cell) != shown(again)
    ]
    assert not differences, (
        f"{path.name}: outputs changed on the second run (tag a cell {VARIES!r} only if its "
        "outputs are measurements):\n" + "\n".join(differences)
    )


@pytest.mark.slow
async def test_monthly_chart_keeps_to_the_demo_months_when_newer_posts_exist(
    make_database: MakeDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Notebook 05's posts-per-month cell, run after a post dated now (as notebook 01 adds
    one): before, its months ran on to today, the last ones empty."""
    url = await make_database()
    monkeypatch.setenv("TOOLKIT_DATABASE_URL", url.render_as_string(hide_password=False))
    cells = {cell.id: cell for cell in read(NOTEBOOKS_DIR / "05_dataframes.ipynb").cells}
    nb = nbformat.v4.new_notebook(
        cells=[
            cells["dce37d20"],  # set-up
            cells["nb05-reset"],
            nbformat.v4.new_code_cell(
                "async with tk.session() as s:\n"
                "    s.add(Post(title='Today', content='...', author_id=1))"
            ),
            cells["ebb1236c"],  # posts per month
            nbformat.v4.new_code_cell(
                "print(monthly.index.min().date(), monthly.index.max().date(), len(monthly))"
            ),
        ]
    )
    client = NotebookClient(nb, timeout=120, kernel_name="python3")
    await asyncio.to_thread(asyncio.run, client.async_execute())

    assert nb.cells[-1].outputs[0].text == "2024-01-01 2025-12-01 24\n"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_committed_notebook_keeps_no_outputs(path: Path) -> None:
    nb = read(path)
    nbformat.validate(nb)
    kept = [
        cell.id
        for cell in nb.cells
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)
    ]
    assert not kept, f"{path.name}: cells committed with outputs: {kept}"
    tags = {tag for cell in nb.cells for tag in cell.metadata.get("tags", [])}
    assert tags <= {VARIES}, f"{path.name}: unknown cell tags {tags - {VARIES}}"


@pytest.fixture(scope="module")
def kernel_metadata() -> dict[str, Any]:
    """The notebook metadata JupyterLab writes when the python3 kernel starts (its
    NotebookPanel sets ``kernelspec`` from the kernel's spec and ``language_info`` from the
    kernel's info reply, and a value equal to the stored one changes nothing)."""
    manager, client = start_new_kernel(kernel_name="python3")
    try:
        info = client.kernel_info(reply=True, timeout=60)["content"]
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    spec = manager.kernel_spec
    assert spec is not None
    return {
        "kernelspec": {
            "name": "python3",
            "display_name": spec.display_name,
            "language": spec.language,
        },
        "language_info": info["language_info"],
    }


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_committed_metadata_is_what_jupyterlab_writes(
    path: Path, kernel_metadata: dict[str, Any]
) -> None:
    metadata = read(path).metadata
    assert set(metadata) == {"kernelspec", "language_info"}
    assert metadata["kernelspec"] == kernel_metadata["kernelspec"]
    # The Python version is the one value that follows the reader's interpreter: a notebook
    # opened on another Python release gets that release's number, whatever is stored.
    stored = dict(metadata["language_info"])
    expected = dict(kernel_metadata["language_info"])
    assert re.fullmatch(r"3\.\d+\.\d+", stored.pop("version"))
    expected.pop("version")
    assert stored == expected
