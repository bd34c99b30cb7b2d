"""The shape of the library's code, read with ``ast``: short functions, layers that import downwards only."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "micado"
#: Longest function or method, counted from its ``def`` line to the end of its body (decorators excluded).
MAX_FUNCTION_LINES = 80
#: Modules and folders whose functions all fit already; a longer one fails at once.
FITTING = ("installer", "testing/playbook", "undo.py", "progress.py", "notebook.py", "_processes.py",
           "transfer.py", "api")
#: Code below the master's workflow: it reports progress and runs the installer, and knows nothing above it.
LOWER_LAYERS = ("installer", "progress.py", "notebook.py")
UPPER_PACKAGES = ("micado.master", "micado.models", "micado.cli", "micado._cli", "micado.client")


def _modules(*parts: str) -> Iterator[Path]:
    for part in parts:
        path = PACKAGE / part
        yield from sorted(path.rglob("*.py")) if path.is_dir() else [path]


def _long_functions(*parts: str) -> list[str]:
    """``path:line name (n lines)`` for every function or method over the limit."""
    found = []
    for path in _modules(*parts):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name} ({length} lines)")
    return found


def _imported_modules(path: Path) -> Iterator[tuple[int, str]]:
    """``(line, module)`` for every import of ``path``, at any level (function-level included)."""
    package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            yield node.lineno, base
            yield from ((node.lineno, f"{base}.{alias.name}") for alias in node.names)


def test_the_installer_and_its_neighbours_have_no_function_over_80_lines():
    assert _long_functions(*FITTING) == []


@pytest.mark.xfail(strict=False, reason="cli.py, models/ and testing/tls.py are being rewritten elsewhere")
def test_no_function_is_longer_than_80_lines():
    assert _long_functions(".") == []


def test_the_installer_and_the_progress_displays_import_nothing_above_them():
    found = [
        f"{path.relative_to(PACKAGE.parent)}:{line} imports {module}"
        for path in _modules(*LOWER_LAYERS)
        for line, module in _imported_modules(path)
        if any(module == upper or module.startswith((f"{upper}.", f"{upper}_")) for upper in UPPER_PACKAGES)
    ]
    assert found == []
