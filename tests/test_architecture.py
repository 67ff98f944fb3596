"""The shape of the package, as the README's "How the code is organised" draws it.

The layer contracts live in pyproject.toml (import-linter); the rules import-linter has
no contract for are checked here from the source: a private name stays in its module,
a module is small or says why it is not, and each package states its API.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "toolkit"
LONGEST = 400
"""Lines a module may have without saying, in its docstring, why it is one module."""
SAYS_WHY = "Why one module:"


def _modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        yield name, path


def _is_module(name: str) -> bool:
    relative = Path(*name.split("."))
    root = PACKAGE.parent
    return (root / relative).with_suffix(".py").exists() or (
        root / relative / "__init__.py"
    ).exists()


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _resolved(module: str, path: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _private_names_borrowed(module: str, path: Path) -> Iterator[str]:
    tree = ast.parse(path.read_text(), str(path))
    imported_modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            source = _resolved(module, path, node)
            if not source.startswith("toolkit"):
                continue
            for alias in node.names:
                if _is_module(f"{source}.{alias.name}"):
                    imported_modules.add(alias.asname or alias.name)
                elif _private(alias.name):
                    yield f"{module}:{node.lineno} imports {alias.name} from {source}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("toolkit"):
                    imported_modules.add(alias.asname or alias.name.split(".")[0])
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in imported_modules
            and _private(node.attr)
        ):
            yield f"{module}:{node.lineno} reads {node.value.id}.{node.attr}"


def test_the_layer_contracts_in_pyproject_hold() -> None:
    lint_imports = Path(sys.executable).parent / "lint-imports"
    done = subprocess.run(
        [str(lint_imports), "--no-cache"],
        cwd=PACKAGE.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


def test_no_underscore_name_is_imported_from_another_module() -> None:
    borrowed = [line for name, path in _modules() for line in _private_names_borrowed(name, path)]
    assert borrowed == []


def test_the_private_name_check_sees_a_borrowed_name(tmp_path: Path) -> None:
    source = tmp_path / "borrower.py"
    source.write_text(
        "from toolkit.sql import _statements\n"  # a private module: allowed here
        "from toolkit.errors import _chain\n"  # a private name: not allowed
        "from toolkit import errors\n"
        "errors._first_line\n"
    )
    found = list(_private_names_borrowed("toolkit.borrower", source))
    assert found == [
        "toolkit.borrower:2 imports _chain from toolkit.errors",
        "toolkit.borrower:4 reads errors._first_line",
    ]


@pytest.mark.parametrize(("module", "path"), list(_modules()), ids=[m for m, _ in _modules()])
def test_a_module_is_short_or_its_docstring_says_why_it_is_one_module(
    module: str, path: Path
) -> None:
    lines = len(path.read_text().splitlines())
    if lines <= LONGEST:
        return
    docstring = ast.get_docstring(ast.parse(path.read_text())) or ""
    assert SAYS_WHY in docstring, f"{module} has {lines} lines and does not say why"


@pytest.mark.parametrize(
    ("module", "path"),
    [(m, p) for m, p in _modules() if p.name == "__init__.py"],
    ids=[m for m, p in _modules() if p.name == "__init__.py"],
)
def test_every_package_states_its_api_in_all_and_a_docstring(module: str, path: Path) -> None:
    tree = ast.parse(path.read_text())
    assert ast.get_docstring(tree), f"{module} has no docstring"
    declared = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets)
    ]
    assert declared, f"{module} has no __all__"  # ruff (RUF022) keeps it sorted
