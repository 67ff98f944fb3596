"""Engines in front of the server under test.

``pgbouncer``: Debian's PgBouncer in transaction mode in front of the server under test
(``tests.engines.pgbouncer``), for the session; skipped, with the reason, where
``pgbouncer`` is not installed.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.engine import URL

from tests.engines.pgbouncer import NotInstalled, PgBouncer, running


@pytest.fixture(scope="session")
def pgbouncer(server_url: URL) -> Iterator[PgBouncer]:
    try:
        with running(server_url) as bouncer:
            yield bouncer
    except NotInstalled as exc:
        pytest.skip(str(exc))
