"""The declarative base: AsyncAttrs, a constraint naming convention, aware timestamps."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, MetaData
from sqlalchemy.ext.asyncio import AsyncAttrs
from sqlalchemy.orm import DeclarativeBase

# Named constraints let Alembic drop and alter them reliably (no server-generated names).
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(AsyncAttrs, DeclarativeBase):
    """Base of the toolkit's models.

    ``AsyncAttrs`` adds ``await obj.awaitable_attrs.posts``: the explicit way to load a
    relationship in async code, where an implicit lazy load raises MissingGreenlet.
    Every ``datetime`` column is ``timestamptz``: an aware UTC value, never a naive one.
    """

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: DateTime(timezone=True)}
