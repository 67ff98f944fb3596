"""What offset and keyset pagination share: the statement type they take, and reading a
page's items (model instances or rows) and column names from its result.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Select, inspect
from sqlalchemy.engine import Result
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.orm import Mapper

from toolkit.errors import PaginationError

AnySelect = Select[*tuple[Any, ...]]


def single_entity(query: AnySelect) -> Mapper[Any] | None:
    """The mapper of ``select(Model)`` (or of an aliased model); None for other selects."""
    descriptions = query.column_descriptions
    if len(descriptions) != 1:
        return None
    inspected = inspect(descriptions[0]["expr"], raiseerr=False)
    if getattr(inspected, "is_mapper", False) or getattr(inspected, "is_aliased_class", False):
        return cast(Mapper[Any], inspected.mapper)
    return None


def page_items(result: Result[Any], entity: Mapper[Any] | None) -> list[Any]:
    """Model instances for ``select(Model)``, else the rows."""
    if entity is None:
        return list(result.all())
    try:
        return list(result.scalars().all())
    except InvalidRequestError as exc:  # joinedload() of a collection: one row per child
        raise PaginationError(
            f"pages of {entity.class_.__name__} cannot load a collection with joinedload() "
            "(its rows repeat each object per child) - use selectinload(), which loads "
            "the collection in a second query"
        ) from exc


def column_names(entity: Mapper[Any] | None, keys: Any) -> tuple[str, ...]:
    """A page's DataFrame columns: the model's attributes, else the result's keys."""
    return tuple(entity.column_attrs.keys() if entity is not None else keys)
