"""Page and KeysetPage as values: DataFrames, notebook HTML, frozen dataclasses."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.pagination.conftest import USER_COLUMNS, _ours, _users
from toolkit.models import User
from toolkit.pagination import Page, keyset_page, paginate


async def test_to_df_has_the_columns_of_models_and_rows(session: AsyncSession) -> None:
    await _users(session, "Ada", "Alan", "Grace")
    models = await paginate(_ours().order_by(User.id), size=2, session=session)
    assert list(models.to_df().columns) == USER_COLUMNS
    assert models.to_df()["name"].tolist() == ["Ada", "Alan"]
    past_end = await paginate(_ours().order_by(User.id), page=5, size=2, session=session)
    assert past_end.to_df().empty
    assert list(past_end.to_df().columns) == USER_COLUMNS

    rows = select(User.name, User.email).where(User.email.like("page%"))
    last = await keyset_page(rows.add_columns(User.id), key=User.id, size=5, session=session)
    assert list(last.to_df().columns) == ["name", "email", "id"]
    assert len(last.to_df()) == 3


async def test_html_repr_escapes_data_and_shows_at_most_20_rows(session: AsyncSession) -> None:
    await _users(session, "<script>alert(1)</script>", *(f"user {i}" for i in range(24)))
    page = await paginate(_ours().order_by(User.id), size=22, session=session)
    html = page._repr_html_()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>" not in html
    assert html.count("<tr>") == 1 + 20  # the header and 20 of the page's 22 rows
    assert "first 20 of 22 rows shown · page 1 of 2 · 25 rows" in html

    seek = await keyset_page(_ours(), key=User.id, size=3, session=session)
    seek_html = seek._repr_html_()
    assert "&lt;script&gt;" in seek_html
    assert "<script>" not in seek_html
    assert "3 rows · more after this page" in seek_html
    assert repr(seek) == "KeysetPage(size=3, items=3, has_next=True)"


def test_pages_are_frozen_dataclasses() -> None:
    page = Page([1, 2], total=2, page=1, size=2)
    with pytest.raises(AttributeError):
        page.total = 3  # type: ignore[misc]
    assert list(page) == [1, 2]
    assert (page.pages, page.has_next, page.has_prev) == (1, False, False)
