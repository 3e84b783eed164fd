"""The allowed direction of imports between the packages (docs/architecture.md), read with `ast`:
the analyzer imports nothing of the IaC program, the pack neither, and cnistack reaches the
analyzer only through its adapter, its CLI wrapper and the shared name rules."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Where cnistack may import `reachability`, and what from it.
CNISTACK_MAY_IMPORT = {
    "cnistack/stack_documents.py": None,  # the adapter: anything
    "cnistack/cli/connectivity_command.py": None,  # the CLI wrapper
    "cnistack/key_hints.py": {"reachability.hints"},
    "cnistack/netpol/policy_model.py": {"reachability", "reachability.k8s_names"},
    "cnistack/netpol/renderer.py": {"reachability.k8s_names"},
    "cnistack/netpol/pods.py": {"reachability.k8s_names"},
}


def _top_imports(path: Path) -> set[str]:
    """Every module named by an import statement of the file (`from a.b import c` gives a.b)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def _files(folder: str) -> list[Path]:
    files = sorted((ROOT / folder).rglob("*.py"))
    return [f for f in files if "venv" not in f.parts]


def _importing(folder: str, roots: tuple[str, ...]) -> dict[str, set[str]]:
    out = {}
    for path in _files(folder):
        hits = {m for m in _top_imports(path) if m.split(".")[0] in roots}
        if hits:
            out[str(path.relative_to(ROOT))] = hits
    return out


def test_the_analyzer_imports_nothing_of_the_program() -> None:
    assert len(_files("analyzer/reachability")) >= 20
    assert _importing("analyzer/reachability", ("cnistack", "components", "policies")) == {}


def test_the_pack_imports_neither() -> None:
    assert len(_files("policies")) >= 10
    assert _importing("policies", ("cnistack", "reachability", "components")) == {}


def test_cnistack_reaches_the_analyzer_only_where_allowed() -> None:
    found = _importing("cnistack", ("reachability",))
    assert set(found) == set(CNISTACK_MAY_IMPORT)
    for path, modules in found.items():
        allowed = CNISTACK_MAY_IMPORT[path]
        if allowed is not None:
            assert modules <= allowed, path
