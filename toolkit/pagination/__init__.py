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
"""

from toolkit.errors import PaginationError
from toolkit.pagination.base import AnySelect as AnySelect
from toolkit.pagination.keys import Key as Key
from toolkit.pagination.offset import paginate
from toolkit.pagination.pages import KeysetPage, Page
from toolkit.pagination.seek import keyset, keyset_page

__all__ = ["KeysetPage", "Page", "PaginationError", "keyset", "keyset_page", "paginate"]
