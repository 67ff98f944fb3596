"""The public API: one curated, sorted, complete ``__all__``."""

from __future__ import annotations

import types

import toolkit as tk

# The names of DESIGN.md's public API that exist so far (later issues add the rest).
CONTRACT = {
    "Database",
    "Page",
    "bulk_delete",
    "bulk_insert",
    "bulk_update",
    "keyset",
    "paginate",
    "stream_df",
    "upsert",
    "async_session",
    "connect",
    "df",
    "downgrade",
    "get_database",
    "get_engine",
    "get_session",
    "migrate",
    "run",
    "seed_demo",
    "session",
    "to_dataframe",
}


def test_all_is_sorted_and_has_no_duplicates() -> None:
    assert list(tk.__all__) == sorted(set(tk.__all__))


def test_every_name_in_all_exists() -> None:
    missing = [name for name in tk.__all__ if not hasattr(tk, name)]
    assert missing == []


def test_every_public_attribute_is_in_all() -> None:
    public = {
        name
        for name, value in vars(tk).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public == set(tk.__all__)


def test_the_design_contract_names_are_exported() -> None:
    assert set(tk.__all__) >= CONTRACT


def _subclasses(cls: type) -> set[type]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub, *_subclasses(sub)}
    return found


def test_every_exception_class_the_toolkit_raises_is_exported() -> None:
    """``except tk.PoolExhausted:`` works for each of them, without reaching into modules."""
    classes = {tk.ToolkitError, tk.QueryInterrupted, *_subclasses(tk.ToolkitError)}
    ours = {
        c for c in classes if c.__module__.startswith("toolkit") and not c.__name__.startswith("_")
    }

    missing = sorted(c.__name__ for c in ours if getattr(tk, c.__name__, None) is not c)

    assert missing == []


def test_the_version_execute_and_query_count_are_public() -> None:
    assert isinstance(tk.__version__, str)
    assert tk.__version__
    assert {"execute", "QueryCount", "LazyLoadError"} <= set(tk.__all__)


def test_every_exception_class_of_the_error_module_is_exported() -> None:
    """The whole tree lives in ``toolkit.errors``; each class there is a ``tk.`` name."""
    classes = [
        name
        for name in tk.errors.__all__
        if isinstance(getattr(tk.errors, name), type)
        and issubclass(getattr(tk.errors, name), BaseException)
    ]
    assert classes, "toolkit.errors exports its exception classes"
    assert [
        name for name in classes if getattr(tk, name, None) is not getattr(tk.errors, name)
    ] == []
