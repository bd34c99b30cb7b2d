"""Check the package's import structure; exit 1 listing what breaks it.

* no cycle among the modules of ``micado``, counting every import statement
  (module level, inside functions and under ``if TYPE_CHECKING:``: a cycle of type
  names is still a cycle for whoever reads or moves the code);
* a private module (``_name``) is imported only by modules of its own package.

Run: ``python scripts/import_graph.py [SOURCE_ROOT]`` (default: the checkout's root).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path


def module_names(root: Path) -> dict[str, Path]:
    """Every module of the ``micado`` package under ``root``, by dotted name."""
    found = {}
    for path in sorted((root / "micado").rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The modules of the package that module ``name`` imports (at any level)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        found.update(target for target in targets if target in modules and target != name)
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def private_imports(graph: dict[str, set[str]]) -> list[str]:
    """``importer -> module`` where the module is private to a package the importer is not in."""
    found = []
    for importer, targets in sorted(graph.items()):
        for target in sorted(targets):
            package, _, leaf = target.rpartition(".")
            if leaf.startswith("_") and not leaf.startswith("__") and not (
                    importer == package or importer.startswith(package + ".")):
                found.append(f"{importer} -> {target}")
    return found


def problems(root: Path) -> list[str]:
    """What breaks the import structure of the package under ``root``."""
    modules = module_names(root)
    graph = {name: imports_of(name, path, modules) for name, path in modules.items()}
    found = [f"import cycle: {' <-> '.join(component)}" for component in cycles(graph)]
    found += [f"private module imported from outside its package: {line}" for line in private_imports(graph)]
    return found


def main() -> int:
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1]
    found = problems(root)
    for line in found:
        print(line)
    modules = len(module_names(root))
    print(f"import graph: {modules} modules, {len(found)} problem(s)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
