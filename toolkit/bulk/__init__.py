"""Bulk operations: COPY-speed inserts, update/delete/upsert by key in array statements.

The seed's ``deactivate_users`` teaches the pattern (one UPDATE, a rowcount); these are
the versions that scale:

* ``bulk_insert`` streams rows with COPY (binary, from Python rows), applying the
  columns' Python-side defaults.
* ``bulk_update`` and ``bulk_delete`` send each column as one array parameter
  (``UPDATE ... FROM unnest($1::int[], $2::text[])``): a 40,000-row batch is one
  statement of a few parameters, far from asyncpg's 32,767-parameter limit, and the
  server's work dominates.
* ``upsert``, and ``bulk_insert`` of a DataFrame, go as ``to_table`` does: each column's
  text, checked against the catalog's column types (``toolkit.frames``), in one CSV
  COPY - an upsert's into a temporary table, then one ``INSERT ... SELECT ... ON
  CONFLICT``. So do ``bulk_insert``'s rows holding a value asyncpg's binary encoders
  would change (1.5 into an integer column, a float into numeric, 9999-12-31 sent as
  infinity) or cannot encode (a dict for a jsonb column it knows nothing of).

Every operation is atomic: it runs in one transaction (a savepoint inside the caller's
session), so a failing row leaves nothing changed. Duplicate keys in an update or upsert
batch are refused before anything is sent.

The modules: ``_insert``, ``_update``, ``_upsert``, ``_delete`` (one helper each),
``_target`` (what is written to), ``_records`` (rows into records and arrays, defaults,
duplicates), ``_batches`` (chunks, progress, reserved ids; ``CHUNK``, the rows per
statement, is read there and patched there).
"""

from toolkit.bulk._delete import bulk_delete
from toolkit.bulk._insert import bulk_insert
from toolkit.bulk._update import bulk_update
from toolkit.bulk._upsert import upsert

__all__ = ["bulk_delete", "bulk_insert", "bulk_update", "upsert"]
