"""The product's import graph: no cycle, no function-level import, imports in one direction.

Read with `ast` from the source files (nothing is imported), so a cycle is found even where it
would only bite in another import order, and imports under `if TYPE_CHECKING:` count: a cycle
kept for types only is still two modules that cannot be understood one without the other.

Packages are discovered from the tree: every directory with an `__init__.py` directly under the
repository, `policies/` (the pack's `adr013_guard`) or `analyzer/` (the connectivity analyzer's
own project, `reachability`, or `analyzer/src/`), plus the two Pulumi entry points (`__main__.py`,
`policies/__main__.py`). Test folders are not product code.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# Folders whose child packages are product code; a missing one is simply absent.
ROOT_FOLDERS = ("", "policies", "analyzer", "analyzer/src")
ENTRY_POINTS = ("__main__.py", "policies/__main__.py")
NOT_PRODUCT = {"tests", "benchmarks", "scripts", "tools", "venv", "docs"}

# Which top-level package may not import which (docs/architecture.md): the Pulumi shell
# (components) sits on the core (cnistack); the pack is an independent guard; the analyzer
# depends on nothing of the IaC side.
FORBIDDEN = {
    "cnistack": {"components", "adr013_guard"},
    "adr013_guard": {"cnistack", "components", "reachability"},
    "reachability": {"cnistack", "components", "adr013_guard"},
}

# The one function-level import product code may keep: the live-cluster source needs the
# Kubernetes client, an optional extra of the analyzer (`reachability[live]`) that the Pulumi
# runtime's venv does not install, so the CLI imports it only when `--cluster` is given and turns
# its absence into one clear error. Not a cycle dodge: the module it names imports no caller.
OPTIONAL_EXTRA_IMPORTS = {"analyzer/reachability/cli.py": {"reachability.cluster_source"}}


@dataclass(frozen=True)
class Module:
    name: str
    path: Path
    is_package: bool


def _packages(repo: Path) -> Iterator[tuple[Path, Path]]:
    """(root, package directory) of every top-level product package."""
    for root in (repo / folder for folder in ROOT_FOLDERS):
        if not root.is_dir():
            continue
        for child in sorted(root.iterdir()):
            if (
                child.is_dir()
                and child.name not in NOT_PRODUCT
                and not child.name.startswith(".")
                and (child / "__init__.py").is_file()
            ):
                yield root, child


def product_modules(repo: Path = REPO) -> dict[str, Module]:
    modules: dict[str, Module] = {}
    for root, package in _packages(repo):
        for path in sorted(package.rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if any(part in NOT_PRODUCT for part in parts):
                continue
            is_package = parts[-1] == "__init__"
            name = ".".join(parts[:-1] if is_package else parts)
            modules[name] = Module(name, path, is_package)
    for path in (repo / entry for entry in ENTRY_POINTS):
        if path.is_file():
            name = f"<{path.relative_to(repo)}>"
            modules[name] = Module(name, path, False)
    return modules


def _resolve(module: Module, node: ast.Import | ast.ImportFrom, known: set[str]) -> set[str]:
    """The product modules an import statement names. A package's `__init__` runs before any of
    its submodules, but that is not counted as an edge (as import-linter and pydeps do): a
    package re-exporting its submodules is not a cycle with each of them."""
    if isinstance(node, ast.Import):
        targets = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:
            package = module.name.split(".")
            if not module.is_package:
                package = package[:-1]
            package = package[: len(package) - (node.level - 1)]
            base = ".".join([*package, base] if base else package)
        # `from pkg import name`: the submodule pkg.name when there is one, else pkg itself.
        targets = [
            f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
            for alias in node.names
        ]
    found: set[str] = set()
    for target in targets:
        parts = target.split(".")
        for end in range(len(parts), 0, -1):
            candidate = ".".join(parts[:end])
            if candidate in known:
                found.add(candidate)
                break
    return found - {module.name}


def _imports(tree: ast.Module) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import statement, and whether it sits inside a function or class body."""

    def walk(node: ast.AST, nested: bool) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import | ast.ImportFrom):
                yield child, nested
            inner = nested or isinstance(
                child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda
            )
            yield from walk(child, inner)

    yield from walk(tree, False)


def import_graph(modules: dict[str, Module]) -> dict[str, set[str]]:
    known = set(modules)
    graph: dict[str, set[str]] = {}
    for name, module in modules.items():
        tree = ast.parse(module.path.read_text(), str(module.path))
        graph[name] = set()
        for node, _ in _imports(tree):
            graph[name] |= _resolve(module, node, known)
    return graph


def function_level_imports(modules: dict[str, Module], base: Path = REPO) -> list[str]:
    found = []
    for module in modules.values():
        tree = ast.parse(module.path.read_text(), str(module.path))
        for node, nested in _imports(tree):
            if nested:
                found.append(f"{module.path.relative_to(base)}:{node.lineno}")
    return found


def strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's components with more than one module, or a module importing itself."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def cycle_path(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """One cycle through a component, as the modules in import order (first repeated last)."""
    start = min(component)
    path = [start]
    seen = {start}
    while True:
        here = path[-1]
        targets = sorted(graph[here] & component)
        if (start in targets and len(path) > 1) or targets == [start]:
            return [*path, start]
        following = next((t for t in targets if t not in seen), None)
        if following is None:  # every neighbour visited: close the loop at the first seen
            back = targets[0]
            return [*path[path.index(back) :], back]
        path.append(following)
        seen.add(following)


def _describe(graph: dict[str, set[str]], component: set[str]) -> str:
    return " -> ".join(cycle_path(graph, component))


MODULES = product_modules()
GRAPH = import_graph(MODULES)


