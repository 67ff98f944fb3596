"""Case 12: load - 20 notebooks' worth of sessions, in separate processes, for 60 s.

Runs ``benchmarks/load.py`` (the same script is run by hand for the figures) against the
server under test: every call of the mix must succeed; the p99 latency is printed for
the record (``pytest -s``), not asserted (timings belong in benchmarks, not in tests).
``TOOLKIT_LOAD_SECONDS`` shortens the run for local iterations.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "load.py"
PROCESSES = 20
SECONDS = float(os.environ.get("TOOLKIT_LOAD_SECONDS", "60"))
CALLS = {
    "aggregate",
    "bulk_write",
    "copy_frame",
    "eager_load",
    "keyset_page",
    "offset_page",
    "small_frame",
    "stream",
}


@pytest.mark.slow
def test_twenty_concurrent_notebook_processes_run_mixed_queries_without_a_single_error(
    server_url: URL,
) -> None:
    env = {**os.environ, "TOOLKIT_DATABASE_URL": server_url.render_as_string(False)}
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--processes", str(PROCESSES), "--seconds", str(SECONDS)],
        capture_output=True,
        text=True,
        env=env,
        timeout=SECONDS + 600,
    )

    print(done.stdout)
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["errors"] == []
    assert done.returncode == 0, done.stderr
    assert summary["workers"] == PROCESSES
    assert set(summary["by_call"]) == CALLS  # every kind of call ran, and succeeded
    assert summary["overall"]["calls"] > PROCESSES * SECONDS  # more than 1 call/s each
