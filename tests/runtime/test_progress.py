"""A finished progress bar leaves one tidy line in a notebook's output, or nothing.

Driven through a real Jupyter kernel (nbclient): what a cell's outputs hold after
``tk.stream_df(..., progress=True)`` is what JupyterLab shows under it. JupyterLab joins
consecutive pieces of one stream into one box and lets a carriage return overwrite the line
before it, so the checks read the outputs the same way.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable

import nbformat
import pytest
from nbclient import NotebookClient
from sqlalchemy.engine import URL

from toolkit.runtime import progress_bar

MakeDatabase = Callable[..., Awaitable[URL]]

STREAM = """
import toolkit as tk

rows = 0
async for chunk in tk.stream_df(
    "select g from generate_series(1, 100000) as g", chunk_size=25_000, progress={progress}
):
    rows += len(chunk)
print("rows:", rows)
"""


def boxes(outputs: list[nbformat.NotebookNode]) -> list[tuple[str, str]]:
    """The cell's stream outputs as JupyterLab shows them: consecutive pieces of a stream
    joined into one box, each line showing only what follows its last carriage return."""
    joined: list[tuple[str, str]] = []
    for output in outputs:
        assert output.output_type == "stream", output
        if joined and joined[-1][0] == output.name:
            joined[-1] = (output.name, joined[-1][1] + output.text)
        else:
            joined.append((output.name, output.text))
    return [
        (name, "\n".join(line.rsplit("\r", 1)[-1] for line in text.split("\n")))
        for name, text in joined
    ]


async def run_cell(source: str) -> list[nbformat.NotebookNode]:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
    client = NotebookClient(nb, timeout=120, kernel_name="python3")
    await asyncio.to_thread(asyncio.run, client.async_execute())
    return list(nb.cells[0].outputs)


@pytest.mark.slow
async def test_a_finished_bar_is_one_line_above_the_cells_own_output(
    make_database: MakeDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = await make_database(migrated=False)
    monkeypatch.setenv("TOOLKIT_DATABASE_URL", url.render_as_string(hide_password=False))

    outputs = await run_cell(STREAM.format(progress=True))

    # Before the fix the bar's closing newline arrived after the print, as a stderr box of
    # its own holding nothing: an empty stripe under the cell.
    shown = boxes(outputs)
    assert [name for name, _ in shown] == ["stderr", "stdout"], shown
    (_, bar), (_, printed) = shown
    assert printed == "rows: 100000\n"
    assert re.fullmatch(r"stream_df: 100k rows \[\d\d:\d\d, [\d.]+[kM]? rows/s\]\n", bar), bar


@pytest.mark.slow
async def test_a_bar_turned_off_leaves_nothing(
    make_database: MakeDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = await make_database(migrated=False)
    monkeypatch.setenv("TOOLKIT_DATABASE_URL", url.render_as_string(hide_password=False))

    outputs = await run_cell(STREAM.format(progress=False))

    assert boxes(outputs) == [("stdout", "rows: 100000\n")]


def test_a_bar_in_a_script_writes_one_line_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    bar = progress_bar(31_000, True, "demo data")
    bar.update(31_000)
    bar.close()

    captured = capsys.readouterr()
    assert captured.out == ""
    last = captured.err.rsplit("\r", 1)[-1]
    assert re.fullmatch(r"demo data: 100%\|[^|]+\| 31\.0k/31\.0k \[.*rows/s\]\n", last), last
