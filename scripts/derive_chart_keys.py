"""Derive the set of valid Helm value keys of the Cilium chart into the repo.

Cilium 1.15 ships no values.schema.json (it first appears in 1.16.0), so the
chart's own values.yaml is the reference for which keys exist. Tests check every
value the program sets against the derived file, so they need no network and no
copy of ../shared.

Two kinds of keys are collected:
- every mapping key of the parsed values.yaml, as a dotted path;
- keys the chart documents but leaves commented out (helm-docs style: a ``# --``
  comment block followed by ``#key: value``), such as ``kubeProxyReplacement``.
Paths whose default is an empty mapping (``podAnnotations: {}``) or a label map
(``nodeSelector: {kubernetes.io/os: linux}``) are free-form: any sub-key is accepted below them.

Usage: python scripts/derive_chart_keys.py VALUES_YAML [OUT_JSON]

VALUES_YAML is the chart's values.yaml at the pinned version, e.g.
$(go env GOMODCACHE)/github.com/cilium/cilium@v1.15.0/install/kubernetes/cilium/values.yaml.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "cnistack/data/cilium-1.15.0-values-keys.json"

_KEY_LINE = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z_][A-Za-z0-9_-]*):")
_COMMENTED_KEY_LINE = re.compile(r"^(?P<indent> *)#(?P<key>[A-Za-z][A-Za-z0-9]*):")


def mapping_paths(node: Any, prefix: str = "") -> tuple[set[str], set[str]]:
    keys: set[str] = set()
    open_maps: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            keys.add(path)
            # `{}` defaults, and label maps such as `nodeSelector: {kubernetes.io/os: linux}`
            # (their keys are Kubernetes label keys, so any other label is as valid).
            if value == {} or (isinstance(value, dict) and any("/" in str(k) for k in value)):
                open_maps.add(path)
            sub_keys, sub_open = mapping_paths(value, path)
            keys |= sub_keys
            open_maps |= sub_open
    return keys, open_maps


def documented_commented_keys(text: str) -> set[str]:
    """Keys written as ``#key: value`` right after a ``# --`` doc comment."""
    found: set[str] = set()
    stack: list[tuple[int, str]] = []  # (indent, key) of enclosing real keys
    in_doc_block = False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("# --"):
            in_doc_block = True
            continue
        commented = _COMMENTED_KEY_LINE.match(line)
        if commented and in_doc_block:
            indent = len(commented["indent"])
            parents = [key for parent_indent, key in stack if parent_indent < indent]
            found.add(".".join([*parents, commented["key"]]))
            in_doc_block = False
            continue
        if not stripped.startswith("#"):
            in_doc_block = False
        real = _KEY_LINE.match(line)
        if real:
            indent = len(real["indent"])
            while stack and stack[-1][0] >= indent:
                stack.pop()
            stack.append((indent, real["key"]))
    return found


def _chart_version(values_path: Path) -> str:
    chart = values_path.parent / "Chart.yaml"
    if chart.is_file():
        return str(yaml.safe_load(chart.read_text())["version"])
    return values_path.parent.name


def derive(values_path: Path) -> dict[str, Any]:
    raw = values_path.read_bytes()
    keys, open_maps = mapping_paths(yaml.safe_load(raw))
    keys |= documented_commented_keys(raw.decode())
    return {
        "source": f"cilium chart values.yaml ({_chart_version(values_path)})",
        "sha256": hashlib.sha256(raw).hexdigest(),
        "keys": sorted(keys),
        "openMaps": sorted(open_maps),
    }


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: python scripts/derive_chart_keys.py VALUES_YAML [OUT_JSON]", file=sys.stderr)
        return 2
    values_path = Path(argv[0])
    out = Path(argv[1]) if len(argv) > 1 else DEFAULT_OUT
    out.write_text(json.dumps(derive(values_path), indent=1, sort_keys=True) + "\n")
    print(f"wrote {out.relative_to(REPO) if out.is_relative_to(REPO) else out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
