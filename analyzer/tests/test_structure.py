"""The package's shape (docs/architecture.md): no import cycle between its modules, no private
name (`_x`) imported from another module. Read with the standard library's `ast`."""

from __future__ import annotations

import ast
from pathlib import Path

from factories import ANALYZER

PACKAGE = ANALYZER / "reachability"


def _module(path: Path) -> str:
    parts = path.relative_to(ANALYZER).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[tuple[str, str]]]:
    """module -> {(imported module, name)}, every import statement at any depth."""
    found: dict[str, set[tuple[str, str]]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module(path)
        edges = found.setdefault(module, set())
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    edges.add((node.module, alias.name))
            elif isinstance(node, ast.Import):
                edges.update((alias.name, "") for alias in node.names)
    return found


def _targets(imports: dict[str, set[tuple[str, str]]], module: str) -> set[str]:
    """The package's modules `module` imports (`from reachability import reading` names one)."""
    out = set()
    for target, name in imports[module]:
        if f"{target}.{name}" in imports:
            out.add(f"{target}.{name}")
        elif target in imports and target != module:
            out.add(target)
    return out


def test_the_package_has_modules_to_check() -> None:
    modules = _imports()
    assert {"reachability.engine", "reachability.compiler.cilium", "reachability.cli"} <= set(
        modules
    )


def test_no_import_cycle() -> None:
    imports = _imports()
    graph = {module: _targets(imports, module) for module in imports}
    # A package's __init__ re-exporting its modules is not a cycle through them.
    cycles = []
    for start in graph:
        stack = [(start, [start])]
        seen: set[str] = set()
        while stack:
            node, path = stack.pop()
            for nxt in graph[node]:
                if nxt == start and not start.endswith(("reachability", "compiler")):
                    cycles.append(" -> ".join([*path, nxt]))
                elif nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, [*path, nxt]))
    assert cycles == []


def test_no_private_name_imported_across_modules() -> None:
    private = sorted(
        f"{module} imports {target}.{name}"
        for module, edges in _imports().items()
        for target, name in edges
        if target.startswith("reachability") and name.startswith("_")
    )
    assert private == []
