"""Offset and keyset pagination: small dataclasses that transform a ``Select``.

* ``await paginate(query, page=2, size=50)`` - numbered pages with a total, for browsing
  and for showing "page 2 of 7". Cost grows with the page number: PostgreSQL reads and
  discards the ``OFFSET`` rows, and rows inserted meanwhile shift later pages.
* ``async for page in keyset(query, key=User.id)`` - seek pagination: each page continues
  *after* the last row of the previous one (``WHERE key > :last``), so any depth costs
  the same as the first page (with an index on the key) and concurrent inserts never
  repeat or skip rows. There is no total and no jumping to page n.

Both take the query as written and only add ordering, a window and a filter to it,
the way advanced-alchemy's ``filters.py`` applies a ``LimitOffset`` to a statement.

The modules: ``_offset`` (``paginate``), ``_seek`` (``keyset``, ``keyset_page``), ``_keys``
(what a keyset key is and whether it is unique), ``_catalog_keys`` (the keys the catalog
declares, cached per engine), ``_cursor`` (opaque page cursors), ``_pages`` (``Page``,
``KeysetPage`` and their HTML), ``_base`` (what both kinds share: reading a page's items).
"""

from toolkit.errors import PaginationError
from toolkit.pagination._base import AnySelect
from toolkit.pagination._keys import Key
from toolkit.pagination._offset import paginate
from toolkit.pagination._pages import KeysetPage, Page
from toolkit.pagination._seek import keyset, keyset_page

__all__ = [
    "AnySelect",
    "Key",
    "KeysetPage",
    "Page",
    "PaginationError",
    "keyset",
    "keyset_page",
    "paginate",
]