def test_the_product_packages_are_found_from_the_tree() -> None:
    tops = {name.split(".")[0] for name in MODULES if not name.startswith("<")}
    assert {"cnistack", "components", "adr013_guard"} <= tops
    analyzer_present = any(
        (REPO / folder / "reachability" / "__init__.py").is_file() for folder in ROOT_FOLDERS
    )
    assert ("reachability" in tops) == analyzer_present
    assert "cnistack.config" in MODULES and "adr013_guard.manifests" in MODULES


def test_no_import_cycle() -> None:
    cycles = strongly_connected(GRAPH)
    assert not cycles, "import cycles: " + "; ".join(_describe(GRAPH, c) for c in cycles)


def _nested_import_targets(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    return {
        node.module if isinstance(node, ast.ImportFrom) and node.module else ""
        for node, nested in _imports(tree)
        if nested
    }


def test_no_function_level_import_in_product_code() -> None:
    found = [
        place
        for place in function_level_imports(MODULES)
        if place.split(":")[0] not in OPTIONAL_EXTRA_IMPORTS
    ]
    assert not found, f"imports inside a function or class (move them to the top): {found}"


@pytest.mark.parametrize("relative", sorted(OPTIONAL_EXTRA_IMPORTS))
def test_the_optional_extra_import_names_only_its_module(relative: str) -> None:
    assert _nested_import_targets(REPO / relative) == OPTIONAL_EXTRA_IMPORTS[relative]


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_go_one_way(package: str) -> None:
    wrong = sorted(
        f"{source} imports {target}"
        for source, targets in GRAPH.items()
        if source.split(".")[0] == package
        for target in targets
        if target.split(".")[0] in FORBIDDEN[package]
    )
    assert not wrong, wrong


# The checks themselves, on small trees: each finds what it must, names it, and nothing else.


def _graph_of(
    tmp_path: Path, files: dict[str, str]
) -> tuple[dict[str, Module], dict[str, set[str]]]:
    modules = {}
    for relative, text in files.items():
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        parts = Path(relative).with_suffix("").parts
        is_package = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_package else parts)
        modules[name] = Module(name, path, is_package)
    return modules, import_graph(modules)


def test_a_types_only_cycle_is_found_and_named(tmp_path: Path) -> None:
    _, graph = _graph_of(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a.py": "from pkg.b import B\n",
            "pkg/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
            "    from . import c\n",
            "pkg/c.py": "from .a import A\n",
            "pkg/d.py": "import pkg.a\n",
        },
    )
    [component] = strongly_connected(graph)
    assert component == {"pkg.a", "pkg.b", "pkg.c"}
    assert _describe(graph, component) == "pkg.a -> pkg.b -> pkg.c -> pkg.a"


def test_a_function_level_import_is_found(tmp_path: Path) -> None:
    modules, graph = _graph_of(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a.py": "import json\n\n\ndef f():\n    from pkg import b\n    return b\n",
            "pkg/b.py": "import pkg.a\n",
        },
    )
    assert function_level_imports(modules, tmp_path) == ["pkg/a.py:5"]
    # The late import still counts as an edge: it is how the cycle was dodged.
    assert strongly_connected(graph) == [{"pkg.a", "pkg.b"}]


def test_the_analyzer_project_is_found_when_it_exists(tmp_path: Path) -> None:
    files = {
        "__main__.py": "import components.cni\n",
        "cnistack/__init__.py": "",
        "components/__init__.py": "",
        "components/cni.py": "from cnistack import __name__ as _\n",
        "analyzer/reachability/__init__.py": "from reachability.engine import Analyzer\n",
        "analyzer/reachability/engine.py": "from reachability import output\nAnalyzer = 1\n",
        "analyzer/reachability/output.py": "from reachability.engine import Analyzer\n",
        "analyzer/tests/__init__.py": "",
        "analyzer/tests/test_engine.py": "def test() -> None:\n    import reachability\n",
        "tests/__init__.py": "",
    }
    for relative, text in files.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text)
    modules = product_modules(tmp_path)
    assert sorted(modules) == [
        "<__main__.py>",
        "cnistack",
        "components",
        "components.cni",
        "reachability",
        "reachability.engine",
        "reachability.output",
    ]
    graph = import_graph(modules)
    assert graph["<__main__.py>"] == {"components.cni"}
    assert graph["components.cni"] == {"cnistack"}
    assert [_describe(graph, c) for c in strongly_connected(graph)] == [
        "reachability.engine -> reachability.output -> reachability.engine"
    ]
    assert function_level_imports(modules, tmp_path) == []


# Where cnistack may import the analyzer (docs/architecture.md), and what from it (None: anything).
CNISTACK_MAY_IMPORT: dict[str, set[str] | None] = {
    "cnistack.stack_documents": None,  # the one adapter from a stack to documents
    "cnistack.cli.connectivity_command": None,  # the CLI wrapper adding stack sources
    # verify and the datapath campaigns: the model's answer for each probe, public API only.
    "cnistack.datapath_check": {"reachability"},
    "cnistack.key_hints": {"reachability.hints"},
    "cnistack.netpol.policy_model": {"reachability", "reachability.k8s_names"},
    "cnistack.netpol.renderer": {"reachability.k8s_names"},
    "cnistack.netpol.pods": {"reachability.k8s_names"},
}


def test_cnistack_reaches_the_analyzer_only_where_allowed() -> None:
    found = {
        source: {t for t in targets if t.split(".")[0] == "reachability"}
        for source, targets in GRAPH.items()
        if source.split(".")[0] == "cnistack"
    }
    found = {source: targets for source, targets in found.items() if targets}
    assert set(found) == set(CNISTACK_MAY_IMPORT)
    for source, targets in found.items():
        allowed = CNISTACK_MAY_IMPORT[source]
        if allowed is not None:
            assert targets <= allowed, source
