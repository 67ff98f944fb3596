"""Fixtures of the database tests: a migrated database per test module, which they commit to."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.engine import URL

from tests.conftest import MakeDatabase
from toolkit.database import Database


@pytest.fixture(scope="module")
async def fresh_url(make_database: MakeDatabase) -> URL:
    """A migrated database of this module's own: these tests really commit."""
    return await make_database()


@pytest.fixture
async def fresh(fresh_url: URL) -> AsyncIterator[Database]:
    async with Database(fresh_url) as database:
        yield database
