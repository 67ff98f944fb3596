"""Notebook 08 (scale-out) runs clean against the Citus cluster, and where the server is
not Citus it says why and runs nothing else.

``tests/examples/test_notebooks.py`` runs every notebook against the suite's plain server; this
runs 08 against the coordinator (``TOOLKIT_CITUS_URL``, else the test cluster's), and is
skipped, with the reason, where no coordinator answers.
"""

from __future__ import annotations

import nbformat
import pytest
from sqlalchemy.engine import URL

from tests.engines import citus_conftest
from tests.examples.test_notebooks import NOTEBOOKS_DIR, execute

pytestmark = [pytest.mark.slow, pytest.mark.engine]
citus_admin = citus_conftest.citus_admin  # the fixture, used here

NOTEBOOK = NOTEBOOKS_DIR / "08_scale_out.ipynb"


def _printed(nb: nbformat.NotebookNode) -> list[str]:
    """Each code cell's printed text and plain-text results, in order."""
    out = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        parts = [
            output.get("text") or output.get("data", {}).get("text/plain", "")
            for output in cell.outputs
        ]
        out.append("".join(parts))
    return out


async def test_notebook_08_runs_against_the_cluster(
    citus_admin: URL, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The kernel is a subprocess: it inherits this environment when it starts.
    monkeypatch.setenv("TOOLKIT_CITUS_URL", citus_admin.render_as_string(hide_password=False))
    printed = "\n".join(_printed(await execute(NOTEBOOK)))
    assert "No Citus cluster here" not in printed
    assert "with 2 workers" in printed
    assert "distributed by o_orderkey" in printed  # describe
    assert "router query: 1 task\nby customer:  32 tasks" in printed
    assert "Set citus.enable_repartition_joins to on" in printed  # the refusal's hint
    assert "1600000 pairs" in printed  # and the join, once allowed
    assert "50 pages; the last ends at order 1250, line 4" in printed
    assert "Index Only Scan using lineitem_pkey" in printed  # a keyset page, per shard


async def test_notebook_08_on_a_plain_server_says_why_and_does_nothing(
    server_url: URL, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOOLKIT_CITUS_URL", server_url.render_as_string(hide_password=False))
    printed = _printed(await execute(NOTEBOOK))
    assert "No Citus cluster here:" in printed[0]
    assert "has no citus extension" in printed[0]
    assert "cluster.sh start" in printed[0]
    assert not any(printed[1:])  # every other cell was emptied, not failed


async def test_notebook_08_where_nothing_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOOLKIT_CITUS_URL", "postgresql://postgres@127.0.0.1:1/postgres")
    printed = _printed(await execute(NOTEBOOK))
    assert "No Citus cluster here: could not connect" in printed[0]
    assert not any(printed[1:])
